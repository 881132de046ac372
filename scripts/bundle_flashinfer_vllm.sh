#!/usr/bin/env bash
# bundle_flashinfer_vllm.sh [DEST]   (DEST defaults to <repo>/.vllm/flashinfer; gitignored)
#
# FlashInfer for vLLM's own FLASHINFER backend in `workbench e2e` on an offline GPU host. vLLM 0.26.0
# pins flashinfer-python==0.6.14 (its METADATA); the peers bundle (scripts/bundle_peers.sh) holds
# 0.7.2.post1, the release `workbench bench` times its kernels from, which vLLM 0.26 was not built
# against. This one is the pinned release, whole (its wheel is 14.5 MB; the tree with its CUTLASS /
# CCCL headers for the JIT is ~6 MB as tar.xz), so it travels beside .vllm/part2 in one call.
# Its apache-tvm-ffi (>= 0.1.6, < 0.2, not 0.1.8) comes with the vLLM bundle (0.1.11). The CuTe-DSL,
# cuDNN and cuTile packages it lists are imported only by kernels this path does not run (SM100 /
# cuDNN attention, GEMMs), as in the peers bundle.
#
# Produces DEST/flashinfer.tar.xz (flashinfer/ and its dist-info) and DEST/MANIFEST.sha256.
# On the host, `WITH_FLASHINFER=1 STAGE=run bash scripts/device_e2e.sh` (or device_fused.sh STAGE=e2e)
# unpacks it into /tmp/fi-vllm/site (once per warm host), puts it first on PYTHONPATH and sets the
# JIT cache (FLASHINFER_WORKSPACE_BASE=/tmp): carry [".vllm/part2", ".vllm/flashinfer"].
# Prerequisites: registry access, python3 with pip, tar, xz, sha256sum. Env: BUNDLE_CACHE, XZ_THREADS.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
dest=${1:-$repo/.vllm/flashinfer}
cache=${BUNDLE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/workbench-bundles}
py=${PYTHON:-python3}
FI=flashinfer-python==0.6.14
for t in tar xz sha256sum "$py"; do command -v "$t" >/dev/null || { echo "bundle_flashinfer_vllm: '$t' not found" >&2; exit 1; }; done
mkdir -p "$cache" "$dest"
work=$(mktemp -d "${TMPDIR:-/tmp}/bundle-fi.XXXXXX")
trap 'rm -rf "$work"' EXIT
"$py" -m pip download -q --no-deps --only-binary=:all: --platform any --python-version 3.12 -d "$cache" "$FI" 2>&1 \
  | grep -v "is ignored: it is neither a file nor a directory" || true
whl=$(ls "$cache"/flashinfer_python-0.6.14-*.whl 2>/dev/null | sort | tail -1)
[ -f "$whl" ] || { echo "bundle_flashinfer_vllm: $FI did not download into $cache" >&2; exit 1; }
(cd "$work" && "$py" -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(".")' "$whl")
tar -C "$work" -cf - flashinfer flashinfer_python-0.6.14.dist-info | xz -T"${XZ_THREADS:-0}" -6 > "$dest/flashinfer.tar.xz"
(cd "$dest" && sha256sum flashinfer.tar.xz > MANIFEST.sha256)
echo "[fi-vllm] $dest/flashinfer.tar.xz: $(du -h "$dest/flashinfer.tar.xz" | cut -f1) ($(basename "$whl"))"
