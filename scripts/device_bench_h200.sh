#!/usr/bin/env bash
# Issue 6 on an H200: workbench bench, tuned = best of the built-in sweep per shape (no H200 study).

set -uo pipefail
source scripts/device_env.sh
export COLUMNS=220
cp tests/fixtures/h100-2026-11-21/studies.db /tmp/studies.db
SECONDS=0
timeout 540 python3 -m workbench bench \
  --out $OUT/bench-h200.json --plot $OUT/bench-h200.png > $OUT/bench.txt 2> $OUT/bench.err
echo "rc=$? ${SECONDS}s"
cat $OUT/bench.txt | tail -45; tail -5 $OUT/bench.err
