#!/usr/bin/env bash
# Not in the tree: on 2778101+ `git apply results/h200-2026-12-01-s33/2-deal/deal.diff`, copy this file and probe_deal.py to scripts/.
# Device recipe (perf-notes v31): claims on one wave of item slots against the static plan. GPU tests of the
# schedule, then probe_deal.py graph-bound (BOUND) over SB and at each batch's own bound over S. Carry [".offline"].
set -uo pipefail
source scripts/device_env.sh
export WB_RESULTS=$OUT
SECONDS=0
timeout 240 python3 -m pytest -q -s -p no:cacheprovider tests/test_gpu_correctness.py -k "${TESTS:-dealt_plan or graph_bound_launches}" > $OUT/claim-tests.txt 2>&1
echo "tests rc=$? ${SECONDS}s"; grep -E "passed|failed|Error|assert" $OUT/claim-tests.txt | head -8
K=${K:-"algorithm=onepass,threads=128,heads_per_cta=4,partition=auto,stages=2,mma=true"}
F=${F:-plain,static,claim1,claimA}
BOUND=${BOUND:-32864} FORMS=$F timeout 300 python3 scripts/probe_deal.py $OUT/claim-bound.json "$K" ${SB:-b8x32768 b16x16384 b64x4096 b256x1024 b32x4096 b64x1024 b16x1024 b8x4096 b8x1024 b32x1024 b1x16384} > $OUT/claim-bound.txt 2>&1
echo "bound rc=$? ${SECONDS}s"; cut -c1-130 $OUT/claim-bound.txt
if [ -n "${S:-}" ]; then
  FORMS=$F timeout 150 python3 scripts/probe_deal.py $OUT/claim-own.json "$K" $S > $OUT/claim-own.txt 2>&1
  echo "own rc=$? ${SECONDS}s"; cut -c1-130 $OUT/claim-own.txt
fi
gzip -f $OUT/*.json
