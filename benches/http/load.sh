#!/usr/bin/env bash
# HTTP load benchmark: jobs per second and p50/p99 latency of `uppercase` through
# `POST /v1/jobs` with `wait_ms`, next to the server's own hello-world route (`GET /healthz`),
# measured against the same server in the same run, with wrk.
#
#   benches/http/load.sh [SECONDS] [CONNECTIONS]     (defaults: 10 s, 16 connections)
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
duration=${1:-10}
connections=${2:-16}
cd "$root"

# shellcheck source=benches/http/wrk.sh
source "$root/benches/http/wrk.sh"

tasks/build.sh
cargo build --release --locked --bin taskhost

data=$(mktemp -d)
trap 'kill "$server" 2>/dev/null; rm -rf "$data"' EXIT
coproc SERVER { exec target/release/taskhost serve --listen 127.0.0.1:0 \
  --tasks-dir target/tasks --data-dir "$data" 2>"$data/server.log"; }
server=$SERVER_PID
read -r line <&"${SERVER[0]}"
url=${line#listening on }
# The default tenant's key, which the server wrote on its first start: wrk's script sends it.
TASKHOST_KEY=$(cat "$data/default.key")
export TASKHOST_KEY
echo "server at $url ($(nproc) cores)"

# Prints "requests/s p50 p99" from wrk's --latency output.
summary() {
  awk '/Requests\/sec/ {rps=$2} /^ +50%/ {p50=$2} /^ +99%/ {p99=$2} END {print rps, p50, p99}'
}

run() {
  local label=$1
  shift
  echo "== $label" >&2
  wrk -t1 -c"$connections" -d"${duration}s" --latency "$@" | tee /dev/stderr | summary
}

# Warm up both paths so the first measurement does not pay for cold caches.
wrk -t1 -c4 -d2s "$url/healthz" >/dev/null
wrk -t1 -c4 -d2s -s benches/http/submit.lua "$url" >/dev/null

read -r hello_rps hello_p50 hello_p99 < <(run "GET /healthz" "$url/healthz")
read -r job_rps job_p50 job_p99 < <(run "POST /v1/jobs uppercase, wait" -s benches/http/submit.lua "$url")

printf '\n%-34s %12s %10s %10s\n' "route" "requests/s" "p50" "p99"
printf '%-34s %12s %10s %10s\n' "GET /healthz (baseline)" "$hello_rps" "$hello_p50" "$hello_p99"
printf '%-34s %12s %10s %10s\n' "POST /v1/jobs uppercase + wait" "$job_rps" "$job_p50" "$job_p99"
awk -v a="$job_rps" -v b="$hello_rps" 'BEGIN {printf "jobs/s as a share of hello-world requests/s: %.3f\n", a / b}'
