#!/usr/bin/env bash
# Device recipe (issue 12, step 2): `workbench bench` on the bench suite (out-of-sample: the study
# was tuned on the train suite) with FA3, FlashInfer (CUDA cores, tensor cores) and XQA.
# Prerequisites: run from the repository root on a GPU host with .offline/ and .peers/ carried
# and the study DB at $DB (default results/<gpu>-train/studies.db).
# Usage: GPU=h200 bash scripts/device_bench.sh
set -uo pipefail
source scripts/device_env.sh
source scripts/peers_activate.sh .peers || echo "peers bundle missing: each peer will say why"
export COLUMNS=220
GPU=${GPU:-h200}; DB=${DB:-results/$GPU-train/studies.db}
SECONDS=0
cp "$DB" /tmp/studies.db 2>/dev/null || cp /tmp/studies-keep.db /tmp/studies.db
timeout ${BENCH_S:-480} python3 -m workbench bench --study $GPU-train --storage sqlite:////tmp/studies.db \
  --peers ${PEERS:-tuned,fa3,flashinfer,flashinfer-tc,xqa} --out $OUT/bench-$GPU.json --plot $OUT/bench-$GPU.png \
  > $OUT/bench-$GPU.txt 2> $OUT/bench.err
echo "bench rc=$? ${SECONDS}s"; tail -3 $OUT/bench.err; cat $OUT/bench-$GPU.txt
