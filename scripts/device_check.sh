#!/usr/bin/env bash
# One device call: install, compile the default space, run the GPU correctness tests, print the
# ptxas figures of baseline/paper. Logs and JSON land in $OUT (the device tool brings them back).
set -uo pipefail
source scripts/device_env.sh
export WB_RESULTS=$OUT
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv,noheader | tee $OUT/gpu.txt
python3 -c "import torch, cuda.bindings; print('torch', torch.__version__, 'cuda.bindings', cuda.bindings.__version__)"
nvcc --version | tail -1
( time python3 -m workbench compile --group 4 --json > $OUT/compile-default-g4.json ) 2>&1 | grep real
python3 -c "import json; d=json.load(open('$OUT/compile-default-g4.json')); print({k: d[k] for k in ('built','cached','invalid','failed')})"
python3 -m pytest -q -m gpu tests/test_gpu_correctness.py -k "lengths" -x 2>&1 | tail -15
python3 -m pytest -q -m gpu tests/test_gpu_correctness.py -s -p no:cacheprovider 2>&1 | tee $OUT/pytest-gpu.log | grep -E "^\[|passed|failed|Error|assert" | tail -30
for v in baseline paper; do python3 -m workbench variant $v; done 2>&1 | tail -40
