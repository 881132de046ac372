#!/usr/bin/env bash
# Device recipe (issue 12, session 14): the padded-CTA path (GQA 7 as 8) on the GPU: the GPU tests
# that cover it, qwen2.5-7b's session study exported as a wheel and checked with tests/export_check.py
# (ops vs fp32 and latency vs workbench's launcher per bucket), and a repeat probe of the graph-bound
# b32/b64 x 4k times that moved 8% between two calls (results/h200-2026-11-29-retune). Carry .offline
# and .peers/fa3.tar.xz.
set -uo pipefail
source scripts/device_env.sh
fa3_only; export COLUMNS=200 WB_RESULTS=/tmp/wbval
mkdir -p /tmp/wbval; SECONDS=0
timeout 200 python3 -m pytest -q -s -p no:cacheprovider tests/test_gpu_correctness.py -k "padded or gqa_ratios or tensor_core_path" \
  > /tmp/wbval/gputests.txt 2>&1
echo "gpu tests rc=$? ${SECONDS}s"; grep -E "^\[|passed|failed|Error" /tmp/wbval/gputests.txt | tail -12
M=/tmp/wbmodels; mkdir -p $M; gunzip -c results/h200-2026-11-29-qwen-pad/models.db.gz > $M/models.db
rm -rf /tmp/wbval/export /tmp/wbval/site
timeout 240 python3 -m workbench export --study h200-qwen2.5-7b-tp1 --storage sqlite:///$M/models.db --out /tmp/wbval/export \
  --wheel --json > /tmp/wbval/export.json 2> /tmp/wbval/export.err
echo "export rc=$? ${SECONDS}s"; tail -2 /tmp/wbval/export.err
W=$(python3 -c "import json; print(json.load(open('/tmp/wbval/export.json'))['wheel'])" 2>/dev/null)
python3 -m pip install -q --no-deps --target /tmp/wbval/site "$W" 2>&1 | grep -v WARNING | tail -2
PYTHONPATH=/tmp/wbval/site:$PYTHONPATH timeout 150 python3 tests/export_check.py /tmp/wbval/export /tmp/wbval/export-check.json \
  > /tmp/wbval/export-check.txt 2>&1
echo "export check rc=$? ${SECONDS}s"; tail -16 /tmp/wbval/export-check.txt
for k in "algorithm=onepass,partition=auto,mma=true,threads=128,stages=2,heads_per_cta=4" \
         "algorithm=twopass,partition=auto,mma=true,threads=256,stages=2,heads_per_cta=4"; do
  for rep in 1 2; do
    timeout 60 python3 scripts/probe_sched.py /tmp/wbval/sched-$rep.json "$k" 32x4096 64x4096 64x1024 32x1024 > /tmp/wbval/sched.txt 2>&1
    echo "sched rep $rep $k"; grep -E "x[0-9]+ " /tmp/wbval/sched.txt
  done
done
tar czf $OUT/validate.tgz -C /tmp wbval --exclude=wbval/export --exclude=wbval/site
echo "done ${SECONDS}s"
