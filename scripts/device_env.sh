# Sourced by the device recipes (scripts/device_*.sh): bundled wheels (optuna, nvtx, xformers) and nsys
# libs, this checkout installed without deps (the image's torch is the one to use), cache and $OUT.
# Prerequisites: .offline/ built by ../shared/offline-gpu/bundle.sh (+ activate.sh copied in), carried to the host.
export OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
source .offline/activate.sh .offline
python3 -m pip install --no-deps --no-build-isolation -e . -q 2>&1 | grep -v WARNING
export WORKBENCH_CACHE=/tmp/wbcache PYTHONUNBUFFERED=1
[ -d .offline/vllm-0.10.2-src ] && export WORKBENCH_VLLM_SRC=$PWD/.offline/vllm-0.10.2-src
# FA3 alone: .peers/fa3.tar.xz carried without the rest of the peers bundle (the tree, .offline and
# FlashInfer together pass the 64 MiB transfer limit), unpacked once per warm host
fa3_only() {
  [ -d /tmp/fa3/vllm ] || { [ -f .peers/fa3.tar.xz ] && mkdir -p /tmp/fa3 && tar xJf .peers/fa3.tar.xz -C /tmp/fa3; } || return 1
  export PYTHONPATH=${PYTHONPATH:-}:/tmp/fa3
}
# A/B of a kernel change in one call: `kernel_form old` puts .ab/decode-old.cu (carried) in place of
# kernels/decode.cu, `kernel_form new` puts the tree's own back (saved at the first call of this shell)
kernel_form() {
  if [ -z "${WB_AB_NEW:-}" ]; then WB_AB_NEW=$(mktemp); cp kernels/decode.cu "$WB_AB_NEW"; fi
  if [ "$1" = old ]; then cp .ab/decode-old.cu kernels/decode.cu; else cp "$WB_AB_NEW" kernels/decode.cu; fi
}
# A call returns at most 8 files from $OUT (the rest are dropped: session 20 lost a refine table and
# a bench that way). `pack_out NAME`: past 8, everything under $OUT goes into $OUT/NAME.tgz instead.
pack_out() {
  local n; n=$(find "$OUT" -type f | wc -l)
  [ "$n" -le 8 ] && return 0
  (cd "$OUT" && tar czf "/tmp/$1.tgz" . && find . -mindepth 1 -delete && mv "/tmp/$1.tgz" .)
  echo "pack_out: $n files -> \$OUT/$1.tgz"
}
# `ncu_probe TAG CMD...`: CMD (a probe that marks its launches with an NVTX range "probe") under ncu,
# the launch / occupancy / per-SM balance metrics as CSV in $OUT/ncu-TAG.csv (scripts/ncu_details.py
# prints them); clocks left to the GPU as the timings run them.
NCU_SECTIONS="--section SpeedOfLight --section Occupancy --section LaunchStats --metrics sm__ctas_launched.max,sm__ctas_launched.min,sm__cycles_active.max,sm__cycles_active.min,sm__cycles_active.avg,dram__bytes_read.sum"
ncu_probe() { local tag=$1; shift
  timeout ${NCU_S:-200} ncu --clock-control none --nvtx --nvtx-include "probe/" $NCU_SECTIONS --csv --page details "$@" \
    > $OUT/ncu-$tag.csv 2> $OUT/ncu-$tag.err
  echo "== ncu $tag rc=$? ${SECONDS}s"; tail -2 $OUT/ncu-$tag.err
}
# `ragged_probe NAME [VAR=value ...]`: scripts/probe_ragged.py over the recipe's variants $K and shapes $S
# with those variables set, into $OUT/NAME.json and NAME.txt; prints the table (the last PROBE_TAIL rows)
ragged_probe() { local name=$1; shift
  env "$@" timeout ${PROBE_S:-170} python3 scripts/probe_ragged.py $OUT/$name.json "$K" $S > $OUT/$name.txt 2>&1
  echo "== $name rc=$? ${SECONDS}s"; grep -v Warning $OUT/$name.txt | tail -${PROBE_TAIL:-34}
}
# `db_copy SRC DEST`: a study DB into place, from a committed .db or its gzip (.db.gz, as results/ keeps
# the larger ones), writable (Optuna opens it read-write)
db_copy() { case $1 in *.gz) gunzip -c "$1" > "$2" ;; *) cp "$1" "$2" ;; esac; chmod u+w "$2"; }
# `peers_or_fa3`: the peers bundle where it was carried, else FA3 alone (.peers/fa3.tar.xz)
peers_or_fa3() { source scripts/peers_activate.sh ${PEERS_DIR:-.peers} || fa3_only || echo "peers bundle missing: FA3 will say why"; }
# `band_worst M` (qwen | 70b | llama): sets model, tp, study and db to session 23's band-worst study of M
# (the studies session 24's headline tables and session 26's in-graph A/Bs were benched from)
band_worst() {
  local d=results/h200-2026-11-30-s23/9-band-worst
  case $1 in
    qwen)  model=qwen2.5-7b; tp=1; study=h200-qwen2.5-7b-tp1; db=$d/models-qwen2.5-7b.db.gz ;;
    70b)   model=llama-3.1-70b; tp=8; study=h200-llama-3.1-70b-tp8; db=$d/models-llama-3.1-70b.db.gz ;;
    llama) model=llama-3.1-8b; tp=1; study=h200-train; db=$d/studies-llama-3.1-8b.db.gz ;;
    *) echo "band_worst: unknown model key $1 (qwen, 70b, llama)"; return 1 ;;
  esac
}
