#!/usr/bin/env bash
set -uo pipefail
source scripts/device_env.sh
timeout 400 python3 scripts/fused_probe.py $OUT/fused.json 2>&1 | tee $OUT/fused.txt | tail -70
