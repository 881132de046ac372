#!/usr/bin/env bash
# Device recipe (issue 12, step 1): GPU checks of the new kernel paths (empty sequences, auto
# split, odd layouts), then a train-suite tune whose study comes back under $OUT for `bench`.
# Prerequisites: run from the repository root on a GPU host with .offline/ carried (see
# scripts/device_env.sh). Usage: GPU=h200 TRIALS=160 [SPACE=tuning/spaces/hopper.yaml] [CHECKS=0] bash scripts/device_tune.sh
set -uo pipefail
source scripts/device_env.sh
# FA3 beside the tune's tables (× FA3) where the peers bundle was carried
[ -d .peers ] && { source scripts/peers_activate.sh .peers >/dev/null || echo "peers bundle did not activate"; }
export COLUMNS=200 WB_RESULTS=$OUT
GPU=${GPU:-h200}; TRIALS=${TRIALS:-160}; TUNE_S=${TUNE_S:-240}
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv,noheader
SECONDS=0
[ "${CHECKS:-1}" = 1 ] && timeout 150 python3 -m pytest -q -s -p no:cacheprovider tests/test_gpu_correctness.py -k "empty_sequences" \
  > $OUT/gpu-checks.txt 2>&1
echo "checks rc=$? ${SECONDS}s"; grep -E "^\[|passed|failed|Error" $OUT/gpu-checks.txt | head -8
timeout $((TUNE_S + 90)) python3 -m workbench tune --gpu $GPU --model llama-3.1-8b --suite train --trials $TRIALS ${SPACE:+--space $SPACE} \
  --timeout $TUNE_S --profile none --study $GPU-train --storage sqlite:///$OUT/studies.db --json \
  > $OUT/tune.json 2> $OUT/tune.err
echo "tune rc=$? ${SECONDS}s"; tail -4 $OUT/tune.err
python3 - <<'PY'
import json, os
d = json.load(open(os.environ["OUT"] + "/tune.json"))
print("trials", d.get("n_complete"), "failed", d.get("n_failed"), "best", (d.get("best") or {}).get("name"))
for r in (d.get("dispatch") or {}).get("rows", [])[:16]:
    print(r.get("bucket"), r.get("variant", r.get("name")), r.get("median_us"))
PY
