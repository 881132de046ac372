#!/usr/bin/env bash
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
source .offline/activate.sh .offline
python3 -m pip install --no-deps --no-build-isolation -e . -q 2>&1 | grep -v WARNING
export WORKBENCH_CACHE=/tmp/wbcache PYTHONUNBUFFERED=1
timeout 500 python3 scripts/onepass_probe.py $OUT/onepass.json 2>&1 | tee $OUT/onepass.txt | tail -40
