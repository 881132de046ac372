#!/usr/bin/env bash
# Device recipe (issue 12, the GQA-7/8 suites): the onepass tensor-core path (no logits in shared
# memory) against the twopass variants the model-suite studies picked (results/h200-2026-11-29-models)
# and FA3, on scripts/probe-gqa.yaml, per model; each variant checked against fp32 on every shape.
# Carry .offline and .peers/fa3.tar.xz (FA3 alone: with FlashInfer the call is over 64 MiB).
set -uo pipefail
source scripts/device_env.sh
fa3_only
SECONDS=0
T="algorithm=twopass,partition=auto,mma=true"; O="algorithm=onepass,partition=auto,mma=true"
probe() {
  timeout ${PROBE_S:-150} python3 scripts/probe_variants.py $OUT/probe-$1.json scripts/probe-gqa.yaml "$3" $2 \
    > $OUT/probe-$1.txt 2>&1
  echo "$1 rc=$? ${SECONDS}s"; sed -n '/^shape/,$p' $OUT/probe-$1.txt; grep -E "Error|error:" $OUT/probe-$1.txt | tail -3
}
probe 70b llama-3.1-70b:8 "$T,threads=256,heads_per_cta=8,stages=2;$O,threads=128,heads_per_cta=8,stages=2;$O,threads=128,heads_per_cta=8,stages=3;$O,threads=256,heads_per_cta=8,stages=2"
probe qwen qwen2.5-7b "$T,threads=128,heads_per_cta=7,stages=3,unified_ring=true;$O,threads=128,heads_per_cta=7,stages=2;$O,threads=128,heads_per_cta=7,stages=3"
probe 8b llama-3.1-8b "$T,threads=256,heads_per_cta=4,stages=2;$O,threads=128,heads_per_cta=4,stages=3;$O,threads=128,heads_per_cta=4,stages=2"
