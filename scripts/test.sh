#!/bin/sh
# One command from a fresh Debian machine to every test passing: installs
# missing dependencies, builds, and runs the whole suite with CTest — then the
# same suite under AddressSanitizer + UndefinedBehaviorSanitizer, the unit,
# e2e and cluster tests under ThreadSanitizer, and each libFuzzer target for
# a bounded time. A sanitizer report anywhere (host, plugin, test) fails.
#
#   scripts/test.sh                      everything (what CI runs)
#   scripts/test.sh --plain              the plain build only
#   scripts/test.sh --sanitize=address,undefined   one sanitizer build only
#   scripts/test.sh --sanitize=thread
#   scripts/test.sh --fuzz[=SECONDS]     the fuzz targets only (default 30 s each)
# Further arguments go to ctest, e.g. -L contract or -R StorageContract.
set -eu
cd "$(dirname "$0")/.."
root=$(pwd)

stages="plain asan tsan fuzz"
fuzz_seconds=${SWITCHBOARD_FUZZ_SECONDS:-30}
case "${1:-}" in
  --plain) stages="plain"; shift ;;
  --sanitize=address,undefined|--sanitize=undefined,address|--sanitize=address) stages="asan"; shift ;;
  --sanitize=thread) stages="tsan"; shift ;;
  --fuzz) stages="fuzz"; shift ;;
  --fuzz=*) stages="fuzz"; fuzz_seconds=${1#--fuzz=}; shift ;;
  --sanitize=*) echo "test.sh: unknown sanitizer set ${1#--sanitize=} (address,undefined or thread)" >&2; exit 2 ;;
esac

./scripts/install-deps.sh
jobs=$(nproc)

# Fails if any sanitizer wrote a report into $1.
check_reports() {
  if ls "$1"/* >/dev/null 2>&1; then
    echo "test.sh: sanitizer reports:" >&2
    for f in "$1"/*; do echo "== $f" >&2; head -60 "$f" >&2; done
    return 1
  fi
}

# The tests ctest last saw fail in build directory $1, on one line; their
# output's last lines are kept for the summary at the end.
failed_tests() {
  tr '\n' ' ' < "$1/Testing/Temporary/LastTestsFailed.log" 2>/dev/null || echo "(see above)"
  python3 scripts/failed-output.py "$1/Testing/Temporary/LastTest.log" >> "$root/.test-failures.log" 2>/dev/null || true
}

rm -f "$root/.test-failures.log"
status=0
failed=""  # what failed, repeated at the end: a long log's tail names it
note_failure() { failed="$failed
  $1"; status=1; }
for stage in $stages; do
  echo "== test.sh: $stage" >&2
  case $stage in
    plain)
      ./scripts/build.sh
      (cd build && ctest --output-on-failure -j"$jobs" "$@") || note_failure "plain: $(failed_tests build)"
      ;;
    asan|tsan)
      if [ "$stage" = asan ]; then sanitize="address,undefined"; labels="."; else sanitize="thread"; labels="unit|e2e|cluster"; fi
      dir="build-$stage"
      [ -f "$dir/build.ninja" ] || cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
        -DSWITCHBOARD_SANITIZE="$sanitize"
      cmake --build "$dir"
      reports="$root/$dir/sanitizer-reports"
      rm -rf "$reports"; mkdir -p "$reports"
      # Reports go to files (a host's stderr is the test's to read), and any
      # one fails the run even where a test would not notice.
      ASAN_OPTIONS="log_path=$reports/asan:detect_leaks=1:abort_on_error=0" \
      LSAN_OPTIONS="suppressions=$root/tests/sanitizers/lsan.supp:print_suppressions=0" \
      UBSAN_OPTIONS="log_path=$reports/ubsan:print_stacktrace=1:halt_on_error=1" \
      TSAN_OPTIONS="log_path=$reports/tsan:suppressions=$root/tests/sanitizers/tsan.supp:halt_on_error=0:second_deadlock_stack=1" \
        sh -c 'dir=$1; labels=$2; jobs=$3; shift 3; cd "$dir" && ctest --output-on-failure -j"$jobs" -L "$labels" --timeout 900 "$@"' \
        sh "$dir" "$labels" "$jobs" "$@" || note_failure "$stage: $(failed_tests "$dir")"
      check_reports "$reports" || note_failure "$stage: sanitizer reports in $reports: $(ls "$reports" | tr '\n' ' ')"
      ;;
    fuzz)
      dir="build-fuzz"
      [ -f "$dir/build.ninja" ] || cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
        -DCMAKE_CXX_COMPILER=clang++ -DSWITCHBOARD_FUZZ=ON
      cmake --build "$dir" --target fuzz_targets
      for target in frame_parser command_decoder config_loader bus_wire plugin_file; do
        corpus="$root/$dir/corpus/$target"
        mkdir -p "$corpus"
        # Seeds: committed ones, and those the build makes (a real plugin file).
        seeds=""
        for d in "tests/fuzz/corpus/$target" "$dir/fuzz/seed/$target"; do [ -d "$d" ] && seeds="$seeds $d"; done
        echo "== fuzz $target for ${fuzz_seconds}s" >&2
        # shellcheck disable=SC2086 # $seeds: directories without spaces, one word each
        "$dir/fuzz/${target}_fuzz" -max_total_time="$fuzz_seconds" -max_len=65536 -timeout=10 -rss_limit_mb=2048 \
          -print_final_stats=1 "$corpus" $seeds 2>"$dir/fuzz-$target.log" || {
          note_failure "fuzz: $target (log: $dir/fuzz-$target.log)"; tail -60 "$dir/fuzz-$target.log" >&2; }
        grep -E "stat::number_of_executed_units|Done" "$dir/fuzz-$target.log" >&2 || true
      done
      ;;
  esac
done
if [ $status -ne 0 ]; then
  [ -f "$root/.test-failures.log" ] && cat "$root/.test-failures.log" >&2
  echo "== test.sh: FAILED:$failed" >&2
else
  echo "== test.sh: every stage passed ($stages)" >&2
fi
exit $status
