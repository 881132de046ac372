#!/usr/bin/env bash
# Device recipe (issues 12, 13; session 14): a fresh llama-3.1-8b study over tuning/spaces/hopper.yaml
# (now with onepass on tensor cores), refined with graph picks at vLLM's bound, then the e2e prep
# (export + bench of the e2e grid: each point's kernel ratio k) and, with the time left, the bench
# suite against FA3. Everything lands in /tmp/wbe2e (the run stage of device_e2e.sh uses it on the
# same warm host) and, archived, under $OUT. Carry .offline and .peers/fa3.tar.xz.
# Usage: TUNE_S=240 bash scripts/device_retune_e2e.sh
set -uo pipefail
source scripts/device_env.sh
fa3_only; export COLUMNS=200
W=/tmp/wbe2e; mkdir -p $W/log; DB=sqlite:///$W/studies.db; S=h200-train
SECONDS=0
timeout $((${TUNE_S:-240} + 60)) python3 -m workbench tune --gpu h200 --model llama-3.1-8b --suite train --trials 2000 \
  --space tuning/spaces/hopper.yaml --timeout ${TUNE_S:-240} --profile none --study $S --storage $DB --json \
  > $W/log/tune.json 2> $W/log/tune.err
echo "tune rc=$? ${SECONDS}s"; tail -2 $W/log/tune.err
timeout 150 python3 -m workbench refine --study $S --storage $DB --graph-len 32864 > $W/log/refine.txt 2> $W/log/refine.err
echo "refine rc=$? ${SECONDS}s"; tail -1 $W/log/refine.txt; grep -A12 "graph 32864" $W/log/refine.txt | grep -E "graph|refined|kept" | cut -c1-140
python3 -m workbench export --study $S --storage $DB --out $W/pkg --json > $W/log/export.json 2> $W/log/export.err
echo "export rc=$? ${SECONDS}s"
timeout 150 python3 -m workbench bench --study $S --storage $DB --suite e2e --peers tuned,tuned-graph,fa3 --graph-len 32864 \
  --out $W/bench-e2e.json > $W/log/bench-e2e.txt 2> $W/log/bench-e2e.err
echo "bench e2e rc=$? ${SECONDS}s"; sed -n '/┏/,$p' $W/log/bench-e2e.txt | grep -E "b[0-9]+x|geomean"
left=$((570 - SECONDS))
if [ $left -gt 60 ]; then
  timeout $left python3 -m workbench bench --study $S --storage $DB --suite bench --peers tuned,fa3 \
    --out $W/bench-suite.json > $W/log/bench-suite.txt 2> $W/log/bench-suite.err
  echo "bench suite rc=$? ${SECONDS}s"; grep -E "geomean|below" $W/log/bench-suite.txt
fi
cp $W/studies.db $W/bench-e2e.json $OUT/ 2>/dev/null
tar czf $OUT/retune.tgz -C $W log bench-suite.json 2>/dev/null || tar czf $OUT/retune.tgz -C $W log
echo "done ${SECONDS}s"
