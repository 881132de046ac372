#!/usr/bin/env bash
# Device recipe (perf-notes v27 Left 2): is vLLM 0.26's FlashInfer (0.6.14) the kernel the bench's FlashInfer peers
# (0.7.2.post1) time? One host, one call: `workbench bench` on scripts/suite-fi-versions.yaml with the peers bundle's
# FlashInfer, then again with .vllm/flashinfer's 0.6.14 first on PYTHONPATH (fa3-packed in both runs as the anchor).
# Carry .offline, .peers, .vllm/flashinfer; DB = a study (tuned-graph in the first run).
#   DB=results/h200-2026-11-30-s23/9-band-worst/studies-llama-3.1-8b.db.gz bash scripts/device_fi_versions.sh
set -uo pipefail
SECONDS=0
source scripts/device_env.sh
export COLUMNS=200
db_copy "${DB:?}" /tmp/fiv.db
source scripts/peers_activate.sh .peers > $OUT/peers.txt 2>&1 || { cat $OUT/peers.txt; exit 3; }
bench() {  # TAG PEERS SECONDS
  timeout $3 python3 -m workbench bench --study ${STUDY:-h200-train} --storage sqlite:////tmp/fiv.db \
    --suite scripts/suite-fi-versions.yaml --peers $2 --graph-len ${GRAPH_LEN:-32864} --out $OUT/bench-$1.json \
    > $OUT/bench-$1.txt 2> $OUT/bench-$1.err
  echo "bench $1 rc=$? ${SECONDS}s"; grep -v '^\s*$' $OUT/bench-$1.txt | tail -14
}
bench fi072 tuned-graph,fa3-packed,flashinfer,flashinfer-tc ${T1:-170}
source scripts/flashinfer_vllm_activate.sh .vllm/flashinfer || exit 3
bench fi0614 fa3-packed,flashinfer,flashinfer-tc ${T2:-150}
