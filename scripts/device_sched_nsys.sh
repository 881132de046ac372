#!/usr/bin/env bash
# Device recipe (perf-notes v31): the scheduled kernel against the plain grid on the same batch under nsys:
# per launch (decode kernel + reduce) the span on the GPU timeline, the gap since the previous kernel and the
# period, from scripts/probe_bound.py in-graph (SCHED=0: the plain per-shape launch; SCHED=1: wb_decode_sched on
# its plan). Carry [".offline"] (nsys from its deb/).
set -uo pipefail
source scripts/device_env.sh
SECONDS=0
K=${K:-"algorithm=onepass,threads=128,heads_per_cta=4,partition=auto,stages=2,mma=true"}
S=${S:-b8x32768}
for sc in 0 1; do
  SCHED=$sc PER=$sc BOUNDS=own timeout 200 nsys profile --trace cuda --cuda-graph-trace node -o /tmp/ns$sc --force-overwrite true \
    python3 scripts/probe_bound.py $OUT/bound-s$sc.json "$K" $S > $OUT/ns$sc.txt 2>&1
  echo "nsys sched=$sc rc=$? ${SECONDS}s"; grep -E "^b" $OUT/ns$sc.txt
  nsys export --type sqlite -o /tmp/ns$sc.sqlite --force-overwrite true /tmp/ns$sc.nsys-rep > /dev/null 2>&1
  python3 scripts/nsys_spans.py bench /tmp/ns$sc.sqlite | tee $OUT/spans-s$sc.txt
  xz -T0 -6 -c /tmp/ns$sc.sqlite > $OUT/ns$sc.sqlite.xz
done
