#!/bin/sh
# One command from a fresh Debian machine to every test passing: installs
# missing dependencies, builds, and runs the whole suite with CTest.
# Extra arguments go to ctest, e.g. -L contract or -R StorageContract.
set -eu
cd "$(dirname "$0")/.."
./scripts/build.sh
cd build
exec ctest --output-on-failure -j"$(nproc)" "$@"
