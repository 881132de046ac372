#!/usr/bin/env bash
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
source .offline/activate.sh .offline
python3 -m pip install --no-deps --no-build-isolation -e . -q 2>&1 | grep -v WARNING
export WORKBENCH_CACHE=/tmp/wbcache PYTHONUNBUFFERED=1
timeout 400 python3 scripts/fidelity_probe.py $OUT/fidelity2.json 2>&1 | tee $OUT/fidelity2.txt | tail -20
