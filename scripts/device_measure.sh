#!/usr/bin/env bash
# One device call for issue 3: baseline vs paper at batch 8 x 4096, 32/8 heads, d128, bf16,
# block 16: cold-L2 timing, read ceiling, ncu and nsys captures; everything lands in $OUT.
set -uo pipefail
source scripts/device_env.sh
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv,noheader
python3 -m workbench measure --variants baseline,paper --batch 8 --context 4096 --profile all --out /tmp/m 2>&1 | tee $OUT/measure.txt
# a second plain timing run: is the median reproducible across processes?
python3 -m workbench measure --variants baseline,paper --batch 8 --context 4096 --profile none --out /tmp/m2 > $OUT/measure-repeat.txt 2>&1
python3 -m workbench inspect /tmp/m/results.json --compare baseline --compare paper > $OUT/compare.txt 2>&1
python3 -m workbench inspect /tmp/m/profile.ncu-rep > $OUT/inspect-ncurep.txt 2>&1
python3 - <<'PY' > $OUT/readers.txt 2>&1
# the two ways of reading a .ncu-rep must agree
from pathlib import Path
from workbench.ncu import read_report, parse_raw_csv, export_csv, find_ncu_report, METRICS
rep = Path('/tmp/m/profile.ncu-rep')
print('ncu_report module:', find_ncu_report())
a = read_report(rep); b = parse_raw_csv(export_csv(rep))
print('kernels', len(a), len(b))
worst = 0.0
for x, y in zip(a, b):
    for m in METRICS:
        if m in x and m in y:
            fx, fy = float(x[m]), float(y[m].replace(',', ''))
            d = abs(fx - fy) / max(abs(fy), 1e-9); worst = max(worst, d)
            if d > 1e-3: print('DIFF', x['ID'], m, fx, fy)
print('worst rel diff', worst); print('ranges', [k['NVTX Range'] for k in a])
PY
mkdir -p /tmp/fx && cp /tmp/m/results.json /tmp/m/profile.ncu-rep /tmp/m/profile.ncu.csv /tmp/fx/ 2>/dev/null
cp /tmp/m/trace.sqlite /tmp/fx/ 2>/dev/null; cp /tmp/m2/results.json /tmp/fx/results-repeat.json
tar czf $OUT/captures.tgz -C /tmp/fx .
cat $OUT/readers.txt | tail -3
python3 - <<'PY'
import json
for f in ('/tmp/m/results.json', '/tmp/m2/results.json'):
    d=json.load(open(f)); print(f, 'ceiling %.0f' % d['ceiling']['gbps'], 'reader', d['profile'].get('ncu',{}).get('reader'))
    for r in d['results']:
        n=r.get('ncu') or {}; s=r.get('nsys') or {}
        print(' ', r['label'], 'med %.2f p10 %.2f p90 %.2f spread %.3f eff %.3f' % (r['median_us'], r['p10_us'], r['p90_us'], r['spread'], r['efficiency']),
              '| ncu %.2f dram/kv %.3f dhit %.4f all %.4f' % (n.get('duration_us',0), n.get('dram_bytes_read',0)/r['kv_bytes'], n.get('l2_demand_hit_rate',0), n.get('l2_hit_rate_all',0)),
              '| nsys', s.get('median_launch_us'))
        print('   first samples', [round(x,1) for x in r['samples_us'][:6]])
PY
