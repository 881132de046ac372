#!/usr/bin/env bash
# Device recipe (perf-notes v31): the dealt plan, refuted and not in the tree: run it on a checkout of 2778101+ with
# `git apply results/h200-2026-12-01-s33/2-deal/deal.diff` and this file and probe_deal.py copied to scripts/. GPU tests of the schedule (TESTS, a -k expression), then
# scripts/probe_deal.py (plain / static / dealt / dealt1, in-graph, cold L2) on S for the variants K.
# Carry [".offline"]. Env for the probe: DEAL_MIN, DEAL_SMALL, DEAL_TAIL, FORMS.
set -uo pipefail
source scripts/device_env.sh
export WB_RESULTS=$OUT
SECONDS=0
TESTS=${TESTS:-"dealt_plan or graph_bound_launches or eager_plans or where_the_bound or short_uniform"}
if [ "$TESTS" != none ]; then
  timeout ${TESTS_S:-300} python3 -m pytest -q -s -p no:cacheprovider tests/test_gpu_correctness.py -k "$TESTS" \
    > $OUT/deal-tests.txt 2>&1
  echo "tests rc=$? ${SECONDS}s"; grep -E "passed|failed|Error|assert" $OUT/deal-tests.txt | head -12
fi
K=${K:-"algorithm=onepass,threads=128,heads_per_cta=4,partition=auto,stages=2,mma=true;algorithm=twopass,threads=256,heads_per_cta=4,partition=auto,stages=2,mma=true"}
S=${S:-"b8x32768 b16x16384 b64x4096 b256x1024 b32x4096 b64x1024 b8x8192"}
timeout ${PROBE_S:-300} python3 scripts/probe_deal.py $OUT/deal.json "$K" $S > $OUT/deal.txt 2>&1
echo "probe rc=$? ${SECONDS}s"; cat $OUT/deal.txt | tail -30
gzip -f $OUT/*.json
