#!/usr/bin/env bash
# Device recipe (perf-notes v24): the captured form's cost with the variant held fixed
# (scripts/probe_forms.py: per shape, own bound planned, 32864 bound planned; in-graph timing), for the
# shapes where `tuned-graph` trails `tuned` most (session 26's in-graph bench), then ncu of 70b b8x4k
# in both forms beside FA3. Carry .offline and .peers/fa3.tar.xz.
set -uo pipefail
SECONDS=0
source scripts/device_env.sh
fa3_only || echo "no FA3 bundle"
probe() { local tag=$1 model=$2 knobs=$3; shift 3
  PROBE_MODEL=$model timeout ${PROBE_S:-120} python3 scripts/probe_forms.py $OUT/forms-$tag.json "$knobs" "$@" \
    > $OUT/forms-$tag.txt 2>&1
  echo "== $tag ($model $knobs) rc=$? ${SECONDS}s"; grep -v Warning $OUT/forms-$tag.txt | tail -16
}
probe 70b-q4s2 llama-3.1-70b:8 "algorithm=onepass,threads=256,heads_per_cta=4,partition=auto,stages=2,mma=1" \
  b8x1024 b8x4096 b8x6144 b16x1024 b16x4096 b256x4096
probe qwen-q8 qwen2.5-7b "algorithm=onepass,threads=128,heads_per_cta=8,partition=auto,stages=2,mma=1" \
  b16x1024 b64x1024 b64x4096 b256x6144
probe 8b-tp-q4 llama-3.1-8b "algorithm=twopass,threads=256,heads_per_cta=4,partition=auto,stages=2,mma=1" \
  b8x1024 b8x4096 b64x4096
N="algorithm=onepass,threads=256,stages=2,mma=1,heads_per_cta=4,partition=auto"
PROBE_MODEL=llama-3.1-70b:8 ncu_probe shape python3 scripts/probe_ncu.py "$N" b8x4096 b16x1024
PROBE_MODEL=llama-3.1-70b:8 GRAPH_LEN=32864 ncu_probe bound python3 scripts/probe_ncu.py "$N" b8x4096 b16x1024
python3 scripts/ncu_details.py $OUT/ncu-shape.csv $OUT/ncu-bound.csv 2>&1 | tail -40
echo "done ${SECONDS}s"
pack_out forms
