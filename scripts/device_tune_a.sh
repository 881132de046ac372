#!/usr/bin/env bash
# Device call A for issue 4: GPU fault-isolation test, replay recording, a short tune with ncu.
set -uo pipefail
source scripts/device_env.sh
export WORKBENCH_CACHE=/tmp/wbcache WORKBENCH_HOME=/tmp/wbhome PYTHONUNBUFFERED=1 WB_RESULTS=$OUT
python3 -m workbench compile --group 4 --json > /dev/null 2>&1 &   # warm the cubin cache meanwhile (CPU only)
SECONDS=0
timeout 240 python3 -m pytest -q -m gpu tests/test_gpu_tune.py -x 2>&1 | tail -15 > $OUT/gpu-faults.txt; echo "faults test ${SECONDS}s"; tail -3 $OUT/gpu-faults.txt
SECONDS=0
timeout 300 python3 scripts/record_replay.py $OUT/replay-h100.json > $OUT/record.txt 2>&1; echo "record ${SECONDS}s"; tail -4 $OUT/record.txt
SECONDS=0
wait
timeout 200 python3 -m workbench tune --gpu h100 --model llama-3.1-8b --suite quick --trials 16 --study smoke > $OUT/tune-smoke.txt 2>&1; echo "smoke tune ${SECONDS}s rc=$?"
tail -25 $OUT/tune-smoke.txt
ls /tmp/wbhome/runs/*/ 2>/dev/null | head; tail -5 /tmp/wbhome/runs/*/worker-gpu0.log 2>/dev/null
