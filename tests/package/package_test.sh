#!/bin/sh
# Builds the Debian packages from a build tree (cpack -G DEB, into a temporary
# directory) and checks them as an operator and a plugin author would:
#   - metadata (dpkg-deb -I) and contents (dpkg-deb -c) of switchboard and
#     switchboard-dev: the host, every in-tree plugin, the conffile, the unit,
#     the user setup; the SDK headers, CMake package and contract runner;
#   - the maintainer scripts (sh -n, shellcheck when installed);
#   - both extracted into a scratch root (dpkg-deb -x): the installed host checks
#     the installed config, lists the installed plugins (from the scratch root,
#     not the build tree), serves on it and stops cleanly;
#   - the unit: key directives, `systemd-analyze verify`, `systemd-analyze
#     security` below 2.5; the sysusers.d file creates the user in a scratch root;
#   - the SDK: a plugin built against the scratch root's CMake package alone
#     loads in the installed host; the installed contract runner runs.
#   package_test.sh BUILD_DIR
set -eu

build=$(cd "${1:?usage: package_test.sh BUILD_DIR}" && pwd)
src=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/switchboard-package.XXXXXX")
host_pid=
cleanup() {
  if [ -n "$host_pid" ]; then kill "$host_pid" 2>/dev/null || true; wait "$host_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }
ok() { echo "ok: $*"; }
die() { echo "FAIL: $*" >&2; exit 1; }
started=$(date +%s)

for tool in cpack dpkg-deb; do
  command -v "$tool" >/dev/null || die "$tool not found (apt-get install cmake dpkg-dev)"
done
[ -f "$build/CPackConfig.cmake" ] || die "$build/CPackConfig.cmake missing: is $build a configured build tree?"
[ -x "$build/bin/switchboard" ] || die "$build/bin/switchboard missing: build the tree first"

# --- build the packages ------------------------------------------------------
if ! (cd "$work" && cpack --config "$build/CPackConfig.cmake" -G DEB -B "$work/out") >"$work/cpack.log" 2>&1; then
  cat "$work/cpack.log" >&2
  die "cpack -G DEB failed"
fi
runtime=$(ls "$work"/out/switchboard_*.deb 2>/dev/null || true)
dev=$(ls "$work"/out/switchboard-dev_*.deb 2>/dev/null || true)
if [ -z "$runtime" ] || [ -z "$dev" ]; then
  ls "$work/out" >&2
  die "cpack did not make switchboard_*.deb and switchboard-dev_*.deb"
fi
[ "$(find "$work/out" -maxdepth 1 -name '*.deb' | wc -l)" -eq 2 ] || fail "more than two packages: $(ls "$work"/out/*.deb)"
ok "cpack made $(basename "$runtime") and $(basename "$dev")"

# --- metadata ----------------------------------------------------------------
field() { dpkg-deb -f "$1" "$2"; }
version=$(sed -n 's/^project(Switchboard VERSION \([0-9.]*\).*/\1/p' "$src/CMakeLists.txt")
# The SDK has its own version (a plugin author asks for it in find_package).
sdk_version=$(sed -n 's/^#define SWITCHBOARD_SDK_VERSION "\([0-9.]*\)"/\1/p' "$src/sdk/include/switchboard/abi.hpp")
for deb in "$runtime" "$dev"; do
  name=$(basename "$deb")
  [ "$(field "$deb" Version)" = "$version" ] || fail "$name: Version $(field "$deb" Version), expected $version"
  [ "$(field "$deb" Architecture)" = "$(dpkg --print-architecture)" ] || fail "$name: Architecture $(field "$deb" Architecture)"
  field "$deb" Maintainer | grep -q '<.*@.*>' || fail "$name: no Maintainer with an address"
  [ "$(field "$deb" Description | wc -l)" -ge 3 ] || fail "$name: no extended Description"
  # dpkg-shlibdeps ran (CPACK_DEBIAN_PACKAGE_SHLIBDEPS): the C library is a dependency.
  field "$deb" Depends | grep -q 'libc6 (>=' || fail "$name: Depends has no shlibdeps: $(field "$deb" Depends)"
done
[ "$(field "$runtime" Package)" = switchboard ] || fail "runtime package is named $(field "$runtime" Package)"
[ "$(field "$dev" Package)" = switchboard-dev ] || fail "dev package is named $(field "$dev" Package)"
for lib in libsqlite3 libpqxx libnats libtomlplusplus; do  # the plugins' libraries too
  field "$runtime" Depends | grep -q "$lib" || fail "switchboard: Depends lacks $lib: $(field "$runtime" Depends)"
done
field "$dev" Depends | grep -q "switchboard (= $version)" || fail "switchboard-dev does not depend on switchboard (= $version)"
ok "metadata: version $version, shlibdeps, names, descriptions"

# --- contents ----------------------------------------------------------------
dpkg-deb -c "$runtime" | awk '{print $6}' | sed 's#^\./#/#; s#/$##' | sort >"$work/runtime.list"
dpkg-deb -c "$dev" | awk '{print $6}' | sed 's#^\./#/#; s#/$##' | sort >"$work/dev.list"
expect() {  # expect LIST PATH...
  list=$1
  shift
  for path in "$@"; do
    grep -qx "$path" "$work/$list.list" || fail "$list package lacks $path"
  done
}
plugins=$(cd "$src/plugins" && for d in */; do [ -f "$d/CMakeLists.txt" ] && echo "${d%/}"; done)
[ -n "$plugins" ] || die "no plugins found in $src/plugins"
expect runtime /usr/bin/switchboard /etc/switchboard/switchboard.toml \
  /usr/lib/systemd/system/switchboard.service /usr/lib/sysusers.d/switchboard.conf
for p in $plugins; do expect runtime "/usr/lib/switchboard/plugins/$p.so"; done
expect runtime /usr/share/switchboard/chat/index.html /usr/share/switchboard/chat/app.js \
  /usr/share/switchboard/chat/client/index.js /usr/share/switchboard/chat/client/src/client.js
expect dev /usr/bin/switchboard-contract /usr/include/switchboard/plugin.hpp /usr/include/switchboard/services.hpp \
  /usr/include/switchboard/bus.hpp /usr/include/switchboard/storage.hpp /usr/include/switchboard/feature.hpp \
  /usr/include/switchboard/contract/plugin_under_test.hpp /usr/lib/libswitchboard_contract.a \
  /usr/lib/cmake/SwitchboardSDK/SwitchboardSDKConfig.cmake /usr/lib/cmake/SwitchboardSDK/SwitchboardSDKConfigVersion.cmake \
  /usr/lib/cmake/SwitchboardSDK/SwitchboardSDKTargets.cmake /usr/lib/cmake/SwitchboardSDK/SwitchboardPlugin.cmake
# Every header of the SDK and of the contract kit.
for h in $(cd "$src/sdk/include" && find switchboard -name '*.hpp') $(cd "$src/sdk/contract/include" && find switchboard -name '*.hpp'); do
  expect dev "/usr/include/$h"
done
# No file in both (dpkg would refuse the second), nothing misplaced.
both=$(dpkg-deb -c "$runtime" | awk '$1 !~ /^d/ {print $6}' | sed 's#^\./#/#' | sort | comm -12 - "$work/dev.list")
[ -z "$both" ] || fail "files in both packages: $both"
grep -E '^/usr/local|/test-|^/home|^/work|^/tmp' "$work/runtime.list" "$work/dev.list" &&
  fail "misplaced files (above)"
grep -E '^/usr/include|/cmake/|switchboard-contract' "$work/runtime.list" && fail "SDK files in the runtime package (above)"
grep -E '/plugins/.*\.so$|^/etc|/systemd/|^/usr/bin/switchboard$' "$work/dev.list" && fail "runtime files in switchboard-dev (above)"
ok "contents: host, $(echo "$plugins" | wc -l) plugins, conffile, unit, sysusers; SDK headers, CMake package, contract runner"

# --- maintainer scripts ------------------------------------------------------
dpkg-deb -e "$runtime" "$work/control"
[ "$(cat "$work/control/conffiles" 2>/dev/null)" = /etc/switchboard/switchboard.toml ] ||
  fail "conffiles is not exactly /etc/switchboard/switchboard.toml: $(cat "$work/control/conffiles" 2>/dev/null)"
for script in postinst prerm postrm; do
  f="$work/control/$script"
  [ -x "$f" ] || { fail "no executable $script"; continue; }
  sh -n "$f" || fail "$script: syntax error"
  if command -v shellcheck >/dev/null; then shellcheck -s sh "$f" >&2 || fail "$script: shellcheck"; fi
done
grep -q 'systemd-sysusers switchboard.conf' "$work/control/postinst" || fail "postinst does not create the user with systemd-sysusers"
grep -q 'adduser --system' "$work/control/postinst" || fail "postinst has no adduser fallback"
grep -q 'JWT_SECRET=' "$work/control/postinst" || fail "postinst does not write a first JWT_SECRET"
grep -q 'deb-systemd-helper purge' "$work/control/postrm" || fail "postrm does not purge the unit's state"
ok "maintainer scripts: conffiles, postinst (user, environment, unit), prerm, postrm"

# --- installed into a scratch root --------------------------------------------
root="$work/root"
dpkg-deb -x "$runtime" "$root"
dpkg-deb -x "$dev" "$root"
data="$work/data"
mkdir -p "$data"
conf="$root/etc/switchboard/switchboard.toml"
# The environment the unit would give it (EnvironmentFile), not this shell's.
installed() { env -u SWITCHBOARD_PLUGIN_PATH -u BUS_TYPE -u LOG_LEVEL -u LOG_FORMAT LISTEN=127.0.0.1:0 \
  JWT_SECRET=package-test-secret-0123456789 SWITCHBOARD_DATA="$data" "$@"; }

if installed "$root/usr/bin/switchboard" check --config "$conf" >"$work/check.out" 2>&1; then
  for p in bus-gochannel storage-sqlite feature-reactions feature-pins feature-typing feature-receipts; do
    grep -q "$p" "$work/check.out" || fail "check does not mention $p: $(cat "$work/check.out")"
  done
  [ -f "$data/switchboard.db" ] || fail "check did not open the database under SWITCHBOARD_DATA"
  ok "installed check: $(cat "$work/check.out")"
else
  fail "installed switchboard check --config /etc/switchboard/switchboard.toml: $(cat "$work/check.out")"
fi
# The production config has no default secret: without JWT_SECRET it is refused.
if env -u JWT_SECRET -u SWITCHBOARD_PLUGIN_PATH SWITCHBOARD_DATA="$data" "$root/usr/bin/switchboard" check \
    --config "$conf" >"$work/nosecret.out" 2>&1; then
  fail "check passed without JWT_SECRET"
else
  grep -q 'JWT_SECRET' "$work/nosecret.out" || fail "without JWT_SECRET, check says: $(cat "$work/nosecret.out")"
fi

# static_dir = "chat" (commented out in the conffile) is the installed chat.
sed 's/^# static_dir = "chat"/static_dir = "chat"/' "$conf" >"$work/with-chat.toml"
grep -q '^static_dir = "chat"' "$work/with-chat.toml" || fail "the conffile has no static_dir = \"chat\" line to uncomment"
if env -u SWITCHBOARD_PLUGIN_PATH JWT_SECRET=package-test-secret-0123456789 SWITCHBOARD_DATA="$data" \
    "$root/usr/bin/switchboard" check --config "$work/with-chat.toml" >"$work/chat.out" 2>&1; then
  ok "static_dir = \"chat\" finds $root/usr/share/switchboard/chat"
else
  fail "check with static_dir = \"chat\": $(cat "$work/chat.out")"
fi

installed "$root/usr/bin/switchboard" plugins >"$work/plugins.out" 2>&1 || fail "installed switchboard plugins: $(cat "$work/plugins.out")"
for p in $plugins; do
  grep -Eq "^[a-z]+ +$p +.* $root/usr/lib/switchboard/plugins/$p\.so$" "$work/plugins.out" ||
    fail "plugins does not list $p from $root/usr/lib/switchboard/plugins:
$(cat "$work/plugins.out")"
done
grep -q "$build" "$work/plugins.out" && fail "plugins lists files of the build tree:
$(cat "$work/plugins.out")"
ok "installed plugins: $(($(wc -l <"$work/plugins.out") - 1)) found in the scratch root"

# The installed host serves on the installed config, and stops cleanly on SIGTERM.
# env itself in the background (a function would leave a subshell between $! and the host).
env -u SWITCHBOARD_PLUGIN_PATH -u BUS_TYPE -u LOG_LEVEL -u LOG_FORMAT LISTEN=127.0.0.1:0 \
  JWT_SECRET=package-test-secret-0123456789 SWITCHBOARD_DATA="$data" \
  "$root/usr/bin/switchboard" serve --config "$conf" >"$work/serve.log" 2>&1 &
host_pid=$!
port=
for _ in $(seq 200); do
  port=$(sed -n 's/.*listening address=127\.0\.0\.1:\([0-9]*\).*/\1/p' "$work/serve.log" | head -1)
  [ -n "$port" ] && break
  kill -0 "$host_pid" 2>/dev/null || break
  sleep 0.05
done
if [ -z "$port" ]; then
  fail "the installed host did not start: $(cat "$work/serve.log")"
else
  ready=$(/usr/bin/python3 -c "import urllib.request,sys; print(urllib.request.urlopen('http://127.0.0.1:$port/ready', timeout=5).status)" 2>&1) ||
    true
  [ "$ready" = 200 ] || fail "GET /ready on the installed host: $ready"
fi
kill -TERM "$host_pid" 2>/dev/null || true
for _ in $(seq 400); do kill -0 "$host_pid" 2>/dev/null || break; sleep 0.05; done
kill -0 "$host_pid" 2>/dev/null && { fail "the installed host did not stop within 20 s of SIGTERM"; kill -9 "$host_pid"; }
status=0
wait "$host_pid" || status=$?
host_pid=
[ "$status" -eq 0 ] || fail "the installed host exited $status on SIGTERM: $(tail -5 "$work/serve.log")"
[ -n "$port" ] && [ "$status" -eq 0 ] && ok "installed serve: /ready 200 on port $port, exit 0 on SIGTERM"

# --- the systemd unit and the user ----------------------------------------------
unit="$root/usr/lib/systemd/system/switchboard.service"
for directive in 'User=switchboard' 'Group=switchboard' 'EnvironmentFile=-/etc/switchboard/environment' \
    'ExecStart=/usr/bin/switchboard serve --config /etc/switchboard/switchboard.toml' \
    'StateDirectory=switchboard' 'WorkingDirectory=/var/lib/switchboard' 'ProtectSystem=strict' 'ProtectHome=yes' \
    'PrivateTmp=yes' 'NoNewPrivileges=yes' 'PrivateDevices=yes' 'CapabilityBoundingSet=' \
    'RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX' 'SystemCallFilter=@system-service' \
    'WantedBy=multi-user.target'; do
  grep -qx -- "$directive" "$unit" || fail "the unit lacks the line $directive"
done
grep -Eqx 'LimitNOFILE=[0-9]{5,}' "$unit" || fail "the unit has no LimitNOFILE of at least 10000"
grep -q '/var/lib/switchboard' "$conf" || fail "the config does not keep its data under /var/lib/switchboard"
if command -v systemd-analyze >/dev/null; then
  # Verified as installed, with ExecStart pointing at the scratch root's binary
  # (verify checks that it exists). Warnings are printed but exit 0: any output fails.
  mkdir -p "$work/unit"
  sed "s#/usr/bin/switchboard#$root/usr/bin/switchboard#" "$unit" >"$work/unit/switchboard.service"
  if systemd-analyze verify --man=no "$work/unit/switchboard.service" >"$work/verify.out" 2>&1 && [ ! -s "$work/verify.out" ]; then
    ok "systemd-analyze verify: clean"
  else
    fail "systemd-analyze verify: $(cat "$work/verify.out")"
  fi
  if systemd-analyze security --offline=yes --threshold=25 "$work/unit/switchboard.service" >"$work/security.out" 2>&1; then
    ok "systemd-analyze security: $(grep -o 'Overall exposure level.*' "$work/security.out")"
  else
    fail "systemd-analyze security above 2.5: $(tail -3 "$work/security.out")"
  fi
else
  echo "SKIP: systemd-analyze not installed: the unit was checked with grep only"
fi
if command -v systemd-sysusers >/dev/null; then
  mkdir -p "$work/sysroot/etc"
  systemd-sysusers --root="$work/sysroot" "$root/usr/lib/sysusers.d/switchboard.conf" >"$work/sysusers.out" 2>&1 ||
    fail "systemd-sysusers: $(cat "$work/sysusers.out")"
  grep -Eq '^switchboard:x:[0-9]+:[0-9]+:.*:/var/lib/switchboard:/usr/sbin/nologin$' "$work/sysroot/etc/passwd" ||
    fail "sysusers.d did not create a switchboard system user: $(cat "$work/sysroot/etc/passwd" 2>/dev/null)"
  ok "sysusers.d: $(cat "$work/sysroot/etc/passwd")"
else
  grep -q '^u switchboard ' "$root/usr/lib/sysusers.d/switchboard.conf" || fail "sysusers.d file does not declare the user"
fi

# --- the SDK, as a plugin author uses it ------------------------------------------
mkdir -p "$work/consumer"
cat >"$work/consumer/CMakeLists.txt" <<CMAKE
cmake_minimum_required(VERSION 3.25)
project(package_consumer LANGUAGES CXX)
find_package(SwitchboardSDK $sdk_version REQUIRED)
switchboard_add_plugin(feature-hello SOURCES $src/tests/sdk/feature-hello/hello_feature.cpp)
file(WRITE \${CMAKE_BINARY_DIR}/sdk.txt "\${SwitchboardSDK_DIR}\n\${SWITCHBOARD_CONTRACT_RUNNER}\n")
CMAKE
if cmake -S "$work/consumer" -B "$work/consumer/build" -G Ninja -DCMAKE_PREFIX_PATH="$root/usr" \
      -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF -DCMAKE_FIND_USE_SYSTEM_PACKAGE_REGISTRY=OFF >"$work/consumer.log" 2>&1 &&
    cmake --build "$work/consumer/build" >>"$work/consumer.log" 2>&1; then
  [ "$(sed -n 1p "$work/consumer/build/sdk.txt")" = "$root/usr/lib/cmake/SwitchboardSDK" ] ||
    fail "SwitchboardSDK was found at $(sed -n 1p "$work/consumer/build/sdk.txt"), not in the scratch root"
  [ "$(sed -n 2p "$work/consumer/build/sdk.txt")" = "$root/usr/bin/switchboard-contract" ] ||
    fail "SWITCHBOARD_CONTRACT_RUNNER is $(sed -n 2p "$work/consumer/build/sdk.txt")"
  grep -q -- "-I$src" "$work/consumer/build/build.ninja" && fail "the plugin was built with an include path into $src"
  cat >"$work/hello.toml" <<TOML
[auth]
secret = "package-test-secret-0123456789"
[bus]
plugin = "bus-gochannel"
[storage]
plugin = "storage-sqlite"
[storage.config]
path = "$data/hello.db"
[[features]]
plugin = "$work/consumer/build/feature-hello.so"
[features.config]
greeting = "bonjour"
TOML
  installed "$root/usr/bin/switchboard" check --config "$work/hello.toml" >"$work/hello.out" 2>&1 ||
    fail "the installed host does not load a plugin built against the installed SDK: $(cat "$work/hello.out")"
  ok "SDK: feature-hello built against $root/usr alone loads in the installed host"
else
  cat "$work/consumer.log" >&2
  fail "building a plugin against the installed SDK failed (log above)"
fi
if "$root/usr/bin/switchboard-contract" --plugin "$root/usr/lib/switchboard/plugins/bus-gochannel.so" >"$work/contract.out" 2>&1; then
  ok "installed contract runner: $(grep -o '[0-9]* tests* from .* ran' "$work/contract.out" | tail -1) on the installed bus-gochannel"
else
  fail "the installed contract runner on bus-gochannel: $(tail -20 "$work/contract.out")"
fi

elapsed=$(($(date +%s) - started))
if [ "$failures" -ne 0 ]; then
  echo "$failures problem(s) with the Debian packages (${elapsed} s)" >&2
  exit 1
fi
echo "PASS: switchboard and switchboard-dev packages (${elapsed} s)"
