# Device recipe (perf-notes v31 3.): static items on one wave of claiming slots (claim1) against the static plan and the
# plain grid, per-shape and graph-bound. Not in the tree: on 2778101+ `git apply results/h200-2026-12-01-s33/2-deal/deal.diff`,
# copy this file and probe_deal.py to scripts/, carry [".offline"].
set -uo pipefail
source scripts/device_env.sh
export WB_RESULTS=$OUT
SECONDS=0
timeout 200 python3 -m pytest -q -s -p no:cacheprovider tests/test_gpu_correctness.py -k "dealt_plan or graph_bound_launches" > $OUT/claim-tests.txt 2>&1
echo "tests rc=$? ${SECONDS}s"; grep -E "passed|failed|Error|assert" $OUT/claim-tests.txt | head -8
K="algorithm=onepass,threads=128,heads_per_cta=4,partition=auto,stages=2,mma=true"
FORMS=plain,static,claim1 timeout 150 python3 scripts/probe_deal.py $OUT/claim-own.json "$K" b8x32768 b16x16384 b64x4096 b256x1024 b32x4096 > $OUT/claim-own.txt 2>&1
echo "own rc=$? ${SECONDS}s"; cat $OUT/claim-own.txt | cut -c1-120
BOUND=32864 FORMS=plain,static,claim1 timeout 240 python3 scripts/probe_deal.py $OUT/claim-bound.json "$K" b8x32768 b16x16384 b64x4096 b256x1024 b32x4096 b64x1024 b16x1024 b8x4096 b1x16384 b32x1024 > $OUT/claim-bound.txt 2>&1
echo "bound rc=$? ${SECONDS}s"; cat $OUT/claim-bound.txt | cut -c1-120
gzip -f $OUT/*.json
