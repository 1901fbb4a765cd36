#!/usr/bin/env bash
# Prometheus and promtool from the distribution's packages, for the tests of deploy/
# (`make ops-tools`; `make test`, `make unit` and `make e2e` depend on it). Does nothing
# when both are on the PATH. The package's own service is never started: tests run
# their own Prometheus on a free port.
set -euo pipefail
if command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "Prometheus is needed for the tests: run 'sudo apt-get install prometheus'" >&2
  exit 1
fi
echo "installing prometheus (Debian package) for the tests"
# keep the package's systemd/init service from starting during the install
policy=/usr/sbin/policy-rc.d
made_policy=
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy" && made_policy=1
fi
trap '[ -n "$made_policy" ] && rm -f "$policy"' EXIT
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null
command -v prometheus >/dev/null && command -v promtool >/dev/null
