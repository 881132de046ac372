#!/usr/bin/env bash
# The GPU test files on the device (after the PDL change and the whole-sequence smem rule).
set -uo pipefail
source scripts/device_env.sh
SECONDS=0
for t in ${TESTS:-test_gpu_correctness test_gpu_export}; do
  timeout $((590 - SECONDS)) python3 -m pytest -q -p no:cacheprovider tests/$t.py > $OUT/$t.txt 2>&1
  echo "$t rc=$? ${SECONDS}s"; grep "^\[" $OUT/$t.txt | head -20; tail -2 $OUT/$t.txt
done
