#!/usr/bin/env bash
# bundle_vllm.sh [DEST]     (DEST defaults to <repo>/.vllm; gitignored, never commit it)
#
# Builds the whole vLLM 0.26.0 (the last release that runs on the GPU hosts' torch 2.11.0+cu130)
# for the end-to-end runs on an offline GPU host (x86-64, CPython 3.12, no package registry),
# split into parts of at most PART_MIB (45) MiB, one part per transfer: the `device` tool carries
# at most 64 MiB per call, working tree (~9 MB) and .offline/ (~5-10 MB) included.
#
# What it produces:
#   DEST/part1/, DEST/part2/, ...  each holds some of the files below plus the same MANIFEST
#   (sha256 of every file, which part holds it, how it installs). Today: 2 parts of 40.0 MiB each
#   (part1: vllm-so, vllm-py, deps and the first 13 MB of the extension; part2: the other 42 MB).
#   Files (xz; sizes as built on 2026-11-28):
#     vllm__C_stable_libtorch.abi3.so.xz.N-of-M  vLLM's main extension (78.8 MB, 55 MB with
#                              xz --x86 -9e: more than one part can take), split in byte pieces
#                              that fill the parts; it installs once all its pieces have arrived.
#     vllm-so.tar.xz           the other kept extensions: vllm_flash_attn/_vllm_fa3_C (FA3),
#                              _flashmla_C, _qutlass_C, deep_gemm _C (cp312 only), ... (12 MB)
#     vllm-py.tar.xz           the Python tree, third_party headers, vllm-0.26.0.dist-info (6.8 MB)
#     deps.tar.xz              the wheels the hosts lack (list below, 9.7 MB)
#   Dropped from the vLLM wheel (nothing on the offline LLM / `bench latency` path loads them;
#   their lines are removed from the dist-info RECORD):
#     vllm_flash_attn/_vllm_fa2_C.abi3.so (291 MiB; imported in try/except, FA3 is used on SM 9.x),
#     _moe_C_stable_libtorch.abi3.so (45 MiB; imported under suppress(ImportError), MoE/LoRA only),
#     vllm-rs (41 MiB; only `vllm serve` with the Rust frontend),
#     third_party/deep_gemm/_C.cpython-3{10,11,13,14}-*.so (other Pythons than the hosts' 3.12).
#   Wheels carried (cp312 / manylinux x86-64, --no-deps; the closure was checked against the hosts'
#   `pip list` of 2026-11-28: everything else vLLM needs on this path is in the image):
#     msgspec cbor2 pyzmq openai jiter distro sniffio openai-harmony cachetools pybase64 llguidance
#     xgrammar (lib/libxgrammar.a removed, debug info stripped from its bindings: 116 -> 3 MB; RECORD
#     updated) apache-tvm-ffi (0.1.11, the one FlashInfer 0.7.2 needs; vLLM pins 0.1.10 but only
#     its CuTe-DSL kernels import it, xgrammar accepts >= 0.1.9) fastapi starlette partial-json-parser
#     pydantic pydantic-core annotated-types typing-inspection (the image has no pydantic)
#     blake3 setproctitle depyf astor dill.
#   Not carried on purpose: flashinfer (peers bundle, scripts/bundle_peers.sh), mistral_common
#   (pins numpy < 2.4; the hosts have 2.5), serve-only packages (uvicorn, prometheus-fastapi-
#   instrumentator, mcp, anthropic, opentelemetry, watchfiles), lm-format-enforcer, outlines_core,
#   and GPU stacks vLLM lists but this path never imports (tilelang, cutlass-dsl, quack-kernels,...).
#
# Prerequisites (the machine that runs this, not the GPU host): registry access to PyPI, python3
# with pip (any version), GNU tar, xz, sha256sum, strip (binutils), ~2 GB of scratch space, ~10 min
# on 2 cores (xz -9e of ~300 MB). Wheels are cached in $BUNDLE_CACHE (default
# ~/.cache/workbench-bundles, shared with bundle_peers.sh). Env: PART_MIB (default 45),
# XZ_THREADS (default 0 = all cores).
#
# On the GPU host, one part per `device` call, back to back on the same warm host (it keeps /tmp):
#   run(command="source scripts/vllm_activate.sh .vllm || true", carry=[".vllm/part1"])
#   run(command="source scripts/vllm_activate.sh .vllm && python3 my_e2e.py", carry=[".vllm/part2"])
# vllm_activate.sh unpacks whatever parts are present into /tmp/vllm-site, says which parts are
# still missing (and returns non-zero) until all have arrived, then exports PYTHONPATH and the
# offline environment. Once complete, later calls on the same warm host need no carry at all:
#   run(command="source scripts/vllm_activate.sh .vllm && python3 my_e2e.py")
# If the host was not kept between calls, it says so (part1 missing again): resend from part1.
# With the peers too: source scripts/peers_activate.sh .peers && source scripts/vllm_activate.sh .vllm
# (either order; the real vllm package always wins over the peers' FA3-only namespace package).
# Checked on an H200 host on 2026-11-28: both parts in back-to-back calls, all 6947 RECORD hashes,
# LLM(load_format="dummy", attention_backend="FLASH_ATTN") on a 4-layer Llama-3.1-8B-shaped config:
# engine up in 68 s, 8 x 64 tokens generated.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
dest=${1:-$repo/.vllm}
cache=${BUNDLE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/workbench-bundles}
py=${PYTHON:-python3}
part_mib=${PART_MIB:-45}
xz_threads=${XZ_THREADS:-0}

VLLM=vllm==0.26.0
DEPS=(msgspec==0.21.1 cbor2==6.1.3 pyzmq==27.1.0 openai==2.48.0 jiter==0.16.0 distro==1.9.0
      sniffio==1.3.1 openai-harmony==0.0.8 cachetools==7.1.6 pybase64==1.4.3 llguidance==1.7.6
      xgrammar==0.2.3 apache-tvm-ffi==0.1.11 fastapi==0.136.3 starlette==1.3.1
      partial-json-parser==0.2.1.1.post7 pydantic==2.12.5 pydantic-core==2.41.5
      annotated-types==0.7.0 typing-inspection==0.4.2 blake3==1.0.8 setproctitle==1.3.7
      depyf==0.20.0 astor==0.8.1 dill==0.4.0)

for t in tar xz strip sha256sum "$py"; do
  command -v "$t" >/dev/null || { echo "bundle_vllm: '$t' not found" >&2; exit 1; }
done
mkdir -p "$cache"
work=$(mktemp -d "${TMPDIR:-/tmp}/bundle-vllm.XXXXXX")
trap 'rm -rf "$work"' EXIT

echo "[vllm] downloading wheels into $cache"
"$py" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --abi cp312 --abi abi3 --abi none \
  --platform manylinux_2_35_x86_64 --platform manylinux_2_34_x86_64 --platform manylinux_2_31_x86_64 \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_26_x86_64 \
  --platform manylinux_2_24_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  --platform manylinux1_x86_64 --platform any \
  -d "$cache" "$VLLM" "${DEPS[@]}" 2>&1 | grep -v "is ignored: it is neither a file nor a directory" || true

# The cache may hold other versions: pick each pinned wheel by its normalized name and version.
"$py" - "$cache" "$VLLM" "${DEPS[@]}" > "$work/wheels.txt" <<'PY'
import os, re, sys
cache, specs = sys.argv[1], sys.argv[2:]
norm = lambda s: re.sub(r"[-_.]+", "_", s).lower()
files = [f for f in os.listdir(cache) if f.endswith(".whl")]
for spec in specs:
    name, ver = spec.split("==")
    hits = sorted(f for f in files if norm(f.split("-")[0]) == norm(name) and f.split("-")[1] == ver
                  and ("x86_64" in f or f.endswith("-any.whl")) and ("cp312" in f or "abi3" in f or "-none-" in f))
    if not hits:
        sys.exit(f"bundle_vllm: no wheel for {spec} in {cache}")
    print(os.path.join(cache, hits[-1]))
PY

# Stage: vLLM minus the dropped members (RECORD fixed), the deps unpacked as pip would (platlib/
# purelib at the root, .data scripts dropped), xgrammar slimmed. Then sort into the archives.
echo "[vllm] extracting"
"$py" - "$work" 3< "$work/wheels.txt" <<'PY'
import base64, csv, hashlib, io, os, shutil, subprocess, sys, zipfile
work = sys.argv[1]
wheels = [l.strip() for l in os.fdopen(3) if l.strip()]
DROP = {"vllm/vllm_flash_attn/_vllm_fa2_C.abi3.so", "vllm/_moe_C_stable_libtorch.abi3.so", "vllm/vllm-rs"}
def drop_vllm(p):
    if p in DROP:
        return True
    return p.startswith("vllm/third_party/deep_gemm/_C.cpython-") and "-312-" not in p
def rec_hash(path):
    h = hashlib.sha256(open(path, "rb").read()).digest()
    return "sha256=" + base64.urlsafe_b64encode(h).rstrip(b"=").decode(), str(os.path.getsize(path))
report = []
for whl in wheels:
    is_vllm = os.path.basename(whl).startswith("vllm-")
    out = os.path.join(work, "vllm" if is_vllm else "deps")
    z = zipfile.ZipFile(whl)
    names = set(z.namelist())
    kept, dropped, dropped_bytes = [], [], 0
    for i in z.infolist():
        if i.is_dir():
            continue
        p = i.filename
        target = p
        top = p.split("/", 1)[0]
        if top.endswith(".data") and top[:-5] + ".dist-info/RECORD" in names:   # <dist>.data/<scheme>/...
            scheme, rest = (p.split("/", 2) + ["", ""])[1:3]
            if scheme in ("purelib", "platlib") and rest:
                target = rest
            else:
                dropped.append(p); dropped_bytes += i.file_size; continue
        if (is_vllm and drop_vllm(p)) or p == "xgrammar/lib/libxgrammar.a":
            dropped.append(p); dropped_bytes += i.file_size; continue
        dst = os.path.join(out, target)
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        with z.open(i) as src, open(dst, "wb") as f:
            shutil.copyfileobj(src, f, 1 << 20)
        m = (i.external_attr >> 16) & 0o777
        os.chmod(dst, m if m else 0o644)
        kept.append((p, target))
    changed = {}
    if os.path.basename(whl).startswith("xgrammar-"):   # debug info is 48 of its 51 MB
        so = os.path.join(out, "xgrammar/libxgrammar_bindings.so")
        subprocess.run(["strip", "--strip-debug", so], check=True)
        changed["xgrammar/libxgrammar_bindings.so"] = rec_hash(so)
    moved = {p: t for p, t in kept if p != t}
    for p, t in kept:
        if p.endswith(".dist-info/RECORD"):
            rows = list(csv.reader(io.StringIO(z.read(p).decode())))
            new = []
            for r in rows:
                if not r or r[0] in dropped:
                    continue
                r[0] = moved.get(r[0], r[0])
                if r[0] in changed:
                    r[1], r[2] = changed[r[0]]
                new.append(r)
            with open(os.path.join(out, t), "w", newline="") as f:
                csv.writer(f, lineterminator="\n").writerows(new)
    report.append(f"{os.path.basename(whl)}: kept {len(kept)} files; dropped {len(dropped)} "
                  f"({dropped_bytes / 2**20:.1f} MiB){': ' + ', '.join(dropped) if dropped else ''}"
                  + (f"; stripped debug info: {', '.join(changed)}" if changed else ""))
open(os.path.join(work, "extract-report.txt"), "w").write("\n".join(report) + "\n")
print("\n".join("  " + r for r in report if "dropped 0 " not in r or "stripped" in r))
PY

# sort the vLLM tree: the big extension alone, the other extensions, the rest
mkdir -p "$work/items" "$work/vso" "$work/vpy"
mv "$work/vllm/vllm/_C_stable_libtorch.abi3.so" "$work/C_stable.so"
(cd "$work/vllm" && find . -type f -name '*.so' -print0 | tar --null -T - -cf -) | tar -xf - -C "$work/vso"
find "$work/vllm" -type f -name '*.so' -delete
mv "$work/vllm" "$work/vpy/tree"

tarxz() {  # tarxz OUT SRC_DIR XZ_ARGS...: reproducible tar (sorted, fixed owner/mtime) through xz
  local out=$1 src=$2; shift 2
  tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=2026-07-25T00:00:00Z -C "$src" -cf - . | xz -T"$xz_threads" "$@" > "$out"
}
echo "[vllm] compressing (xz -9e; several minutes)"
xz -T"$xz_threads" --block-size=40MiB --x86 --lzma2=preset=9e -c "$work/C_stable.so" > "$work/items/vllm__C_stable_libtorch.abi3.so.xz"
tarxz "$work/items/vllm-so.tar.xz" "$work/vso" --block-size=40MiB --x86 --lzma2=preset=9e
tarxz "$work/items/vllm-py.tar.xz" "$work/vpy/tree" --block-size=64MiB -9e
tarxz "$work/items/deps.tar.xz" "$work/deps" --block-size=40MiB --x86 --lzma2=preset=9e
c_sha=$(sha256sum "$work/C_stable.so" | cut -c1-64)

# Pack into parts: whole archives first (in this order, a new part when one does not fit), then
# the big extension's xz stream poured into the space left, in pieces, adding parts as needed.
rm -rf "$dest"; mkdir -p "$dest"
"$py" - "$work/items" "$dest" "$part_mib" "$c_sha" <<'PY'
import hashlib, os, shutil, sys
items_dir, dest, part_mib, c_sha = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
cap = part_mib * 2**20 - 64 * 1024            # room for the MANIFEST copy
def sha(p):
    h = hashlib.sha256()
    with open(p, "rb") as f:
        for b in iter(lambda: f.read(1 << 20), b""): h.update(b)
    return h.hexdigest()
whole = [("vllm-so.tar.xz", "tar", "."), ("vllm-py.tar.xz", "tar", "."), ("deps.tar.xz", "tar", ".")]
big = ("vllm__C_stable_libtorch.abi3.so.xz", "xz", "vllm/_C_stable_libtorch.abi3.so")
sizes = {name: os.path.getsize(os.path.join(items_dir, name)) for name, _, _ in whole}
for name, n in sizes.items():
    if n > cap: sys.exit(f"bundle_vllm: {name} ({n} B) is larger than a part")
big_n = os.path.getsize(os.path.join(items_dir, big[0]))
total = sum(sizes.values()) + big_n
nparts = -(-total // cap)
while True:                                   # balance: fill each part to about total/nparts
    target = min(cap, -(-total // nparts))
    parts, used = [[]], [0]                   # each part: list of (filename, src, offset, length, item)
    for name, _, _ in whole:                  # whole archives in order; a new part when one is full
        if used[-1] and used[-1] + sizes[name] > target: parts.append([]); used.append(0)
        parts[-1].append((name, name, 0, sizes[name], name)); used[-1] += sizes[name]
    pieces, off, pi = [], 0, 0                # then the big stream into the room left, from part 1 on
    while off < big_n:
        if pi == len(parts): parts.append([]); used.append(0)
        room = (target if pi + 1 < nparts else cap) - used[pi]
        if room >= 1 << 20:
            ln = min(room, big_n - off)
            pieces.append((pi, off, ln)); used[pi] += ln; off += ln
        pi += 1
    if len(parts) <= nparts or nparts > 16: break
    nparts += 1
for k, (pi, off, ln) in enumerate(pieces, 1):
    parts[pi].append((f"{big[0]}.{k}-of-{len(pieces)}", big[0], off, ln, big[0]))
if max(used) > cap: sys.exit("bundle_vllm: packing failed")
lines = [f"# vLLM 0.26.0 offline bundle (scripts/bundle_vllm.sh); install: source scripts/vllm_activate.sh DEST",
         f"# item<TAB>name<TAB>kind<TAB>target<TAB>sha256 (of the installed file for kind xz)",
         f"# file<TAB>part<TAB>filename<TAB>item<TAB>sha256<TAB>bytes"]
lines.append(f"item\t{big[0]}\txz\t{big[2]}\t{c_sha}")
for name, kind, target in whole:
    lines.append(f"item\t{name}\t{kind}\t{target}\t-")
for pi, files in enumerate(parts, 1):
    d = os.path.join(dest, f"part{pi}"); os.makedirs(d)
    for fn, src, off, ln, item in files:
        with open(os.path.join(items_dir, src), "rb") as f, open(os.path.join(d, fn), "wb") as g:
            f.seek(off); left = ln
            while left:
                b = f.read(min(left, 1 << 20)); g.write(b); left -= len(b)
        lines.append(f"file\tpart{pi}\t{fn}\t{item}\t{sha(os.path.join(d, fn))}\t{ln}")
man = "\n".join(lines) + "\n"
for pi in range(1, len(parts) + 1):
    open(os.path.join(dest, f"part{pi}", "MANIFEST"), "w").write(man)
print(f"[vllm] {len(parts)} parts")
PY
cp "$work/extract-report.txt" "$dest/BUNDLE_INFO"
{ echo; echo "wheel sha256:"; while read -r w; do (cd "$(dirname "$w")" && sha256sum "$(basename "$w")"); done < "$work/wheels.txt"; } >> "$dest/BUNDLE_INFO"
for p in "$dest"/part*; do
  echo "$(basename "$p"): $(du -cb "$p"/* | tail -1 | cut -f1) bytes = $(( $(du -cb "$p"/* | tail -1 | cut -f1) / 1048576 )) MiB"
  ls -l "$p" | tail -n +2 | awk '{print "    " $5 "  " $9}'
done
n=$(ls -d "$dest"/part* | wc -l)
echo "[vllm] on the GPU host, one part per call on a warm host (carry is relative to the repo root):"
for i in $(seq 1 "$n"); do
  if [ "$i" -lt "$n" ]; then echo "  run(command=\"source scripts/vllm_activate.sh ${1:-.vllm} || true\", carry=[\"${1:-.vllm}/part$i\"])"
  else echo "  run(command=\"source scripts/vllm_activate.sh ${1:-.vllm} && python3 ...\", carry=[\"${1:-.vllm}/part$i\"])"; fi
done
