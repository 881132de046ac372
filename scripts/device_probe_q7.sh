#!/usr/bin/env bash
# Device recipe (issue 12, session 14): qwen2.5-7b's heads (28/4) with CTAs of 7 heads against CTAs of 8
# (padded: the last row masked, allowed since this session), onepass and twopass tensor-core variants,
# and 56/8 (GQA 7 with 8 KV heads), on scripts/probe-layout.yaml, FA3 beside, every variant checked
# against fp32; then ncu of the onepass q7 and q8 variants at b16x32768. Carry .offline and
# .peers/fa3.tar.xz. Results: results/h200-2026-11-29-qwen-pad/probes.
set -uo pipefail
source scripts/device_env.sh
fa3_only
SECONDS=0
O="algorithm=onepass,partition=auto,mma=true,threads=128,stages=2"
T="algorithm=twopass,partition=auto,mma=true,threads=256,stages=2"
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
