#!/usr/bin/env bash
# One device call for issue 3: baseline vs paper at batch 8 x 4096, 32/8 heads, d128, bf16,
# block 16: cold-L2 timing, read ceiling, ncu and nsys captures; everything lands in $OUT.
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
source .offline/activate.sh .offline
python3 -m pip install --no-deps --no-build-isolation -e . -q 2>&1 | grep -v WARNING
export WORKBENCH_CACHE=/tmp/wbcache PYTHONUNBUFFERED=1
python3 -c "import nvtx, optuna; print('nvtx', nvtx.__version__ if hasattr(nvtx,'__version__') else 'ok', 'optuna', optuna.__version__)"
which nsys ncu; ncu --version | tail -1
python3 -m workbench measure --variants baseline,paper --batch 8 --context 4096 --profile all --out /tmp/m 2>&1 | tee $OUT/measure.txt
mkdir -p /tmp/fx && cp /tmp/m/results.json /tmp/fx/ && cp /tmp/m/profile.ncu-rep /tmp/m/profile.ncu.csv /tmp/fx/ 2>/dev/null
cp /tmp/m/trace.sqlite /tmp/fx/ 2>/dev/null; ls -la /tmp/m
tar czf $OUT/captures.tgz -C /tmp/fx .
python3 - <<'PY'
import json; d=json.load(open('/tmp/m/results.json'))
print('ceiling', d['ceiling']); print('dropped', d['profile'].get('ncu',{}).get('dropped_metrics'))
for r in d['results']:
    n=r.get('ncu') or {}; s=r.get('nsys') or {}
    print(r['label'], 'med %.2f p10 %.2f p90 %.2f spread %.3f eff %.3f' % (r['median_us'], r['p10_us'], r['p90_us'], r['spread'], r['efficiency']),
          '| ncu %.2f us dram %.3e kv %.3e demand-hit %.4f all-hit %.4f' % (n.get('duration_us',0), n.get('dram_bytes_read',0), r['kv_bytes'], n.get('l2_demand_hit_rate',0), n.get('l2_hit_rate_all',0)),
          '| nsys', s.get('median_launch_us'))
print(d['profile'].get('nsys',{}).get('note'))
PY
