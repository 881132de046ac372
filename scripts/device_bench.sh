#!/usr/bin/env bash
# Issue 6 (first cut) on the GPU host: workbench bench on the default bench suite, tuned = the
# H100 study committed as a fixture (same GPU type), with xformers and SDPA peers.
set -uo pipefail
source scripts/device_env.sh
export COLUMNS=220
cp tests/fixtures/h100-2026-11-21/studies.db /tmp/studies.db
SECONDS=0
timeout 540 python3 -m workbench bench --study h100-llama-3.1-8b-tp1-bf16-blk16-default --storage sqlite:////tmp/studies.db \
  --out $OUT/bench-h100.json --plot $OUT/bench-h100.png > $OUT/bench.txt 2> $OUT/bench.err
echo "rc=$? ${SECONDS}s"
cat $OUT/bench.txt | tail -45; tail -5 $OUT/bench.err
