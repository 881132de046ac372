"""What users would run instead, one module each. Every builder takes (spec, min_bytes, check) and
returns (calls over rotating copies of its KV, ≥ 4× L2, so every launch reads cold; a note; the
relative error against the fp32 reference) or raises PeerUnavailable with the reason.

fa3, flashinfer, flashinfer-tc and xqa (the decode kernels vLLM serves with) read our kernel's own
timed KV contents in their layouts (paged.our_kv); sdpa, xformers and flex draw their own."""
from __future__ import annotations

from typing import Any, Callable

from workbench.bench.peers.common import BUNDLE, PeerUnavailable
from workbench.bench.peers.fa3 import fa3, fa3_packed
from workbench.bench.peers.flashinfer import flashinfer_cuda_cores, flashinfer_tensor_cores
from workbench.bench.peers.flex import flex_attention
from workbench.bench.peers.read import paged_read
from workbench.bench.peers.sdpa import sdpa
from workbench.bench.peers.xformers import xformers_splitk
from workbench.bench.peers.xqa import xqa

PEERS: dict[str, Callable[..., tuple[list[Callable[[], None]], str, float]]] = {
    "fa3": fa3, "fa3-packed": fa3_packed, "flashinfer": flashinfer_cuda_cores, "flashinfer-tc": flashinfer_tensor_cores, "xqa": xqa,
    "sdpa": sdpa, "xformers": xformers_splitk, "flex": flex_attention, "read": paged_read}

# per peer: the top-level modules it imports, the distribution its version is read from, what
# the GPU must be, and how to provide it
_NEEDS: dict[str, tuple[tuple[str, ...], str, str, str]] = {
    "fa3": (("vllm",), "vllm", "Hopper (sm_90)",
            f"FA3 needs vllm.vllm_flash_attn (vLLM 0.26's FA3 build): {BUNDLE}"),
    "flashinfer": (("flashinfer", "tvm_ffi"), "flashinfer-python", "sm_80 or newer",
                   f"flashinfer-python 0.7.2.post1 + apache-tvm-ffi 0.1.11: {BUNDLE}"),
    "flashinfer-tc": (("flashinfer", "tvm_ffi"), "flashinfer-python", "sm_80 or newer",
                      f"flashinfer-python 0.7.2.post1 + apache-tvm-ffi 0.1.11: {BUNDLE}"),
    "xqa": (("flashinfer", "tvm_ffi"), "flashinfer-python", "sm_90 / sm_100 / sm_120",
            f"flashinfer-python 0.7.2.post1 + apache-tvm-ffi 0.1.11: {BUNDLE}"),
    "sdpa": (("torch",), "torch", "any CUDA GPU", "torch (installed with workbench)"),
    "flex": (("torch",), "torch", "any CUDA GPU", "torch ≥ 2.5 (installed with workbench)"),
    "xformers": (("xformers",), "xformers", "any CUDA GPU", "pip install xformers==0.0.35"),
    "read": (("torch",), "workbench", "any CUDA GPU", "built from workbench's kernels/readprobe.cu (a bound: the paged KV read alone)"),
}


_NEEDS["fa3-packed"] = _NEEDS["fa3"]        # the same FA3 build, on another cache layout


def _fa3_found() -> str | None:
    """Where vllm/vllm_flash_attn/ with its FA3 extension is, without importing vllm (a full vLLM's
    __init__ is heavy; the peers bundle's vllm/ is a namespace package): None when absent."""
    import importlib.util
    from pathlib import Path
    spec = importlib.util.find_spec("vllm")
    for root in (spec.submodule_search_locations or []) if spec else []:
        d = Path(root) / "vllm_flash_attn"
        if (d / "flash_attn_interface.py").is_file() and any(d.glob("_vllm_fa3_C*.so")):
            return str(d)
    return None


def _version(dist: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version(dist)
    except PackageNotFoundError:
        return None


def peer_status() -> list[dict[str, Any]]:
    """For `workbench doctor`: one dict per peer, {"name", "available": bool, "version": str | None
    (when available), "reason": str | None (when not), "gpu": what the GPU must be, "provide": how
    to get it}. Only looks for the packages (importlib.util.find_spec, package metadata): imports
    none of them and initialises no CUDA, so a missing GPU or a broken extension shows only when
    the bench builds the peer."""
    import importlib.util
    rows = []
    for name in PEERS:
        mods, dist, gpu, provide = _NEEDS[name]
        missing = [m for m in mods if importlib.util.find_spec(m) is None]
        fa = name.startswith("fa3")
        where = _fa3_found() if fa and not missing else None
        if fa and not missing and where is None:
            missing = ["vllm.vllm_flash_attn with _vllm_fa3_C"]
        ver = _version(dist)
        if fa and where and ver is None:
            ver = f"vLLM's FA3 build without vllm metadata (the peers bundle) at {where}"
        ok = not missing
        rows.append({"name": name, "available": ok, "version": (ver or "installed") if ok else None,
                     "reason": None if ok else f"not importable: {', '.join(missing)}", "gpu": gpu,
                     "provide": provide})
    return rows


__all__ = ["PEERS", "PeerUnavailable", "peer_status"]
