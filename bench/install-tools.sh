#!/usr/bin/env bash
# wrk, from the distribution's package, for the benchmark's plain HTTP phases (`make
# bench`, `make bench-short`). Does nothing when wrk is on the PATH.
set -euo pipefail
if command -v wrk >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "wrk is needed for the benchmark: run 'sudo apt-get install wrk'" >&2
  exit 1
fi
echo "installing wrk (Debian package) for the benchmark"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends wrk >/dev/null
command -v wrk >/dev/null
