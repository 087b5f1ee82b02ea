#!/bin/sh
# Installs Switchboard's build and test dependencies from Debian packages, only
# when something is missing, so a second run costs a dpkg query and nothing more.
set -eu

PACKAGES="
  build-essential cmake ninja-build ccache pkg-config
  libboost1.81-all-dev libboost-json1.81-dev libboost-url1.81-dev
  libtomlplusplus-dev libsqlite3-dev libpqxx-dev libnats-dev libjwt-dev
  libgtest-dev
  nats-server postgresql pgbouncer python3 python3-websockets openssl
  clang libclang-rt-14-dev
  chromium prometheus dpkg-dev fakeroot abigail-tools
"
# Node.js runs the JavaScript client's tests and the browser test; it may come
# from elsewhere (its npm then conflicts with Debian's).
command -v npm >/dev/null 2>&1 || PACKAGES="$PACKAGES nodejs npm"

# `--bench`: also what bench/ needs (the peers, the profiler).
if [ "${1:-}" = "--bench" ]; then
  PACKAGES="$PACKAGES nginx-light libnginx-mod-nchan linux-perf gnuplot-nox"
fi

missing=""
for p in $PACKAGES; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing="$missing $p"
  fi
done

if [ -z "$missing" ]; then
  exit 0
fi

echo "install-deps: installing:$missing" >&2
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing
