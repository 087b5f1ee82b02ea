#!/bin/sh
# The JavaScript client's tests against the real host.
#   clients/js/scripts/test.sh <switchboard binary>
# Installs the dev dependencies (ws) from package-lock.json when node_modules
# is missing or older than the lock file, then runs Node's test runner.
set -eu
if [ $# -ne 1 ]; then
  echo "usage: $0 <switchboard binary>" >&2
  exit 2
fi
bin=$1
case $bin in
  /*) ;;
  *) bin="$(pwd)/$bin" ;;
esac
if [ ! -x "$bin" ]; then
  echo "$0: $bin is not an executable" >&2
  exit 2
fi
cd "$(dirname "$0")/.."
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "$0: node and npm are needed (Node 18 or newer)" >&2
  exit 1
fi
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules ]; then
  npm ci --no-audit --no-fund
  touch node_modules
fi
SWITCHBOARD_BIN=$bin exec node --test test/
