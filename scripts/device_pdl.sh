#!/usr/bin/env bash
# Issue 6 v2 (H100): PDL for the split-K reduce -- A/B probe on the tuned table, GPU correctness
# tests, then the bench again (PDL on, the default now).
set -uo pipefail
source scripts/device_env.sh
export COLUMNS=230
cp results/issue6-h100/v2/studies.db /tmp/studies.db
ST=h100-llama-3.1-8b-tp1-bf16-blk16-bench
SECONDS=0
timeout 170 python3 scripts/pdl_probe.py $ST sqlite:////tmp/studies.db $OUT > $OUT/pdl-probe.txt 2>&1
echo "probe rc=$? ${SECONDS}s"; tail -22 $OUT/pdl-probe.txt
timeout 150 python3 -m pytest -q -x tests/test_gpu_correctness.py > /tmp/gputests.txt 2>&1
echo "gpu tests rc=$? ${SECONDS}s"; tail -2 /tmp/gputests.txt
timeout $((585 - SECONDS)) python3 -m workbench bench --study $ST --storage sqlite:////tmp/studies.db \
  --out $OUT/bench-h100.json --plot $OUT/bench-h100.png > $OUT/bench.txt 2> /tmp/bench.err
echo "bench rc=$? ${SECONDS}s"; grep "geomean\|slower" $OUT/bench.txt
tar czf $OUT/logs.tgz /tmp/gputests.txt /tmp/bench.err 2>/dev/null
