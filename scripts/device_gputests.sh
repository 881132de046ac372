#!/usr/bin/env bash
# Prerequisites: a GPU host with the .offline bundle carried (bash ../shared/offline-gpu/bundle.sh .offline
# && cp ../shared/offline-gpu/activate.sh .offline/). Run from the repository root.
# The GPU test files on the device; their printed summaries (variants, checks, worst relative
# error, export timings) and result files come back under $OUT.
set -uo pipefail
source scripts/device_env.sh
export WB_RESULTS=/tmp/wbres
SECONDS=0
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
for t in ${TESTS:-test_gpu_correctness test_gpu_export test_gpu_tune}; do
  timeout $((590 - SECONDS)) python3 -m pytest -q -s -p no:cacheprovider tests/$t.py > $OUT/$t.txt 2>&1
  echo "$t rc=$? ${SECONDS}s"; grep -E "^\[|passed|failed" $OUT/$t.txt | head -20
done
cat $WB_RESULTS/export-check.txt 2>/dev/null | head -30
tar czf $OUT/wbres.tgz -C /tmp wbres 2>/dev/null
# compute-sanitizer (issue 14) over the new kernel paths and layouts: memcheck and racecheck.
# cuda-bindings probes driver symbols with cuGetProcAddress, which memcheck reports as API errors:
# --report-api-errors no keeps the summary to kernel memory and race errors.
for tool in memcheck racecheck; do
  timeout 240 compute-sanitizer --tool $tool --report-api-errors no --error-exitcode 9 \
    python3 -m pytest -q -p no:cacheprovider tests/test_gpu_correctness.py -k empty_sequences > $OUT/sanitizer-$tool.txt 2>&1
  echo "$tool rc=$?"; grep -E "ERROR SUMMARY|passed|failed" $OUT/sanitizer-$tool.txt | tail -2
done
