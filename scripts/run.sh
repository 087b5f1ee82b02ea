#!/bin/sh
# One command from a fresh Debian machine to a running host on the embedded
# default (in-process bus, SQLite under ./var/). Extra arguments go to
# `switchboard serve`, e.g. --config config/other.toml.
set -eu
cd "$(dirname "$0")/.."
./scripts/build.sh
if [ "$#" -eq 0 ]; then set -- --config config/switchboard.toml; fi
exec ./build/bin/switchboard serve "$@"
