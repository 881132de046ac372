#!/usr/bin/env bash
# Issue 6 on an H200: workbench bench, tuned = best of the built-in sweep per shape (no H200 study).
set -uo pipefail
source scripts/device_env.sh
export COLUMNS=230
SECONDS=0
timeout 560 python3 -m workbench bench \
  --out $OUT/bench-h200.json --plot $OUT/bench-h200.png > $OUT/bench.txt 2> /tmp/bench.err
echo "rc=$? ${SECONDS}s"
grep "geomean\|slower" $OUT/bench.txt; tail -3 /tmp/bench.err
