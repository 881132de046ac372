#!/usr/bin/env bash
# Device recipe (issue 13): `workbench e2e` on a GPU host, in stages that fit 10-minute calls on one
# warm host (it keeps /tmp between back-to-back calls).
#   STAGE=prep  needs .offline/ and .peers/: exports the study's package (source tree: e2e builds it
#               against the host's torch) and benches tuned vs FA3 on the e2e suite (the grid's
#               shapes: the kernel ratio k of each point) -> /tmp/wbe2e/{pkg,bench-e2e.json}.
#               GRAPH_LEN (default 32864): the bench's bound (1104 = a 1k-only grid's own); REPLAY=1:
#               `bench --replay-ours` (our rows by CUDA-graph replay, as FA3's); INGRAPH=1: `bench --in-graph`
#               (every row as one graph of launches back to back, as attention runs in the engine's step:
#               at b1 x 1k it reads 8.0 us where one launch per graph reads 10.4-11.0; session 26); with it
#               KVW=1: `--kv-write` (each launch after a KV-write stand-in); CONTIG=1: `--pages contiguous` (a
#               fresh engine's block ids, as the e2e engine has them); BENCH_REF=fa3-packed: FA3 on vLLM's packed
#               cache as the bench's reference row (then run e2e with `--bench-ref fa3-packed`; session 27: it ties fa3)
#   STAGE=run   needs the vLLM bundle (scripts/bundle_vllm.sh; part1 in an earlier call, the last
#               part in this one) and .offline/: `workbench e2e` for BACKENDS (resumes /tmp/wbe2e/run).
#               E2E_BATCHES / E2E_CONTEXTS: a part of the grid (e.g. 32 and 1k,4k,16k), each part in a run
#               folder of its own (RUN=run-b1-b64; default run): the engine settings follow the grid
#               (max_num_seqs = its largest batch), so `e2e` refuses to resume one part's folder with another.
#               On a host without the prep stage's /tmp: DB (and STUDY) export again, BENCH_JSON gives the
#               prep bench carried in the tree; SEED=<saved e2e.json or e2e.json.gz> reuses its FLASH_ATTN
#               attention shares (`e2e --shares-from`; with SHARES=none), on any grid. REF2=1: FLASH_ATTN
#               runs again after the others (`e2e --reference-twice`: ratios to the mean of its runs).
#               FLOOR=<saved e2e.json(.gz) with TRITON_ATTN, same weights and seed>: the ids floor where this run
#               does not measure TRITON_ATTN (`e2e --floor-from`; results/h200-2026-11-30-s23/2-floor/e2e.json.gz
#               holds b8/b32 x 1k/4k).
#               MAX_LEN=32864: vLLM's max_model_len as a 32k server sets it (the bench's --graph-len), where a
#               part of the grid would otherwise bound its graphs at what it needs (1104 for 1k points:
#               session 25's small-a runs; their in-engine attention ratio is for that bound).
# The package is built with the per-step device schedule (the default since v9). WALK=1: with `export
# --graph-walk` and k from `bench --graph-walk` instead (opt-in walk); PLAIN=1: `--no-graph-sched`.
# STAGE=ab (after STAGE=prep-ab, which exports and benches both packages): the plain package
#   (--no-graph-sched, column "default" = v8's default) and the scheduled one in one call on one host, each
#   beside FLASH_ATTN, on AB_BATCHES x AB_CONTEXTS (default 1,8,32,64 x 1k,4k), with SEED's attention
#   shares; prints both ratio columns. vLLM's max_model_len is AB_MAX_LEN (default 32864, `e2e
#   --max-model-len`): the graphs bounded as a 32k server bounds them (at the grid's own 4192 the two
#   forms tie: results/h200-2026-11-29-ab). One package with its FLASH_ATTN takes ~4-5 min (two engines, the package's
#   build): AB_ONLY=default, then AB_ONLY=sched in the next call on the same warm host (prints both).
#   SEED may hold any grid (`e2e --shares-from`: points it lacks get no prediction).
# Transfers: a call carries the tree (~27 MiB) plus its carry paths, at most 64 MiB. The vLLM parts are
#   41 MiB each, so carry them in pieces (2026-11-29): part1's files in two calls (MANIFEST, deps, vllm-py;
#   then vllm-so and the .so piece), part2's piece split in two (`split -n 2 -d`, carried as .vllm/p2a and
#   .vllm/p2b and joined with cat on the host), each call copying what it brought to /tmp/vparts/part{1,2};
#   then VLLM=/tmp/vparts. With the tree at ~46 MB (2026-11-29) a 21 MB piece no longer fits: split part2's
#   piece in three (`split -n 3 -d` -> .vllm/p3a, p3b, p3c + MANIFEST) and carry .offline in a call of its own.
#   Since 2026-11-29 (session 19): `bash scripts/slim_tree.sh out <the DB> <the SEED>` here first parks
#   results/ (37 MB) outside the carried tree, so part1 travels with the prep call and part2 with the
#   run call (two transfers); `bash scripts/slim_tree.sh back` afterwards.
# Usage: STUDY=h200-train DB=results/h200-2026-11-29-retune/ab/studies-geomean.db.gz STAGE=prep bash scripts/device_e2e.sh
#        VLLM=.vllm BACKENDS=CUSTOM,FLASH_ATTN STAGE=run bash scripts/device_e2e.sh
set -uo pipefail
source scripts/device_env.sh
export COLUMNS=220
W=/tmp/wbe2e; mkdir -p $W
WALKF=$([ "${WALK:-0}" = 1 ] && echo --graph-walk)      # export and bench flag of the opt-in walk
[ "${PLAIN:-0}" = 1 ] && WALKF=--no-graph-sched          # ... or of the plain graph-bound grid
SECONDS=0
case ${STAGE:-run} in
prep-ab)
  peers_or_fa3
  STUDY=${STUDY:-h200-train}; DB=${DB:-results/h200-2026-11-28-v6/studies.db}
  db_copy "$DB" $W/studies.db
  for F in --no-graph-sched --graph-sched; do
    T=$([ $F = --graph-sched ] && echo -sched)
    python3 -m workbench export --study $STUDY --storage sqlite:///$W/studies.db --out $W/pkg$T $F --json \
      > $OUT/export$T.json 2> $OUT/export$T.err; echo "export$T rc=$? ${SECONDS}s"
    timeout ${BENCH_S:-200} python3 -m workbench bench --study $STUDY --storage sqlite:///$W/studies.db --suite e2e \
      --peers tuned-graph,fa3 --graph-len 32864 $F --out $W/bench-e2e$T.json > $OUT/bench-e2e$T.txt 2> $OUT/bench-e2e$T.err
    echo "bench$T rc=$? ${SECONDS}s"; cp $W/bench-e2e$T.json $OUT/; tail -6 $OUT/bench-e2e$T.txt
  done
  ;;
ab)
  source scripts/vllm_activate.sh ${VLLM:-.vllm} || { echo "vLLM bundle incomplete"; exit 3; }
  case ${AB_ONLY:-both} in default) LIST=plain;; sched) LIST=sched;; *) LIST="plain sched";; esac
  for X in $LIST; do
    T=$([ $X = sched ] && echo -sched)
    R=$W/ab$T; mkdir -p $R
    timeout ${AB_S:-270} python3 -m workbench e2e --package $W/pkg$T --bench $W/bench-e2e$T.json --out $R \
      ${SEED:+--shares-from $SEED} \
      --backends CUSTOM,FLASH_ATTN --share-backends none --batches ${AB_BATCHES:-1,8,32,64} \
      --contexts ${AB_CONTEXTS:-1k,4k} --steps ${STEPS:-128} --timeout ${CHILD_S:-250} \
      --max-model-len ${AB_MAX_LEN:-32864} > $OUT/ab$T.txt 2> $OUT/ab$T.err
    echo "e2e ab$T rc=$? ${SECONDS}s"; cp $R/e2e.json $OUT/ab$T.json 2>/dev/null
  done
  python3 - $W/ab/e2e.json $W/ab-sched/e2e.json <<'PY'
import json, sys
def ratios(path):
    try:
        d = json.load(open(path))
    except (OSError, ValueError):
        return {}
    res = d.get("results", {})
    pts = {b: {f"b{p['batch']}x{p['context']}": p.get("tok_s") for p in res.get(b, {}).get("points", [])}
           for b in ("FLASH_ATTN", "CUSTOM")}
    f, c = pts["FLASH_ATTN"], pts["CUSTOM"]
    return {p: c[p] / f[p] for p in c if c[p] and f.get(p)}
a, b = ratios(sys.argv[1]), ratios(sys.argv[2])
print(f"{'point':>10} {'default':>9} {'sched':>9}   (CUSTOM / FLASH_ATTN tok/s, each pair in its own engine run)")
for p in sorted(set(a) | set(b), key=lambda s: tuple(int(x) for x in s[1:].split("x"))):
    print(f"{p:>10} {a.get(p, float('nan')):9.3f} {b.get(p, float('nan')):9.3f}")
PY
  ;;
prep)
  peers_or_fa3
  STUDY=${STUDY:-h200-train}; DB=${DB:-results/h200-2026-11-28-v2/studies.db}
  db_copy "$DB" $W/studies.db
  python3 -m workbench export --study $STUDY --storage sqlite:///$W/studies.db --out $W/pkg $WALKF --json > $OUT/export.json 2> $OUT/export.err
  echo "export rc=$? ${SECONDS}s"; tail -3 $OUT/export.err
  timeout ${BENCH_S:-300} python3 -m workbench bench --study $STUDY --storage sqlite:///$W/studies.db --suite e2e \
    --peers tuned,tuned-graph,${BENCH_REF:-fa3} --graph-len ${GRAPH_LEN:-32864} $WALKF $([ "${REPLAY:-0}" = 1 ] && echo --replay-ours) $([ "${INGRAPH:-0}" = 1 ] && echo --in-graph) \
    $([ "${KVW:-0}" = 1 ] && echo --kv-write) $([ "${CONTIG:-0}" = 1 ] && echo --pages contiguous) \
    --out $W/bench-e2e.json > $OUT/bench-e2e.txt 2> $OUT/bench-e2e.err
  echo "bench rc=$? ${SECONDS}s"; tail -3 $OUT/bench-e2e.err; cp $W/bench-e2e.json $OUT/ 2>/dev/null; cat $OUT/bench-e2e.txt
  ;;
run)
  source scripts/vllm_activate.sh ${VLLM:-.vllm} || { echo "vLLM bundle incomplete"; exit 3; }
  # FlashInfer (for BACKENDS=...FLASHINFER) only when asked: the 0.6.14 that vLLM 0.26 pins
  # (scripts/bundle_flashinfer_vllm.sh; carry .vllm/flashinfer once per warm host)
  [ "${WITH_FLASHINFER:-0}" = 1 ] && { source scripts/flashinfer_vllm_activate.sh .vllm/flashinfer || exit 3; }
  PKG=$W/pkg
  if [ ! -d $PKG ] && [ -n "${DB:-}" ]; then     # a fresh host: export again (seconds), from the same study
    db_copy "$DB" $W/studies.db
    python3 -m workbench export --study ${STUDY:-h200-train} --storage sqlite:///$W/studies.db --out $PKG $WALKF --json \
      > $OUT/export.json 2> $OUT/export.err; echo "export rc=$? ${SECONDS}s"
  fi
  [ -n "${BENCH_JSON:-}" ] && cp "$BENCH_JSON" $W/bench-e2e.json     # the prep stage's bench, carried in the tree
  # SEED=old-e2e.json(.gz): FLASH_ATTN's attention shares (a per point) from a saved run (`e2e --shares-from`),
  # so this call measures the backends but needs no nsys capture; any grid (E2E_BATCHES / E2E_CONTEXTS too)
  timeout ${E2E_S:-560} python3 -m workbench e2e --package $PKG --bench $W/bench-e2e.json --out $W/${RUN:-run} \
    ${SEED:+--shares-from $SEED} ${FLOOR:+--floor-from $FLOOR} $([ "${REF2:-0}" = 1 ] && echo --reference-twice) \
    --backends ${BACKENDS:-CUSTOM,FLASH_ATTN} --share-backends ${SHARES:-FLASH_ATTN,CUSTOM} --steps ${STEPS:-128} \
    --timeout ${CHILD_S:-400} ${E2E_BATCHES:+--batches $E2E_BATCHES} ${E2E_CONTEXTS:+--contexts $E2E_CONTEXTS} \
    ${MAX_LEN:+--max-model-len $MAX_LEN} ${BENCH_REF:+--bench-ref $BENCH_REF} > $OUT/e2e.txt 2> $OUT/e2e.err
  echo "e2e rc=$? ${SECONDS}s"; tail -40 $OUT/e2e.err
  R=${RUN:-run}
  tar czf $OUT/e2e-run.tgz -C $W $R/e2e.json $R/e2e.png $R/logs $R/backends 2>/dev/null
  cp $W/$R/e2e.json $W/$R/e2e.png $OUT/ 2>/dev/null; cat $OUT/e2e.txt
  ;;
esac
