#!/usr/bin/env bash
# Device recipe (issue 13, session 14): the graph-pick rule A/B on one host. The session's llama-3.1-8b
# study (results/h200-2026-11-29-retune) refined with --graph-rule geomean and with --graph-rule worst
# (both with the row's short-context shapes), each exported and benched on the e2e grid (tuned-graph vs
# FA3: the k of each e2e point). Carry .offline and .peers/fa3.tar.xz.
set -uo pipefail
source scripts/device_env.sh
fa3_only; export COLUMNS=200
W=/tmp/wbab; mkdir -p $W; S=h200-train; SECONDS=0
for R in geomean worst; do
  gunzip -c results/h200-2026-11-29-retune/studies.db.gz > $W/$R.db; DB=sqlite:///$W/$R.db
  timeout 150 python3 -m workbench refine --study $S --storage $DB --graph-len 32864 --graph-rule $R --again \
    > $W/refine-$R.txt 2> $W/refine-$R.err
  echo "refine $R rc=$? ${SECONDS}s"; grep -A30 "graph 32864" $W/refine-$R.txt | grep -E "refined|kept" | grep graph -A0 | cut -c1-120
  grep -E "· graph 32864" -A8 $W/refine-$R.txt | grep -E "refined|kept" | cut -c1-140
  timeout 100 python3 -m workbench bench --study $S --storage $DB --suite e2e --peers tuned-graph,fa3 --graph-len 32864 \
    --out $W/bench-e2e-$R.json > $W/bench-e2e-$R.txt 2> $W/bench-e2e-$R.err
  echo "bench $R rc=$? ${SECONDS}s"; grep -E "geomean" $W/bench-e2e-$R.txt
done
python3 - $W <<'PY'
import json, sys
a = {"b1x1024": .08, "b1x4096": .11, "b1x16384": .18, "b1x32768": .25, "b8x1024": .13, "b8x4096": .24, "b8x16384": .48,
     "b8x32768": .64, "b32x1024": .23, "b32x4096": .47, "b32x16384": .76, "b64x1024": .34, "b64x4096": .61}
for r in ("geomean", "worst"):
    try:
        d = json.load(open(f"{sys.argv[1]}/bench-e2e-{r}.json"))
    except OSError:
        continue
    t = {(x["peer"], x["shape"]): x["median_us"] for x in d["results"]}
    pred = {s: 1 / ((1 - aa) + aa / (t[("fa3", s)] / t[("tuned-graph", s)])) for s, aa in a.items()}
    print(r, "predicted e2e min %.3f, below 0.99 at %s" % (min(pred.values()), [s for s, p in pred.items() if p < 0.99]))
    print("  " + " ".join(f"{s}:{t[('fa3', s)] / t[('tuned-graph', s)]:.3f}" for s in a))
PY
tar czf $OUT/ab.tgz --exclude='*.db' -C /tmp wbab
cp $W/geomean.db $OUT/studies-geomean.db
echo "done ${SECONDS}s"
