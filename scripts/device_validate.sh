#!/usr/bin/env bash
# Device recipe: the first call of a session after kernel or emulation changes that were written
# without a GPU (2026-11-28: unified_ring, the fused reduce's walk, the throttle's stop polling,
# peer graphs captured on the green stream, occupancy of fixed splits). One call, ~8 minutes:
#   1 GPU correctness of what changed (unified ring, tensor-core path, fused / empty / odd layouts,
#     graph-bound launches), every check against fp32
#   2 the unified ring against the ring per pass, beside FA3, on the bench suite (probe_variants)
#   3 the emulation stages that failed on 2026-11-28: green contexts (graph captured on the green
#     stream), read ceilings (throttle calibration), SM axis (fixed-split variants)
#   4 `bench --gpu h20` of the committed H20 study, FA3 beside it, under the emulation
# Prerequisites: .offline/ and .peers/ carried. Usage: PART=kernel bash scripts/device_validate.sh (1-2,
# ~6 min), then PART=emulation (3-4, ~5 min): two calls, each inside the 10-minute limit. PART=graph:
# the walking graph-bound grid (below). The device returns at most 8 files: tar $OUT after.
set -uo pipefail
source scripts/device_env.sh
source scripts/peers_activate.sh .peers >/dev/null 2>&1 || echo "peers bundle missing: FA3 will say why"
export COLUMNS=200 WB_RESULTS=$OUT
SECONDS=0
if [ "${PART:-kernel}" = kernel ]; then
timeout 200 python3 -m pytest -q -s -p no:cacheprovider tests/test_gpu_correctness.py \
  -k "unified_ring or tensor_core or empty_sequences or onepass_fused or graph_bound" > $OUT/validate-tests.txt 2>&1
echo "tests rc=$? ${SECONDS}s"; grep -E "^\[|passed|failed|Error" $OUT/validate-tests.txt | head -16
B=heads_per_cta=4,partition=auto
timeout 150 python3 scripts/probe_variants.py $OUT/probe-unified.json bench \
  "threads=128,$B,stages=3,mma=1;threads=128,$B,stages=3,mma=1,unified_ring=1;threads=256,$B,stages=4,mma=1;threads=256,$B,stages=4,mma=1,unified_ring=1;threads=128,$B,stages=3,mma=1,reduce=fused" \
  > $OUT/probe-unified.txt 2>&1
echo "probe rc=$? ${SECONDS}s"; tail -28 $OUT/probe-unified.txt
fi
if [ "${PART:-kernel}" = graph ]; then
# 2026-11-28 (session 9): the graph-bound grid's walk (Params.grid_parts; the persistent kernel of
# session 8 was refuted: results/h200-2026-11-28-graph-persist). Its correctness (graph-bound test:
# walk, full grid, bounded, per-shape, against fp32; the exported op's check at b5 and b64), then
# the bound sweep with the walk on and off for the two variants the v6 study uses at b32/b64, long
# batches included (a walk must not lose there). ~4 minutes.
timeout 150 python3 -m pytest -q -s -p no:cacheprovider tests/test_gpu_correctness.py -k graph_bound \
  > $OUT/validate-graph.txt 2>&1
echo "graph-bound test rc=$? ${SECONDS}s"; grep -E "graph-per-seq|passed|failed|Error" $OUT/validate-graph.txt | cut -c1-220
for K in "threads=128,heads_per_cta=4,partition=auto,stages=3,mma=1" "threads=256,heads_per_cta=4,partition=auto,stages=4,mma=1"; do
  timeout 150 python3 scripts/probe_graph_bound.py $OUT/probe-graph-$(echo $K | cut -d, -f1,4 | tr ',=' '--').json "$K" \
    64x1024 64x4096 32x1024 32x4096 64x16384 2>&1 | grep -v "bound  *[48]192\|bound   4096"
done
WB_RESULTS=$OUT timeout 200 python3 -m pytest -q -s -p no:cacheprovider tests/test_gpu_export.py > $OUT/validate-export.txt 2>&1
echo "export test rc=$? ${SECONDS}s"; grep -E "graph-bound|passed|failed|Error" $OUT/validate-export.txt | cut -c1-300
fi
if [ "${PART:-kernel}" = emulation ]; then
for st in green ceilings smaxis; do
  timeout 75 python3 scripts/device_emulation.py $st > $OUT/emu-$st.log 2>&1; echo "emulation $st rc=$? ${SECONDS}s"
done
python3 scripts/device_emulation.py table 2>&1 | head -40
# 4 the H20 study's bench under the same emulation, FA3 beside it (peers captured on the green stream)
cp results/h200-2026-11-28-emulation/emu.db /tmp/emu.db && chmod u+w /tmp/emu.db
timeout 120 python3 -m workbench bench --gpu h20 --study h20-emu-h200-llama-3.1-8b-tp1-bf16-blk16-quick \
  --storage sqlite:////tmp/emu.db --suite quick --peers tuned,fa3 --launches 30 --out $OUT/bench-h20-emu.json \
  > $OUT/bench-h20-emu.txt 2> $OUT/bench-h20-emu.err
echo "bench --gpu h20 rc=$? ${SECONDS}s"; tail -12 $OUT/bench-h20-emu.txt
fi
