#!/usr/bin/env bash
set -uo pipefail
source scripts/device_env.sh
timeout 500 python3 scripts/onepass_probe.py $OUT/onepass.json 2>&1 | tee $OUT/onepass.txt | tail -40
