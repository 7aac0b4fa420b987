#!/usr/bin/env bash
# taskhost's HTTP job path beside its peers, measured in one run with wrk (-t1), the rounds
# interleaved so that a noisy moment on the machine hits every server alike:
#
#   - a plain axum hello-world binary (benches/src/bin/hello.rs): an HTTP request with no work;
#   - taskhost's own `GET /healthz`;
#   - `wasmtime serve` 48.0.8 (pooling allocator; `-S cli`, since Rust's std imports wasi:cli)
#     on a no-op wasi:http component
#     (benches/http/noop-http, built by the same guest toolchain as the tasks);
#   - taskhost `POST /v1/jobs` waiting for a `noop` job, and for an `uppercase` job;
#   - taskhost `POST /v1/jobs` without waiting (202), then every accepted job checked finished;
#   - at one connection: `wasmtime serve` and taskhost's sync `noop`, for latency.
#
# Each round prints requests/s, p50, p99 and the server's CPU per request (from
# /proc/PID/stat over the round); the end prints the medians and the ratios the HTTP fast
# path is held to.
#
#   benches/http/compare.sh [SECONDS] [ROUNDS] [CONNECTIONS]   (defaults: 8 s, 3 rounds, 64)
#
# wasmtime-cli is installed once with `cargo install` into target/bench-tools.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
duration=${1:-8}
rounds=${2:-3}
connections=${3:-64}
cd "$root"
here=benches/http
tools=$root/target/bench-tools
wasmtime_version=48.0.8
wasmtime=$tools/wasmtime-$wasmtime_version/bin/wasmtime

# shellcheck source=benches/http/wrk.sh
source "$root/benches/http/wrk.sh"

tasks/build.sh
cargo build --release --locked --bin taskhost
cargo build --release --locked -p taskhost-benches --bin hello-axum
if [ ! -x "$wasmtime" ]; then
  cargo install wasmtime-cli --version "$wasmtime_version" --locked --root "${wasmtime%/bin/*}"
fi
mkdir -p "$tools"
tasks/build.sh --component "$here/noop-http" "$tools/noop-http.wasm"

work=$(mktemp -d)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; rm -rf "$work"' EXIT

# Starts a server that prints `listening on URL` first; sets $url and $pid.
start_printing() {
  local name=$1
  shift
  "$@" >"$work/$name.out" 2>"$work/$name.log" &
  pid=$!
  pids+=("$pid")
  until grep -q '^listening on ' "$work/$name.out" 2>/dev/null; do
    kill -0 "$pid" 2>/dev/null || { cat "$work/$name.log" >&2; exit 1; }
    sleep 0.05
  done
  url=$(sed -n 's/^listening on //p' "$work/$name.out" | head -1)
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

start_printing taskhost target/release/taskhost serve --listen 127.0.0.1:0 \
  --tasks-dir target/tasks --data-dir "$work/data" --wait-for-tasks
taskhost_url=$url taskhost_pid=$pid
# The default tenant's key, which the server wrote on its first start: wrk's scripts send it;
# the admin key reads the host's status.
TASKHOST_KEY=$(cat "$work/data/default.key")
export TASKHOST_KEY
admin_key=$(cat "$work/data/admin.key")
start_printing hello target/release/hello-axum 127.0.0.1:0
hello_url=$url hello_pid=$pid
port=$(free_port)
"$wasmtime" serve -O pooling-allocator=y -S cli=y --addr "127.0.0.1:$port" "$tools/noop-http.wasm" \
  >"$work/wasmtime.log" 2>&1 &
wasmtime_pid=$!
pids+=("$wasmtime_pid")
wasmtime_url=http://127.0.0.1:$port
until curl -sf "$wasmtime_url/" >/dev/null; do
  kill -0 "$wasmtime_pid" 2>/dev/null || { cat "$work/wasmtime.log" >&2; exit 1; }
  sleep 0.05
done
echo "$(nproc) cores; taskhost $taskhost_url, axum $hello_url, wasmtime serve $wasmtime_url"

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# The scenarios: label, server pid, connections, environment of wrk's script, wrk arguments.
noop="JOB_TASK=noop JOB_INPUT=null"
scenarios=(
  "axum hello-world|$hello_pid|$connections||$hello_url/"
  "taskhost GET /healthz|$taskhost_pid|$connections||$taskhost_url/healthz"
  "wasmtime serve no-op|$wasmtime_pid|$connections||$wasmtime_url/"
  "taskhost sync noop|$taskhost_pid|$connections|$noop|-s $here/submit.lua $taskhost_url"
  "taskhost sync uppercase|$taskhost_pid|$connections||-s $here/submit.lua $taskhost_url"
  "taskhost async noop (202)|$taskhost_pid|$connections||-s $here/async.lua $taskhost_url"
  "wasmtime serve no-op c=1|$wasmtime_pid|1||$wasmtime_url/"
  "taskhost sync noop c=1|$taskhost_pid|1|$noop|-s $here/submit.lua $taskhost_url"
)

# Waits until every job the host accepted has finished; prints accepted and completed.
drained() {
  local status
  for _ in $(seq 600); do
    status=$(curl -s -H "Authorization: Bearer $admin_key" "$taskhost_url/v1/status")
    read -r accepted completed < <(python3 -c 'import json, sys
s = json.load(sys.stdin)["scheduler"]; print(s["accepted"], s["completed"])' <<<"$status")
    if [ "$accepted" = "$completed" ]; then
      echo "$accepted $completed"
      return
    fi
    sleep 0.1
  done
  echo "$accepted $completed"
}

# Warm-up: every path once, briefly.
for scenario in "${scenarios[@]}"; do
  IFS='|' read -r _ _ _ vars args <<<"$scenario"
  # shellcheck disable=SC2086
  env $vars wrk -t1 -c8 -d1s $args >/dev/null
done
drained >/dev/null

results=$work/results
for round in $(seq "$rounds"); do
  for scenario in "${scenarios[@]}"; do
    IFS='|' read -r label pid conns vars args <<<"$scenario"
    before=$(cpu_ticks "$pid")
    # shellcheck disable=SC2086
    out=$(env $vars wrk -t1 -c"$conns" -d"${duration}s" --latency $args)
    after=$(cpu_ticks "$pid")
    requests=$(awk '/requests in/ {print $1}' <<<"$out")
    rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
    p50=$(awk '/^ +50%/ {print $2}' <<<"$out")
    p99=$(awk '/^ +99%/ {print $2}' <<<"$out")
    note=$(grep -E '^(non-200|accepted)' <<<"$out" || true)
    if [[ $label == *async* ]]; then
      # Requests/s counts the refusals too; what counts is jobs accepted per second, and
      # that every one of them finishes.
      read -r accepted _ <<<"${note#accepted }"
      rps=$(awk -v a="$accepted" -v d="$duration" 'BEGIN {printf "%.2f", a / d}')
      read -r all done_ < <(drained)
      note="$note; host accepted $all, completed $done_"
      [ "$all" = "$done_" ] || note="$note: LOST JOBS"
    fi
    cpu_us=$(awk -v t=$((after - before)) -v n="$requests" -v hz="$(getconf CLK_TCK)" \
      'BEGIN {printf "%.0f", t / hz * 1e6 / n}')
    printf '%-28s round %d: %10s req/s  p50 %9s  p99 %9s  server CPU %4s us/req  %s\n' \
      "$label" "$round" "$rps" "$p50" "$p99" "$cpu_us" "$note"
    printf '%s|%s|%s|%s|%s\n' "$label" "$rps" "$p50" "$p99" "$cpu_us" >>"$results"
  done
done

# Medians per scenario, and the ratios.
python3 - "$results" <<'EOF'
import statistics, sys

def seconds(text):
    for unit, factor in (("us", 1e-6), ("ms", 1e-3), ("s", 1.0)):
        if text.endswith(unit):
            return float(text[: -len(unit)]) * factor
    raise ValueError(text)

rows = {}
for line in open(sys.argv[1]):
    label, rps, p50, p99, cpu = line.strip().split("|")
    rows.setdefault(label, []).append((float(rps), seconds(p50), seconds(p99), float(cpu)))
median = {
    label: [statistics.median(values) for values in zip(*samples)]
    for label, samples in rows.items()
}
print(f"\n{'scenario (median of rounds)':30} {'req/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'CPU us/req':>10}")
for label, (rps, p50, p99, cpu) in median.items():
    print(f"{label:30} {rps:10.0f} {p50 * 1e3:8.3f} {p99 * 1e3:8.3f} {cpu:10.0f}")
get = lambda label, i: median[label][i]
print()
print(f"sync noop / axum hello-world:      {get('taskhost sync noop', 0) / get('axum hello-world', 0):.3f}  (goal >= 0.30)")
print(f"sync noop / wasmtime serve no-op:  {get('taskhost sync noop', 0) / get('wasmtime serve no-op', 0):.2f}x (goal >= 2.5x)")
print(f"sync uppercase / sync noop:        {get('taskhost sync uppercase', 0) / get('taskhost sync noop', 0):.2f}  (goal >= 0.90)")
print(f"async accepted jobs/s:             {get('taskhost async noop (202)', 0):.0f}  (goal >= 25,000)")
print(f"c=1 p50 taskhost / wasmtime serve: {get('taskhost sync noop c=1', 1) / get('wasmtime serve no-op c=1', 1):.2f}  (goal <= 1)")
print(f"c=1 p99 taskhost / wasmtime serve: {get('taskhost sync noop c=1', 2) / get('wasmtime serve no-op c=1', 2):.2f}  (goal <= 1)")
EOF
