#!/usr/bin/env bash
# Prometheus and promtool, and docker-compose, from the distribution's packages, for the
# tests of deploy/ (`make ops-tools`; `make test`, `make unit` and `make e2e` depend on
# it). Does nothing when all three are on the PATH. The package's own service is never
# started: tests run their own Prometheus on a free port. docker-compose (1.x, Debian's)
# checks docker-compose.yml with `docker-compose config`, which needs no Docker engine.
set -euo pipefail
if command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1 \
  && command -v docker-compose >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "Prometheus and docker-compose are needed for the tests: run" \
    "'sudo apt-get install prometheus docker-compose'" >&2
  exit 1
fi
echo "installing prometheus and docker-compose (Debian packages) for the tests"
# keep the package's systemd/init service from starting during the install
policy=/usr/sbin/policy-rc.d
made_policy=
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy" && made_policy=1
fi
trap '[ -n "$made_policy" ] && rm -f "$policy"' EXIT
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
  prometheus docker-compose >/dev/null
command -v prometheus >/dev/null && command -v promtool >/dev/null \
  && command -v docker-compose >/dev/null
