#!/usr/bin/env bash
# Prerequisites: a GPU host with the .offline bundle carried (bash ../shared/offline-gpu/bundle.sh .offline
# && cp ../shared/offline-gpu/activate.sh .offline/). Run from the repository root.
# The GPU test files on the device; their printed summaries (variants, checks, worst relative
# error, export timings) and result files come back under $OUT.
#   TESTS="test_gpu_correctness test_gpu_export test_gpu_tune"  (default: all three)
#   K="graph_bound or sanitizer_sample"   optional pytest -k filter for the test files
#   BUDGET=590   seconds for the whole call (each step gets what is left)
#   SANITIZE=1   then compute-sanitizer memcheck + racecheck (issue 14) over test_sanitizer_sample
#                (every value of every default-space knob at least twice) and, if test_gpu_export ran
#                in this call or an earlier one on the same warm host, every variant of the exported package.
set -uo pipefail
SECONDS=0                      # the budget counts the install in device_env.sh too (session 20 ran past 600 s)
source scripts/device_env.sh
export WB_RESULTS=/tmp/wbres WB_KEEP_EXPORT=/tmp/wbkeep
mkdir -p $WB_KEEP_EXPORT
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
for t in ${TESTS-test_gpu_correctness test_gpu_export test_gpu_tune}; do
  timeout $((${BUDGET:-590} - SECONDS)) python3 -m pytest -q -s -p no:cacheprovider tests/$t.py ${K:+-k "$K"} > $OUT/$t.txt 2>&1
  echo "$t rc=$? ${SECONDS}s"; grep -E "^\[|passed|failed|Error" $OUT/$t.txt | head -20
done
cat $WB_RESULTS/export-check.txt 2>/dev/null | tail -30
tar czf $OUT/wbres.tgz -C /tmp wbres 2>/dev/null
[ "${SANITIZE:-0}" = 1 ] || exit 0
# cuda-bindings probes driver symbols with cuGetProcAddress, which memcheck reports as API errors:
# --report-api-errors no keeps the summary to kernel memory and race errors.
san() { local tool=$1 tag=$2; shift 2
  timeout $((${BUDGET:-590} - SECONDS)) compute-sanitizer --tool $tool --report-api-errors no --error-exitcode 9 "$@" \
    > $OUT/sanitizer-$tool-$tag.txt 2>&1
  echo "sanitizer $tool $tag rc=$? ${SECONDS}s"; grep -E "ERROR SUMMARY|RACECHECK SUMMARY|passed|failed|worst" $OUT/sanitizer-$tool-$tag.txt | tail -3
}
for tool in memcheck racecheck; do
  san $tool space python3 -m pytest -q -s -p no:cacheprovider tests/test_gpu_correctness.py -k "sanitizer_sample or empty_sequences"
  if [ -d $WB_KEEP_EXPORT/export ]; then
    PYTHONPATH=$WB_KEEP_EXPORT/site:${PYTHONPATH:-} san $tool export python3 tests/export_check.py $WB_KEEP_EXPORT/export /tmp/sanitize-export.json --check-only
  fi
done
