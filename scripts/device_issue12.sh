#!/usr/bin/env bash
# Device recipe: issue 12's evidence on one GPU kind (written for the first H100 call; works on any
# Hopper the profiles know), in three calls on one warm host (each under 10 minutes; ~20 minutes of
# device time in all). It reuses device_models.sh and device_in_graph.sh; every table lands in $OUT.
#   STAGE=1  carry .offline:          tune llama-3.1-8b on this GPU's train suite (TUNE_S, default 240)
#   STAGE=2  carry .offline, .peers:  refine it (graph picks at 32864) and bench the bench suite in-graph
#                                     against FA3, FlashInfer-TC, XQA and the read: the table, its
#                                     geomeans and the b1 x 1k / 4k latencies
#   STAGE=3  carry .offline, .peers;  the other suites with the H200's studies (tuned on another GPU: the
#            results parked except    dispatch is out of sample twice), in-graph against FA3 and the read:
#            the DBs named below      qwen2.5-7b, llama-3.1-70b TP8 (session 23's band-worst studies),
#                                     gemma-2-9b, llama-2-7b (session 15's)
# `bash scripts/slim_tree.sh out results/h200-2026-11-30-s23/9-band-worst/models-qwen2.5-7b.db.gz
#   results/h200-2026-11-30-s23/9-band-worst/models-llama-3.1-70b.db.gz results/h200-2026-11-29-models/models.db.gz`
# before STAGE=3 (the tree, .offline and .peers must fit 64 MiB), `bash scripts/slim_tree.sh back` after.
# GPU (default h100) names the profile: STAGE=1's study is $GPU-llama-3.1-8b-tp1 in /tmp/wbmodels/models.db.
set -uo pipefail
export GPU=${GPU:-h100} COLUMNS=200
ALL=tuned,tuned-graph,fa3-packed,flashinfer-tc,xqa,read
case ${STAGE:-1} in
1) MODELS=llama-3.1-8b STAGE=tune TUNE_S=${TUNE_S:-240} bash scripts/device_models.sh ;;
2) MODELS=llama-3.1-8b STAGE=bench REFINE_S=${REFINE_S:-150} BENCH_S=${BENCH_S:-330} PEERS=$ALL BENCH_ARGS=--in-graph \
     bash scripts/device_models.sh ;;
3) SKIP_TEST=1 FORMS=in-graph RUNS="qwen:bench 70b:bench" PEERS=tuned,tuned-graph,fa3-packed,read STOP_S=300 BENCH_S=140 \
     bash scripts/device_in_graph.sh
   W=/tmp/wbmodels-h200 STUDY_GPU=h200 MODELS="gemma-2-9b llama-2-7b" STAGE=bench REFINE=0 BENCH_S=130 \
     DB=results/h200-2026-11-29-models/models.db.gz PEERS=tuned,tuned-graph,fa3-packed,read BENCH_ARGS=--in-graph \
     bash scripts/device_models.sh ;;
*) echo "STAGE is 1, 2 or 3"; exit 2 ;;
esac
