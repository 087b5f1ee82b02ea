#!/bin/sh
# Installs missing dependencies (Debian packages), then configures and builds
# into ./build with Ninja (and ccache when present).
set -eu
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
if [ ! -f build/build.ninja ]; then
  cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo
fi
cmake --build build
