"""vLLM's own paged-attention kernel (0.10.2, the version the paper patched) as a reference.

Not part of any tuned or exported kernel: it exists so that `baseline` / `paper` can be checked
against the real thing in the same harness, and so that `bench` can show a "vLLM" row. vLLM's
source is fetched from its pinned sdist (sha256-checked) into the cache, never committed:

- `ensure_source()` finds or downloads `vllm-0.10.2.tar.gz`, extracts csrc/attention and the two
  headers it needs, applies two small build-time patches (its reduce kernel becomes a device
  function so kernels/vllm_ref.cu can wrap it; a hook for the paper's L2 prefetch), and writes
  stub torch headers (the kernel code does not use torch).
- `build_ref(variant, arch)` compiles kernels/vllm_ref.cu against it into a cached cubin whose
  entry points take workbench's Params, so launch.py / timing.py / ncu drive it like a variant.

Hosts without network (the GPU hosts) use WORKBENCH_VLLM_SRC: a directory prepared by
`python -m workbench.kernel.vllm_ref DIR` on a machine with network.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import sys
import tarfile
import tempfile
import time
import urllib.request
from pathlib import Path

from workbench.errors import WorkbenchError
from workbench.config.paths import cache_dir, kernels_dir

VERSION = "0.10.2"
SDIST_URL = ("https://files.pythonhosted.org/packages/7d/0a/278d7bbf454f7de5322a5007427eed3e8b34ed6c2802491b56bb"
             "dfd7bbb4/vllm-0.10.2.tar.gz")
SDIST_SHA256 = "57608f44cf61f5d80fb182c98e06e524cb2925bb528258a7b247c8e43a52d13e"
WRAPPER = "vllm_ref.cu"
PATCH_VERSION = 1            # bump when the patches below change (part of the cubin cache key)

_KEEP = ("csrc/attention/", "csrc/cuda_compat.h", "csrc/quantization/fp8/nvidia/quant_utils.cuh")
_STUBS = ("torch/all.h", "ATen/cuda/CUDAContext.h", "c10/cuda/CUDAGuard.h")
_BT_LINE = "static_cast<int64_t>(block_table[block_idx]);"
# The paper's change, as a hook in each of vLLM's two block loops: lane 0 of the warp prefetches
# into L2 the tile (K in the first loop, V in the second) that the warp reads WB_PF_DIST
# iterations later. One contiguous tile per (block, KV head): one bulk prefetch.
_HOOK = """
#if WB_PF_DIST > 0 && {flag}
    if (lane == 0 && block_idx + WB_PF_DIST * NUM_WARPS < end_block_idx) {{
      const int64_t wb_pf = static_cast<int64_t>(block_table[block_idx + WB_PF_DIST * NUM_WARPS]);
      asm volatile("cp.async.bulk.prefetch.L2.global [%0], %1;" ::"l"({cache} + wb_pf * kv_block_stride +
                   kv_head_idx * kv_head_stride), "r"((int)(HEAD_SIZE * BLOCK_SIZE * sizeof(cache_t))) : "memory");
    }}
#endif
"""


def _source_root() -> Path:
    env = os.environ.get("WORKBENCH_VLLM_SRC")
    return Path(env) if env else cache_dir() / f"vllm-{VERSION}-src"


def _patch(kernels: str) -> str:
    if kernels.count(_BT_LINE) != 2 or kernels.count("__global__ void paged_attention_v2_reduce_kernel(") != 1:
        raise WorkbenchError(f"vLLM {VERSION} attention_kernels.cuh is not the expected file: cannot patch")
    first = kernels.index(_BT_LINE) + len(_BT_LINE)
    second = kernels.index(_BT_LINE, first) + len(_BT_LINE)
    kernels = (kernels[:first] + _HOOK.format(cache="k_cache", flag="WB_PF_K") + kernels[first:second]
               + _HOOK.format(cache="v_cache", flag="WB_PF_V") + kernels[second:])
    return kernels.replace("__global__ void paged_attention_v2_reduce_kernel(",
                           "__device__ void paged_attention_v2_reduce_kernel(")


def prepare(dest: Path, sdist: bytes) -> Path:
    """Extract and patch vLLM's attention sources from sdist bytes into dest (atomic)."""
    if hashlib.sha256(sdist).hexdigest() != SDIST_SHA256:
        raise WorkbenchError(f"vllm-{VERSION}.tar.gz does not match its pinned sha256")
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=dest.name + ".", dir=dest.parent))
    prefix = f"vllm-{VERSION}/"
    with tarfile.open(fileobj=io.BytesIO(sdist), mode="r:gz") as tf:
        for m in tf.getmembers():
            rel = m.name[len(prefix):] if m.name.startswith(prefix) else ""
            if m.isfile() and any(rel.startswith(k) for k in _KEEP) and rel.endswith((".h", ".cuh")):
                f = tf.extractfile(m)
                assert f is not None
                out = tmp / rel
                out.parent.mkdir(parents=True, exist_ok=True)
                out.write_bytes(f.read())
    kern = tmp / "csrc/attention/attention_kernels.cuh"
    if not kern.exists():
        shutil.rmtree(tmp, ignore_errors=True)
        raise WorkbenchError(f"vllm-{VERSION} sdist has no csrc/attention/attention_kernels.cuh")
    kern.write_text(_patch(kern.read_text()))
    for stub in _STUBS:
        p = tmp / "stubs" / stub
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text("#pragma once  // stub: vLLM's kernel code does not use torch\n")
    (tmp / "SOURCE.json").write_text(json.dumps({"version": VERSION, "url": SDIST_URL, "sha256": SDIST_SHA256,
                                                 "patch_version": PATCH_VERSION}))
    if dest.exists():
        shutil.rmtree(dest)
    os.replace(tmp, dest)
    return dest


def ensure_source(download: bool = True) -> Path:
    root = _source_root()
    meta = root / "SOURCE.json"
    if meta.exists():
        try:
            if json.loads(meta.read_text()).get("patch_version") == PATCH_VERSION:
                return root
        except ValueError:
            pass
    if not download:
        raise WorkbenchError(f"vLLM {VERSION} kernel source not found at {root}: run "
                             f"`python -m workbench.kernel.vllm_ref DIR` where there is network and set WORKBENCH_VLLM_SRC=DIR")
    try:
        with urllib.request.urlopen(SDIST_URL, timeout=60) as r:
            data = r.read()
    except OSError as e:
        raise WorkbenchError(f"cannot download vLLM {VERSION}'s sdist ({e}): prepare it elsewhere with "
                             f"`python -m workbench.kernel.vllm_ref DIR` and set WORKBENCH_VLLM_SRC=DIR") from None
    return prepare(root, data)


def defines(v) -> list[str]:  # noqa: ANN001  (Variant; imported lazily by build.py)
    from workbench.kernel.variant import PARTITION_VLLM
    d = {"WB_HEAD": v.head_size, "WB_BLOCK": v.block_size, "WB_DTYPE": 0 if v.dtype == "fp16" else 1,
         "WB_THREADS": v.threads, "WB_PARTITION": -1 if v.partition == PARTITION_VLLM else v.partition,
         "WB_PF_DIST": v.prefetch_distance, "WB_PF_K": int("k" in v.prefetch_target),
         "WB_PF_V": int("v" in v.prefetch_target)}
    return [f"-D{k}={val}" for k, val in d.items()]


def compile_command(nvcc: str, arch_flag: str, flags: tuple[str, ...], v, out: Path, root: Path) -> list[str]:  # noqa: ANN001
    return [nvcc, "-cubin", arch_flag, *flags, *defines(v), f"-I{root / 'csrc'}", f"-I{root / 'stubs'}",
            "-o", str(out), str(kernels_dir() / WRAPPER)]


def source_hash() -> str:
    h = hashlib.sha256((kernels_dir() / WRAPPER).read_bytes())
    h.update(f"{SDIST_SHA256}:{PATCH_VERSION}".encode())
    return h.hexdigest()[:16]


def main(argv: list[str] | None = None) -> int:
    """python -m workbench.kernel.vllm_ref DIR: fetch + prepare vLLM's kernel source into DIR."""
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m workbench.kernel.vllm_ref DIR", file=sys.stderr)
        return 2
    os.environ["WORKBENCH_VLLM_SRC"] = argv[0]
    t0 = time.perf_counter()
    try:
        root = ensure_source(download=True)
    except WorkbenchError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"vLLM {VERSION} attention kernel source ready in {root} ({time.perf_counter() - t0:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
