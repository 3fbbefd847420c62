#!/usr/bin/env bash
# Replays every committed corpus (tests/fuzz/corpus/<target>/) through its sanitizer-built replay
# binary in BIN_DIR (default build-asan/replay). One line per target: "PASS fuzz_<t> ..." or
# "FAIL fuzz_<t> ..."; the failing target's output goes to tests/artifacts/fuzz-replay-<t>.log.
# Exits non-zero when any target failed. Used by `make fuzz-replay` and tests/run-all.sh.
set -uo pipefail
cd "$(dirname "$0")/../.."
BIN_DIR=${1:-build-asan/replay}
mkdir -p tests/artifacts
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
status=0
for dir in tests/fuzz/corpus/*/; do
  t=$(basename "$dir")
  bin="$BIN_DIR/fuzz_$t"
  log="tests/artifacts/fuzz-replay-$t.log"
  if [ ! -x "$bin" ]; then
    echo "FAIL fuzz_$t (no binary $bin)"; status=1; continue
  fi
  if "$bin" "$dir" >"$log" 2>&1; then
    echo "PASS fuzz_$t ($(tail -1 "$log"))"
  else
    echo "FAIL fuzz_$t (see $log)"; tail -30 "$log" | sed 's/^/    /'
    status=1
  fi
done
exit $status
