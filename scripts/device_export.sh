#!/usr/bin/env bash
# Issue 5 on the GPU host: tune (24 trials) -> export --wheel -> install -> check ops and latency.
set -uo pipefail
source scripts/device_env.sh
export WB_RESULTS=$OUT MAX_JOBS=16
which ninja || echo "no ninja"
SECONDS=0
timeout 560 python3 -m pytest -q -m gpu tests/test_gpu_export.py -x 2>&1 | tail -30
echo "${SECONDS}s"
cat $OUT/export-check.txt 2>/dev/null | tail -20
tail -5 $OUT/export-build.log 2>/dev/null
