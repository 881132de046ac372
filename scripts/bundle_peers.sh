#!/usr/bin/env bash
# bundle_peers.sh [DEST]     (DEST defaults to <repo>/.peers; gitignored, never commit it)
#
# Builds the "peers" bundle: the decode-attention kernels users compare against, packed so that
# one transfer carries them to an offline GPU host (x86-64, CPython 3.12, torch 2.11.0+cu130,
# nvcc 13.0, no package registry there).
#
# What it produces (DEST/):
#   fa3.tar.xz         vLLM 0.26.0's vllm/vllm_flash_attn/ package: its Python files plus
#                      _vllm_fa3_C.abi3.so (FA3, Hopper). FA2's _vllm_fa2_C (300 MB) is left out:
#                      flash_attn_interface imports it inside try/except. NO vllm/__init__.py.
#                      ~7.6 MB (the .so is 153 MB raw; xz with the x86 BCJ filter).
#   flashinfer.tar.xz  flashinfer-python 0.7.2.post1 (+ its dist-info) with data/ slimmed to what
#                      the JIT of the decode, prefill and XQA modules compiles: csrc/ top-level files
#                      + csrc/xqa + csrc/nv_internal, include/, cutlass/{include,tools/util/include},
#                      cccl/{cub,libcudacxx/include,thrust}, spdlog/include. All Python is kept.
#                      ~12 MB (62 MB wheel, 427 MB unpacked; 180 MB unpacked after slimming).
#   tvm-ffi.tar.xz     apache-tvm-ffi 0.1.11 (cp312-abi3 manylinux x86-64), FlashInfer's FFI. ~1.6 MB.
#   MANIFEST.sha256    sha256 of the archives (peers_activate.sh checks it), BUNDLE_INFO (text).
#   Total ~20 MB: one transfer (the limit is 64 MiB with the ~9 MB working tree and .offline/).
#
# Prerequisites (the machine that runs this, not the GPU host): registry access to PyPI,
# python3 with pip (any version: wheels are chosen for cp312 / manylinux x86-64), GNU tar, xz,
# about 1 GB of scratch space. Downloaded wheels are cached in $BUNDLE_CACHE
# (default ~/.cache/workbench-bundles; bundle_vllm.sh shares the 304 MB vLLM wheel).
# Env: FI_CSRC_KEEP="xqa nv_internal" (data/csrc subtrees to keep; add e.g. "fused_moe" if you
#      need a FlashInfer module beyond decode/prefill/XQA), XZ_THREADS (default 0 = all cores).
#
# On the GPU host (the `device` tool copies the working tree; .peers/ is gitignored so name it in
# `carry`):   run(command="source scripts/peers_activate.sh .peers && python3 my_peer_bench.py",
#                 carry=[".peers"])
# peers_activate.sh unpacks into /tmp/peers-site (skipped when already unpacked from the same
# archives), and sets PYTHONPATH, FLASHINFER_WORKSPACE_BASE=/tmp (JIT cache) and TVM_FFI_CACHE_DIR.
# Then `from vllm.vllm_flash_attn.flash_attn_interface import flash_attn_varlen_func,
# get_scheduler_metadata` and `import flashinfer` work. See docs/offline-bundles.md.
# Checked on an H200 host on 2026-11-28: FA3 (fa_version=3, paged, with scheduler metadata), FlashInfer
# BatchDecodeWithPagedKVCacheWrapper with use_tensor_cores False/True and
# trtllm_batch_decode_with_kv_cache(..., backend="xqa") JIT-built from this slimmed tree (14 s,
# 36 s, 12 s on first use) and matched an fp32 reference; with the vLLM bundle also active, `vllm`
# resolved to the real package.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
dest=${1:-$repo/.peers}
cache=${BUNDLE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/workbench-bundles}
py=${PYTHON:-python3}
fi_keep=${FI_CSRC_KEEP:-xqa nv_internal}
xz_threads=${XZ_THREADS:-0}
limit=$((45 * 1024 * 1024))

VLLM_WHL=vllm==0.26.0
FI_WHL=flashinfer-python==0.7.2.post1
TVM_WHL=apache-tvm-ffi==0.1.11

for t in tar xz "$py"; do command -v "$t" >/dev/null || { echo "bundle_peers: '$t' not found" >&2; exit 1; }; done
mkdir -p "$cache" "$dest"
work=$(mktemp -d "${TMPDIR:-/tmp}/bundle-peers.XXXXXX")
trap 'rm -rf "$work"' EXIT

echo "[peers] downloading wheels into $cache"
"$py" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp --abi cp312 --abi abi3 --abi none \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_24_x86_64 \
  --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform any \
  -d "$cache" "$VLLM_WHL" "$FI_WHL" "$TVM_WHL" 2>&1 | grep -v "is ignored: it is neither a file nor a directory" || true
whl() { ls "$cache"/$1 2>/dev/null | sort | tail -1; }
vllm_whl=$(whl 'vllm-0.26.0-*.whl'); fi_whl=$(whl 'flashinfer_python-0.7.2.post1-*.whl')
tvm_whl=$(whl 'apache_tvm_ffi-0.1.11-*x86_64*.whl')
for w in "$vllm_whl" "$fi_whl" "$tvm_whl"; do [ -f "$w" ] || { echo "bundle_peers: a wheel is missing in $cache" >&2; exit 1; }; done

# extract WHEEL OUTDIR MODE: unzip a wheel, keeping the members MODE selects, and rewrite the
# dist-info RECORD (if kept) without the dropped members. Prints what was dropped.
extract() {
  FI_KEEP="$fi_keep" DROP_LOG="$work/dropped.txt" "$py" - "$@" <<'PY'
import csv, io, os, sys, zipfile
whl, out, mode = sys.argv[1:4]
fi_keep = set(os.environ.get("FI_KEEP", "").split())

def keep(p):
    if mode == "fa3":   # only the FA3 package of the vLLM wheel, without FA2's extension
        return p.startswith("vllm/vllm_flash_attn/") and not p.endswith("/_vllm_fa2_C.abi3.so")
    if mode == "flashinfer":
        if p in ("build_backend.py", "build_utils.py"):   # sdist build helpers, top-level names
            return False
        d = "flashinfer/data/"
        if not p.startswith(d):
            return True
        r = p[len(d):].split("/")
        if r[0] == "csrc":          # csrc top-level files + the subtrees decode/XQA JIT needs
            return len(r) == 2 or r[1] in fi_keep
        if r[0] == "cutlass":       # only the include paths jit/env.py passes to nvcc
            return p.startswith((d + "cutlass/include/", d + "cutlass/tools/util/include/"))
        if r[0] == "cccl":
            return p.startswith((d + "cccl/cub/", d + "cccl/libcudacxx/include/", d + "cccl/thrust/"))
        if r[0] == "spdlog":
            return p.startswith(d + "spdlog/include/")
        return True
    return True

z = zipfile.ZipFile(whl)
dropped = {}
kept = set()
for i in z.infolist():
    if i.is_dir():
        continue
    if not keep(i.filename):
        if mode == "fa3" and not i.filename.startswith("vllm/vllm_flash_attn/"):
            top = "(rest of the vLLM wheel: not part of this bundle)"
        else:
            top = "/".join(i.filename.split("/")[:4])
        dropped[top] = dropped.get(top, 0) + i.file_size
        continue
    z.extract(i, out)
    kept.add(i.filename)
    m = (i.external_attr >> 16) & 0o777
    os.chmod(os.path.join(out, i.filename), m if m else 0o644)
for p in kept:
    if p.endswith(".dist-info/RECORD"):
        rows = list(csv.reader(io.StringIO(z.read(p).decode())))
        rows = [r for r in rows if r and (r[0] in kept or r[0] == p)]
        with open(os.path.join(out, p), "w", newline="") as f:
            csv.writer(f, lineterminator="\n").writerows(rows)
tot = sum(dropped.values())
with open(os.environ["DROP_LOG"], "a") as log:
    log.write(f"{os.path.basename(whl)}: kept {len(kept)} files; dropped {tot / 2**20:.1f} MiB raw\n")
    for k, v in sorted(dropped.items()):
        log.write(f"  - {k} ({v / 2**20:.2f} MiB)\n")
print(f"  {os.path.basename(whl)}: kept {len(kept)} files, dropped {tot / 2**20:.1f} MiB raw"
      + (":" if dropped else ""))
for k, v in sorted(dropped.items(), key=lambda kv: -kv[1])[:12]:
    print(f"    - {k} ({v / 2**20:.1f} MiB)")
if len(dropped) > 12:
    print(f"    - ... {len(dropped) - 12} more")
PY
}

# pack NAME SRC_DIR [xz filter args]: reproducible tar (sorted, fixed owner/mtime) through xz
pack() {
  local name=$1 src=$2; shift 2
  tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=2026-07-25T00:00:00Z -C "$src" -cf - . \
    | xz -T"$xz_threads" "$@" > "$dest/$name.tmp"
  mv -f "$dest/$name.tmp" "$dest/$name"
}

echo "[peers] extracting"
mkdir -p "$work/fa3" "$work/fi" "$work/tvm"
extract "$vllm_whl" "$work/fa3" fa3
extract "$fi_whl" "$work/fi" flashinfer
extract "$tvm_whl" "$work/tvm" all
# vllm/ must stay a namespace package (no __init__.py): see peers_activate.sh
{ [ ! -e "$work/fa3/vllm/__init__.py" ] && [ -f "$work/fa3/vllm/vllm_flash_attn/_vllm_fa3_C.abi3.so" ]; } \
  || { echo "bundle_peers: unexpected vllm wheel layout" >&2; exit 1; }

echo "[peers] compressing (xz; a few minutes)"
rm -f "$dest"/*.tar.xz "$dest"/MANIFEST.sha256
pack fa3.tar.xz "$work/fa3" --x86 --lzma2=preset=9e
pack flashinfer.tar.xz "$work/fi" --block-size=64MiB -9e
pack tvm-ffi.tar.xz "$work/tvm" --x86 --lzma2=preset=9e

(cd "$dest" && sha256sum fa3.tar.xz flashinfer.tar.xz tvm-ffi.tar.xz > MANIFEST.sha256)
{
  echo "peers bundle, built $(date -u +%Y-%m-%dT%H:%MZ) by scripts/bundle_peers.sh"
  echo "fa3.tar.xz        <- $(basename "$vllm_whl") : vllm/vllm_flash_attn/ without _vllm_fa2_C.abi3.so"
  echo "flashinfer.tar.xz <- $(basename "$fi_whl") : data/csrc keeps top-level + ($fi_keep)"
  echo "tvm-ffi.tar.xz    <- $(basename "$tvm_whl")"
  echo "wheel sha256:"; (cd "$cache" && sha256sum "$(basename "$vllm_whl")" "$(basename "$fi_whl")" "$(basename "$tvm_whl")")
  echo "what each wheel lost (the vLLM wheel: everything outside vllm/vllm_flash_attn is simply not used here):"
  cat "$work/dropped.txt"
} > "$dest/BUNDLE_INFO"

total=$(cat "$dest"/*.tar.xz | wc -c)
ls -l "$dest"
echo "[peers] total $((total / 1024 / 1024)) MiB in $dest (limit per transfer 45 MiB)"
[ "$total" -le "$limit" ] || { echo "bundle_peers: bundle exceeds 45 MiB" >&2; exit 1; }
echo "[peers] on the GPU host: source scripts/peers_activate.sh ${1:-.peers}   (carry: [\"${1:-.peers}\"])"
