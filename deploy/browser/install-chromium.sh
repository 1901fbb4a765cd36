#!/usr/bin/env bash
# Chromium from the distribution's packages, for the browser tests of the console
# (`make browser-tools`; `make test` and `make browser` depend on it). Does nothing when
# /usr/bin/chromium is there. The tests drive it headless with Playwright, which never
# downloads a browser of its own.
set -euo pipefail
if [ -x /usr/bin/chromium ]; then
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "Chromium is needed for the browser tests: run 'sudo apt-get install chromium'" >&2
  exit 1
fi
echo "installing chromium (Debian package) for the browser tests"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
  chromium fonts-dejavu-core >/dev/null
test -x /usr/bin/chromium
