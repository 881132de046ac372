#!/usr/bin/env bash
# Device recipe (issues 12, 13; session 14): one call, four probes, each written under $OUT.
#  1. qwen's per-byte gap: the same onepass/twopass tensor-core variants on head shapes that separate
#     the KV layout (4 vs 8 KV heads) from the group size (7 vs 4/8), at matched grid and bytes
#     (scripts/probe-layout.yaml), FA3 beside, every variant checked against fp32.
#  2. ncu of qwen (28/4, b16x32768) against 32/8 (b8x32768), the same onepass kernel family.
#  3. the e2e grid's b12 batch row (b5-b23 at max_model_len 32864): its graph pick against onepass
#     candidates in the scheduled graph form (scripts/probe_sched.py).
#  4. the GPU test files' tensor-core / graph-bound / onepass tests, with what time is left.
# STAGE=pad instead: qwen's heads (28/4) in CTAs of 7 against CTAs of 8 (padded, the last row masked),
#  onepass and twopass, and 56/8 (GQA 7 with 8 KV heads), same suite and checks; then ncu of the onepass
#  q7 and q8 variants at b16x32768 (results/h200-2026-11-29-qwen-pad/probes), archived as $OUT/q.tgz.
# Carry .offline and .peers/fa3.tar.xz.
set -uo pipefail
source scripts/device_env.sh
fa3_only
SECONDS=0
O="algorithm=onepass,partition=auto,mma=true,threads=128,stages=2"
T="algorithm=twopass,partition=auto,mma=true,threads=256,stages=2"
if [ "${STAGE:-layout}" = pad ]; then
  mkdir -p $OUT/q
  timeout 150 python3 scripts/probe_variants.py $OUT/q/layout-28-4-pad.json scripts/probe-layout.yaml \
    "$O,heads_per_cta=7;$O,heads_per_cta=8;$T,heads_per_cta=7;$T,heads_per_cta=8" 28/4 > $OUT/q/layout-28-4-pad.txt 2>&1
  echo "28/4 rc=$? ${SECONDS}s"; sed -n '/^shape/,$p' $OUT/q/layout-28-4-pad.txt; grep -E "Error|error:" $OUT/q/layout-28-4-pad.txt | tail -3
  timeout 100 python3 scripts/probe_variants.py $OUT/q/layout-56-8.json scripts/probe-layout.yaml \
    "$O,heads_per_cta=7;$O,heads_per_cta=8" 56/8 > $OUT/q/layout-56-8.txt 2>&1
  echo "56/8 rc=$? ${SECONDS}s"; sed -n '/^shape/,$p' $OUT/q/layout-56-8.txt
  NCU="ncu --clock-control none --nvtx --nvtx-include probe/ --section SpeedOfLight --section MemoryWorkloadAnalysis --section WarpStateStats --section Occupancy --section LaunchStats --section SchedulerStats --section SourceCounters --csv --page details"
  for q in 7 8; do PROBE_MODEL=28/4 timeout 90 $NCU python3 scripts/probe_ncu.py "$O,heads_per_cta=$q" b16x32768 > $OUT/q/ncu-28-4-q$q.csv 2>$OUT/q/ncu-q$q.err; echo "ncu q$q rc=$? ${SECONDS}s"; done
  tar czf $OUT/q.tgz -C $OUT q && rm -rf $OUT/q
  exit 0
fi
ALL="$O,heads_per_cta=7;$O,heads_per_cta=4;$O,heads_per_cta=8;$T,heads_per_cta=7;$T,heads_per_cta=4;$T,heads_per_cta=8"
SCHED_CANDS="$T,heads_per_cta=4|$O,heads_per_cta=4|algorithm=onepass,partition=auto,mma=true,threads=128,stages=3,heads_per_cta=4|algorithm=onepass,partition=auto,mma=true,threads=256,stages=2,heads_per_cta=4"
# 0. build everything at once (16 cores), the scheduled and walking forms too; the probes then hit the cache
python3 - "$ALL" "$SCHED_CANDS" <<'PY' 2>&1 | tail -3
import sys
from workbench.kernel.build import build_many
from workbench.kernel.variant import Variant, parse_knobs
from workbench.measure.gpuinfo import gpu_info
vs = [Variant.from_dict({**parse_knobs(t), "head_size": 128}) for t in sys.argv[1].split(";")]
for t in sys.argv[2].split("|"):
    v = Variant.from_dict({**parse_knobs(t), "head_size": 128}); vs += [v, v.walking(), v.scheduling()]
bs = build_many(vs, gpu_info(0).arch)
print(len(bs), "builds,", sum(not b.ok for b in bs), "failed", [b.error[-300:] for b in bs if not b.ok][:1])
PY
echo "built ${SECONDS}s"
# 1. the layout probe
for hs in 28/4:7 56/8:7 16/4:4 32/8:4 32/4:8; do
  h=${hs%:*}; g=${hs#*:}; tag=${h/\//-}
  timeout 120 python3 scripts/probe_variants.py $OUT/layout-$tag.json scripts/probe-layout.yaml \
    "$O,heads_per_cta=$g;$T,heads_per_cta=$g" $h > $OUT/layout-$tag.txt 2>&1
  echo "layout $h rc=$? ${SECONDS}s"; sed -n '/^shape/,$p' $OUT/layout-$tag.txt; grep -E "Error|error:" $OUT/layout-$tag.txt | tail -2
done
# 2. ncu
NCU="ncu --clock-control none --nvtx --nvtx-include probe/ --section SpeedOfLight --section MemoryWorkloadAnalysis \
 --section WarpStateStats --section Occupancy --section LaunchStats --section SchedulerStats --csv --page details"
PROBE_MODEL=28/4 timeout 90 $NCU python3 scripts/probe_ncu.py "$O,heads_per_cta=7" b16x32768 > $OUT/ncu-28-4.csv 2>$OUT/ncu-28-4.err
echo "ncu 28/4 rc=$? ${SECONDS}s"
PROBE_MODEL=32/8 timeout 90 $NCU python3 scripts/probe_ncu.py "$O,heads_per_cta=4" b8x32768 > $OUT/ncu-32-8.csv 2>$OUT/ncu-32-8.err
echo "ncu 32/8 rc=$? ${SECONDS}s"
python3 - $OUT/ncu-28-4.csv $OUT/ncu-32-8.csv <<'PY' 2>&1 | tee $OUT/ncu-summary.txt
import csv, sys
want = ("Duration", "DRAM Throughput", "Memory Throughput", "L2 Hit Rate", "L1/TEX Hit Rate", "Achieved Occupancy",
        "Registers Per Thread", "Dynamic Shared Memory Per Block", "Block Limit Shared Mem", "Theoretical Occupancy",
        "Warp Cycles Per Issued Instruction", "Issued Warp Per Scheduler", "No Eligible", "Grid Size", "Mem Busy",
        "Max Bandwidth", "L2 Compression", "DRAM Frequency")
for f in sys.argv[1:]:
    rows = [r for r in csv.reader(l for l in open(f) if l.startswith('"'))]
    if not rows: print(f, "no rows"); continue
    hdr, body = rows[0], rows[1:]
    ki, mi, ui, vi = hdr.index("Kernel Name"), hdr.index("Metric Name"), hdr.index("Metric Unit"), hdr.index("Metric Value")
    print("==", f)
    for r in body:
        if any(w in r[mi] for w in want):
            print(f"  {r[ki][:28]:<28} {r[mi]:<44} {r[vi]:>14} {r[ui]}")
PY
# 3. the b12 row's graph candidates, scheduled form, bound 32864
i=0; IFS='|' read -ra C <<< "$SCHED_CANDS"
for k in "${C[@]}"; do
  timeout 100 python3 scripts/probe_sched.py $OUT/sched-$i.json "$k" 8x1024 8x4096 8x16384 8x32768 12x8192 17x24576 5x16384 \
    > $OUT/sched-$i.txt 2>&1
  echo "sched $i rc=$? ${SECONDS}s $k"; cat $OUT/sched-$i.txt | grep -v "^ *$" | tail -8; i=$((i+1))
done
# 4. GPU tests with what is left
left=$((575 - SECONDS))
if [ $left -gt 60 ]; then
  timeout $left python3 -m pytest -q -s -p no:cacheprovider tests/test_gpu_correctness.py \
    -k "tensor_core_path or graph_bound or onepass" > $OUT/gputests.txt 2>&1
  echo "gpu tests rc=$? ${SECONDS}s"; grep -E "^\[|passed|failed|Error" $OUT/gputests.txt | tail -12
fi
