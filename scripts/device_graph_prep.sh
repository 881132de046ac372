#!/usr/bin/env bash
# Device recipe (issues 12, 13; session 14): the session's llama-3.1-8b study (results/h200-2026-11-29-retune)
# refined again with the worst-shape graph rule (tune.refine.choose_graph, both algorithms among each
# row's candidates), exported, and its e2e grid benched (each point's k) into /tmp/wbe2e for
# device_e2e.sh's run stage on the same warm host (the refined study and the bench also come back
# under $OUT, for a fresh host: DB=... BENCH_JSON=...). Then qwen2.5-7b's session study (results/
# h200-2026-11-29-qwen-pad) benched again with untimed buckets borrowing their neighbour's pick.
# Carry .offline and .peers/fa3.tar.xz.
set -uo pipefail
source scripts/device_env.sh
fa3_only; export COLUMNS=200
W=/tmp/wbe2e; mkdir -p $W/log; S=h200-train
gunzip -c results/h200-2026-11-29-retune/studies.db.gz > $W/studies.db; DB=sqlite:///$W/studies.db
SECONDS=0
timeout 200 python3 -m workbench refine --study $S --storage $DB --graph-len 32864 --again > $W/log/refine.txt 2> $W/log/refine.err
echo "refine rc=$? ${SECONDS}s"; tail -1 $W/log/refine.txt; grep -A14 "graph 32864" $W/log/refine.txt | grep -E "graph|refined|kept" | cut -c1-150
rm -rf $W/pkg; python3 -m workbench export --study $S --storage $DB --out $W/pkg --json > $W/log/export.json 2> $W/log/export.err
echo "export rc=$? ${SECONDS}s"
timeout 150 python3 -m workbench bench --study $S --storage $DB --suite e2e --peers tuned,tuned-graph,fa3 --graph-len 32864 \
  --out $W/bench-e2e.json > $W/log/bench-e2e.txt 2> $W/log/bench-e2e.err
echo "bench e2e rc=$? ${SECONDS}s"; sed -n '/┏/,$p' $W/log/bench-e2e.txt | grep -E "b[0-9]+x|geomean"
M=/tmp/wbmodels; mkdir -p $M; gunzip -c results/h200-2026-11-29-qwen-pad/models.db.gz > $M/models.db
timeout 120 python3 -m workbench bench --model qwen2.5-7b --study h200-qwen2.5-7b-tp1 --storage sqlite:///$M/models.db \
  --suite bench --peers tuned,fa3 --out $W/bench-qwen.json > $W/log/bench-qwen.txt 2> $W/log/bench-qwen.err
echo "bench qwen rc=$? ${SECONDS}s"; grep -E "b256x16384|geomean|below" $W/log/bench-qwen.txt
cp $W/studies.db $OUT/studies-refined.db; cp $W/bench-e2e.json $W/bench-qwen.json $OUT/
tar czf $OUT/prep-logs.tgz -C $W log
echo "done ${SECONDS}s"
