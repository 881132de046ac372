#!/usr/bin/env bash
# Historical (session 3): written for the names of then -- baseline/paper = today's simple/simple-pf,
# vllm/vllm-paper = today's baseline/paper. Kept as the record of how results/issue6-*/ were made.
# Issue 6 v1 on the GPU host: the cp.async `stages` knob, correctness + layout grid (scripts/stages_probe.py).
set -uo pipefail
source scripts/device_env.sh
SECONDS=0
timeout 560 python3 scripts/stages_probe.py $OUT 2>&1 | tee $OUT/stages-probe.txt | grep -v Warn
echo "rc=$? ${SECONDS}s"
# smoke of the new bench rows: vLLM's own kernel (+ paper patch) and FlexAttention, two shapes
cat > /tmp/smoke.yaml <<'Y'
name: smoke
batches: [1, 64]
contexts: [4096]
check:
  - {seq_lens: [1000, 17, 4096, 333]}
profile: {batch: 8, context: 4096}
Y
COLUMNS=200 timeout $((590 - SECONDS)) python3 -m workbench bench --suite /tmp/smoke.yaml --peers vllm,vllm-paper,baseline,flex,xformers \
  --out $OUT/smoke.json > $OUT/smoke.txt 2> $OUT/smoke.err; echo "smoke rc=$? ${SECONDS}s"; cat $OUT/smoke.txt; tail -5 $OUT/smoke.err
