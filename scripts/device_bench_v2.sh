#!/usr/bin/env bash
# Issue 6 v2 bench on an H100: tuned = the v2 study (bench suite), baseline/paper = vLLM own kernel, simple rows, flex.
set -uo pipefail
source scripts/device_env.sh
export COLUMNS=230
cp results/issue6-h100/v2/studies.db /tmp/studies.db
SECONDS=0
timeout 575 python3 -m workbench bench --study h100-llama-3.1-8b-tp1-bf16-blk16-bench --storage sqlite:////tmp/studies.db \
  --out $OUT/bench-h100.json --plot $OUT/bench-h100.png > $OUT/bench.txt 2> $OUT/bench.err
echo "rc=$? ${SECONDS}s"
cat $OUT/bench.txt | tail -45; grep -v -i "xformers\|python\|memory-eff\|reinstall" $OUT/bench.err | tail -5
