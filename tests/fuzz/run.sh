#!/usr/bin/env bash
# make fuzz: runs each libFuzzer target in build-fuzz/fuzz/ for FUZZ_SECONDS, one after the other (the
# machine is small and shared). New inputs go to a scratch corpus (build-fuzz/corpus/<t>/); the
# committed seeds in tests/fuzz/corpus/<t>/ are read, not written. With FUZZ_MERGE=1 the scratch
# corpus is merged (-merge=1, coverage-increasing inputs only) into the committed one afterwards.
# Crashes land in build-fuzz/crashes/; logs in build-fuzz/logs/. Exits non-zero if any target crashed.
set -uo pipefail
cd "$(dirname "$0")/../.."
SECONDS_PER_TARGET=${FUZZ_SECONDS:-60}
MERGE=${FUZZ_MERGE:-0}
TARGETS=${FUZZ_TARGETS:-"cookie query request jws jwks discovery token_response session_record dotenv next"}
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
mkdir -p build-fuzz/crashes build-fuzz/logs
status=0
summary=()
for t in $TARGETS; do
  bin=build-fuzz/fuzz/fuzz_$t
  scratch=build-fuzz/corpus/$t
  seeds=tests/fuzz/corpus/$t
  mkdir -p "$scratch" "$seeds"
  dict=()
  [ -f "tests/fuzz/dict/$t.dict" ] && dict=(-dict="tests/fuzz/dict/$t.dict")
  echo "== fuzz_$t for ${SECONDS_PER_TARGET}s"
  "$bin" -max_total_time="$SECONDS_PER_TARGET" -timeout=10 -rss_limit_mb=2048 -max_len=20000 \
    -print_final_stats=1 -artifact_prefix="build-fuzz/crashes/$t-" "${dict[@]}" \
    "$scratch" "$seeds" >"build-fuzz/logs/$t.log" 2>&1
  rc=$?
  runs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "build-fuzz/logs/$t.log" | grep -oE '[0-9]+$' || true)
  cov=$(grep -oE 'cov: [0-9]+' "build-fuzz/logs/$t.log" | tail -1 || true)
  if [ $rc -eq 0 ]; then
    summary+=("ok    fuzz_$t: ${runs:-?} runs, ${cov:-cov ?}")
  else
    summary+=("CRASH fuzz_$t (exit $rc): see build-fuzz/logs/$t.log and build-fuzz/crashes/$t-*")
    tail -40 "build-fuzz/logs/$t.log"
    status=1
  fi
  if [ "$MERGE" = 1 ]; then
    "$bin" -merge=1 -timeout=10 -max_len=20000 "$seeds" "$scratch" >"build-fuzz/logs/$t.merge.log" 2>&1 ||
      { echo "merge of fuzz_$t failed: build-fuzz/logs/$t.merge.log"; status=1; }
  fi
done
printf '%s\n' "${summary[@]}"
exit $status
