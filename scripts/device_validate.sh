#!/usr/bin/env bash
# Device recipe: the first call of a session after kernel or emulation changes that were written
# without a GPU (2026-11-28: unified_ring, the fused reduce's walk, the throttle's stop polling,
# peer graphs captured on the green stream, occupancy of fixed splits). One call, ~6 minutes:
#   1 GPU correctness of what changed (unified ring, tensor-core path, fused / empty / odd layouts,
#     graph-bound launches), every check against fp32
#   2 the unified ring against the ring per pass, beside FA3, on the bench suite (probe_variants)
#   3 the emulation stages that failed on 2026-11-28: green contexts (graph captured on the green
#     stream), read ceilings (throttle calibration), SM axis (fixed-split variants)
# Prerequisites: .offline/ and .peers/ carried. Usage: bash scripts/device_validate.sh
set -uo pipefail
source scripts/device_env.sh
source scripts/peers_activate.sh .peers >/dev/null 2>&1 || echo "peers bundle missing: FA3 will say why"
export COLUMNS=200 WB_RESULTS=$OUT
SECONDS=0
timeout 200 python3 -m pytest -q -s -p no:cacheprovider tests/test_gpu_correctness.py \
  -k "unified_ring or tensor_core or empty_sequences or onepass_fused or graph_bound" > $OUT/validate-tests.txt 2>&1
echo "tests rc=$? ${SECONDS}s"; grep -E "^\[|passed|failed|Error" $OUT/validate-tests.txt | head -16
B=heads_per_cta=4,partition=auto
timeout 150 python3 scripts/probe_variants.py $OUT/probe-unified.json bench \
  "threads=128,$B,stages=3,mma=1;threads=128,$B,stages=3,mma=1,unified_ring=1;threads=256,$B,stages=4,mma=1;threads=256,$B,stages=4,mma=1,unified_ring=1;threads=128,$B,stages=3,mma=1,reduce=fused" \
  > $OUT/probe-unified.txt 2>&1
echo "probe rc=$? ${SECONDS}s"; tail -28 $OUT/probe-unified.txt
for st in green ceilings smaxis; do
  timeout 75 python3 scripts/device_emulation.py $st > $OUT/emu-$st.log 2>&1; echo "emulation $st rc=$? ${SECONDS}s"
done
python3 scripts/device_emulation.py table 2>&1 | head -40
