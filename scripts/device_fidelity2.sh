#!/usr/bin/env bash
set -uo pipefail
source scripts/device_env.sh
timeout 400 python3 scripts/fidelity_probe.py $OUT/fidelity2.json 2>&1 | tee $OUT/fidelity2.txt | tail -20
