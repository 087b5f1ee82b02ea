#!/bin/sh
# Installs the SDK from a build tree into a fresh prefix, builds a plugin
# against that prefix alone (no path into the source tree), and has the
# installed host load it.
#   build_against_installed_sdk.sh BUILD_DIR PLUGIN_SOURCE_DIR
set -eu
build_dir=$1
plugin_src=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cmake --install "$build_dir" --prefix "$work/prefix" >/dev/null
cmake -S "$plugin_src" -B "$work/build" -G Ninja -DCMAKE_PREFIX_PATH="$work/prefix" >/dev/null
cmake --build "$work/build" >/dev/null
plugin="$work/build/feature-hello.so"
test -f "$plugin"

# No include path may point back into the source tree.
if grep -q -- "-I$(cd "$(dirname "$0")/../.." && pwd)" "$work/build/build.ninja"; then
  echo "FAIL: the plugin was built with an include path into the source tree" >&2
  exit 1
fi

# The in-tree feature plugins, each built on its own against the prefix.
repo=$(cd "$(dirname "$0")/../.." && pwd)
for feature in "$repo"/plugins/feature-*/; do
  name=$(basename "$feature")
  cmake -S "$feature" -B "$work/$name" -G Ninja -DCMAKE_PREFIX_PATH="$work/prefix" >/dev/null
  cmake --build "$work/$name" >/dev/null
  if grep -q -- "-I$repo/host" "$work/$name/build.ninja"; then
    echo "FAIL: $name was built with the host's private headers" >&2
    exit 1
  fi
  test -f "$work/$name/$name.so"
done

cat >"$work/switchboard.toml" <<TOML
[auth]
algorithm = "HS256"
secret = "third-party-test-secret"
[bus]
plugin = "bus-gochannel"
[storage]
plugin = "storage-sqlite"
[storage.config]
path = "$work/var/switchboard.db"
[[features]]
plugin = "$plugin"
[features.config]
greeting = "bonjour"
[[features]]
plugin = "$work/feature-pins/feature-pins.so"
[[features]]
plugin = "$work/feature-receipts/feature-receipts.so"
TOML

"$work/prefix/bin/switchboard" check --config "$work/switchboard.toml"
SWITCHBOARD_PLUGIN_PATH="$work/build" "$work/prefix/bin/switchboard" plugins | grep -q "feature  feature-hello"
echo "PASS: plugins built against the installed SDK alone load in the installed host"
