#!/usr/bin/env bash
# Where is ncu_report on this host, and does reading a .ncu-rep through it match the CSV import?
set -uo pipefail
source scripts/device_env.sh
which ncu; readlink -f "$(which ncu)"; ls -d /opt/nvidia/nsight-compute/*/extras/python /usr/local/cuda*/nsight-compute*/extras/python 2>/dev/null
find / -name ncu_report.py -not -path '*/proc/*' 2>/dev/null | head -5
python3 - <<'PY'
from pathlib import Path
from workbench.ncu import read_report, parse_raw_csv, export_csv, find_ncu_report, METRICS, read_kernels
rep = Path('tests/fixtures/h100-2026-11-21/profile.ncu-rep')
print('ncu_report module:', find_ncu_report())
a = read_report(rep); b = parse_raw_csv(export_csv(rep))
print('kernels', len(a), len(b), 'reader', read_kernels(rep)[1])
worst = 0.0
for x, y in zip(a, b):
    for m in METRICS:
        if m in x and m in y:
            fx, fy = float(x[m]), float(y[m].replace(',', ''))
            d = abs(fx - fy) / max(abs(fy), 1e-9); worst = max(worst, d)
            if d > 1e-3: print('DIFF', x['ID'], m, fx, fy)
print('worst rel diff', worst); print('ranges', sorted({k['NVTX Range'] for k in a}))
PY
python3 -m workbench inspect tests/fixtures/h100-2026-11-21/profile.ncu-rep | head -8
