# Sourced by the HTTP benchmarks: makes sure wrk is installed (from Debian's packages when
# this runs as root), or says how to install it.
if ! command -v wrk >/dev/null; then
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk
  else
    echo "${0##*/} needs wrk: apt-get install wrk" >&2
    exit 1
  fi
fi
