#!/usr/bin/env bash
# Issue 6: the bench suite for the other models (tuned = built-in sweep: no study for them).
set -uo pipefail
source scripts/device_env.sh
export COLUMNS=220
for m in ${MODELS:-"qwen2.5-7b 1" "llama-3.1-70b 8" "gemma-2-9b 1" "llama-2-7b 1"}; do
  set -- $m
  SECONDS=0
  timeout 170 python3 -m workbench bench --model $1 --tp $2 --peers baseline,paper,tuned,xformers,sdpa \
    --out $OUT/bench-$1-tp$2.json > $OUT/bench-$1-tp$2.txt 2>/dev/null
  echo "$1 tp$2 rc=$? ${SECONDS}s"; grep -E "geomean|efficiency|failed|not run" $OUT/bench-$1-tp$2.txt | head -8
done
