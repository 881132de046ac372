#!/usr/bin/env bash
# Issue 6 v2 (H100): random vs contiguous pages for the tuned table, then the GPU test files.
set -uo pipefail
source scripts/device_env.sh
cp results/issue6-h100/v2/studies.db /tmp/studies.db
SECONDS=0
timeout 150 python3 scripts/pages_probe.py h100-llama-3.1-8b-tp1-bf16-blk16-bench sqlite:////tmp/studies.db $OUT > $OUT/pages-probe.txt 2>&1
echo "pages rc=$? ${SECONDS}s"; tail -10 $OUT/pages-probe.txt
for t in test_gpu_correctness test_gpu_tune test_gpu_export; do
  timeout $((580 - SECONDS)) python3 -m pytest -q -x -p no:cacheprovider tests/$t.py > $OUT/$t.txt 2>&1
  echo "$t rc=$? ${SECONDS}s"; tail -2 $OUT/$t.txt
done
