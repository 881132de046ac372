#!/usr/bin/env bash
# Device recipe (session 22): the item slots of a launch that fits one wave (Variant.fits_one_wave), on the
# refined llama-3.1-8b study whose b5-9 graph band runs onepass t256 q2 (16 CTAs a sequence, 1 per SM:
# b8 fills one wave, and one wave of slots leaves r8 no room to split: 62.6 -> 75.3 us). `workbench bench`
# tuned-graph vs FA3 on the bench and e2e suites with SCHED_FIT_WAVES in $FW (default "1 2 4").
# Carry .offline (activate.sh + wheels), .peers/fa3.tar.xz.
set -uo pipefail
SECONDS=0
source scripts/device_env.sh
fa3_only || echo "no FA3 bundle"
export COLUMNS=200
W=/tmp/wbfw; mkdir -p $W
gunzip -c ${DB:-results/h200-2026-11-30-s22/4-refine-split-forms/studies-llama-3.1-8b.db.gz} > $W/s.db
for suite in bench e2e; do
  for fw in ${FW:-1 2 4}; do
    timeout 120 python3 scripts/wb_with.py "SCHED_FIT_WAVES=$fw" bench --study ${STUDY:-h200-train} --storage sqlite:///$W/s.db \
      --suite $suite --peers tuned-graph,fa3 --graph-len 32864 --out $OUT/$suite-fw$fw.json \
      > $OUT/$suite-fw$fw.txt 2> $W/$suite-fw$fw.err
    echo "== $suite fit waves $fw rc=$? ${SECONDS}s"; grep -E "geomean|ragged" $OUT/$suite-fw$fw.txt; tail -2 $W/$suite-fw$fw.err
  done
done
for suite in bench e2e; do for fw in ${FW:-1 2 4}; do
  python3 -m workbench compare $OUT/$suite-fw1.json $OUT/$suite-fw$fw.json --peer tuned-graph --vs fa3 2>/dev/null | grep -E "b8x|r8x|b32x|r32x|geomean"
done; done
echo "done ${SECONDS}s"
pack_out fit-waves
