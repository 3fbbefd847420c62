#!/usr/bin/env bash
# make test: the unit tests (Boost.Test), then the integration and browser tests (node:test), then one
# summary line "N passed, N failed". Exits non-zero if anything failed.
set -uo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
mkdir -p tests/artifacts
status=0

echo "== unit tests (Boost.Test)"
# The counts come from Boost's own XML report (the master suite's attributes), not its prose.
"$BUILD/kinde_tests" --log_level=error --report_format=XML --report_level=short \
  --report_sink=tests/artifacts/unit-report.xml 2>&1 | tee tests/artifacts/unit.log
[ "${PIPESTATUS[0]}" -eq 0 ] || status=1
unit_count() { grep -oE "$1=\"[0-9]+\"" tests/artifacts/unit-report.xml 2>/dev/null | head -1 | grep -oE '[0-9]+'; }
unit_pass=$(unit_count test_cases_passed); unit_pass=${unit_pass:-0}
unit_fail=$(( $(unit_count test_cases_failed || echo 0) + $(unit_count test_cases_aborted || echo 0) ))
echo "unit: $unit_pass test cases passed, $unit_fail failed or aborted (tests/artifacts/unit-report.xml)"
[ "$status" -eq 0 ] || [ "$unit_fail" -gt 0 ] || unit_fail=1

echo "== fuzz corpus replay (ASan + UBSan, tests/fuzz/corpus/*)"
# One test per fuzz target: passes when its whole committed corpus replays cleanly.
bash tests/fuzz/replay.sh build-asan/replay 2>&1 | tee tests/artifacts/fuzz-replay.log
fuzz_rc=${PIPESTATUS[0]}
[ "$fuzz_rc" -eq 0 ] || status=1
fuzz_pass=$(grep -c '^PASS fuzz_' tests/artifacts/fuzz-replay.log)
fuzz_fail=$(grep -c '^FAIL fuzz_' tests/artifacts/fuzz-replay.log)
[ "$fuzz_rc" -eq 0 ] || [ "$fuzz_fail" -gt 0 ] || fuzz_fail=1

echo "== integration and browser tests (node --test)"
node_files=$(ls tests/idp/*.test.mjs tests/integration/*.test.mjs tests/e2e/*.test.mjs 2>/dev/null | tr '\n' ' ')
node --test --test-concurrency=1 --test-reporter=spec --test-reporter-destination=stdout \
  --test-reporter=tap --test-reporter-destination=tests/artifacts/node.tap $node_files
[ $? -eq 0 ] || status=1
node_pass=$(grep -E '^# pass ' tests/artifacts/node.tap | tail -1 | awk '{print $3}')
node_fail=$(grep -E '^# fail ' tests/artifacts/node.tap | tail -1 | awk '{print $3}')
node_pass=${node_pass:-0}; node_fail=${node_fail:-0}

echo
echo "unit: $unit_pass passed, $unit_fail failed; fuzz replay: $fuzz_pass passed, $fuzz_fail failed; integration/e2e: $node_pass passed, $node_fail failed"
echo "$((unit_pass + fuzz_pass + node_pass)) passed, $((unit_fail + fuzz_fail + node_fail)) failed"
exit $status
