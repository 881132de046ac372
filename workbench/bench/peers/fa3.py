"""FlashAttention-3 decode, called the way vLLM 0.26's FLASH_ATTN backend calls it under full CUDA
graphs (vllm/v1/attention/backends/flash_attn.py: FlashAttentionMetadataBuilder.build and
FlashAttentionImpl.forward): scheduler metadata made ahead of time with `get_scheduler_metadata`,
then `flash_attn_varlen_func(..., fa_version=3)` over paged K/V with `block_table` + `seqused_k`.
"""
from __future__ import annotations

import math
from typing import Any, Callable

from workbench.bench.peers.common import BUNDLE, PeerUnavailable, checked_error, one_line, require_device
from workbench.measure.workload import WorkloadSpec, torch_dtype

# vLLM's AttentionConfig.flash_attn_max_num_splits_for_cuda_graph: under full CUDA graphs the
# builder passes it to get_scheduler_metadata and to every call (FA3's heuristics otherwise)
MAX_SPLITS_UNDER_GRAPHS = 32
PROVIDE = f"FA3 needs vllm.vllm_flash_attn (vLLM 0.26's FA3 build): {BUNDLE}"


def load_fa3() -> tuple[Callable[..., Any], Callable[..., Any], str]:
    """(flash_attn_varlen_func, get_scheduler_metadata, version text) or PeerUnavailable."""
    try:
        # the bundle ships vllm/ as a namespace package (vllm_flash_attn only); a full vLLM works too
        from vllm.vllm_flash_attn import flash_attn_interface as fai
    except Exception as e:               # missing, or its extension fails to load (ImportError, OSError)
        # the package __init__ hides why _vllm_fa3_C did not load; the submodule it imported knows
        import sys
        why = getattr(sys.modules.get("vllm.vllm_flash_attn.flash_attn_interface"), "FA3_UNAVAILABLE_REASON", None)
        raise PeerUnavailable(f"{PROVIDE} ({f'_vllm_fa3_C: {why}'[:300] if why else one_line(e)})") from None
    if not getattr(fai, "FA3_AVAILABLE", False):
        raise PeerUnavailable(f"{PROVIDE} (its _vllm_fa3_C did not load: "
                              f"{str(getattr(fai, 'FA3_UNAVAILABLE_REASON', '?'))[:200]})")
    try:
        from importlib.metadata import version
        ver = f"vLLM {version('vllm')}"
    except Exception:                    # the bundle carries no vllm dist-info
        ver = "vLLM 0.26 bundle"
    return fai.flash_attn_varlen_func, fai.get_scheduler_metadata, ver


def fa3(spec: WorkloadSpec, min_bytes: int, check: bool = True,
        device: str = "cuda", packed: bool = False,
        max_seqlen_k: int | None = None) -> tuple[list[Callable[[], None]], str, float]:
    """FA3 paged decode on our KV contents in NHD pages [pages, block, KH, D], K and V as two
    tensors, one block table per rotation copy; q [B, H, D], one token each. `packed`: K and V as
    the two views of one [pages, block, KH, 2D] tensor, the cache vLLM 0.26 and 0.33 allocate for
    FLASH_ATTN (each token's K and V rows of a head side by side). `max_seqlen_k`: what the call is
    told (default the batch's longest sequence); vLLM's captured graphs hold max_model_len there
    (gpu_model_runner builds capture metadata with max_seq_len = max_model_len), while the scheduler
    metadata is made each step from the real lengths."""
    import torch

    from workbench.bench.peers.paged import PACKED, our_kv
    varlen, scheduler_metadata, ver = load_fa3()
    require_device("FA3", device, majors=(9,))
    if spec.block_size % 16:
        # vLLM's FlashAttentionBackend.get_kv_cache_shape refuses other block sizes
        raise PeerUnavailable(f"FA3 (vLLM) needs a block size that is a multiple of 16, not {spec.block_size}")
    B, H, KH, D, L = spec.num_seqs, spec.num_heads, spec.num_kv_heads, spec.head_size, spec.max_seq_len
    told = max(L, max_seqlen_k or 0)
    kv = our_kv(spec, min_bytes, PACKED if packed else "NHD", check, device)
    cu_q = torch.arange(B + 1, dtype=torch.int32, device=device)      # one query token per sequence
    # made once, outside the timed calls, as vLLM's builder does once per step for all layers
    meta = scheduler_metadata(
        batch_size=B, max_seqlen_q=1, max_seqlen_k=L, num_heads_q=H, num_heads_kv=KH, headdim=D,
        cache_seqlens=kv.seq_lens, qkv_dtype=torch_dtype(spec.dtype), cu_seqlens_q=cu_q,
        page_size=spec.block_size, causal=True, window_size=(-1, -1), num_splits=MAX_SPLITS_UNDER_GRAPHS)
    out = torch.empty_like(kv.q)

    def call(i: int) -> Callable[[], None]:
        table = kv.tables[i]

        def run() -> None:
            varlen(q=kv.q, k=kv.k, v=kv.v, out=out, cu_seqlens_q=cu_q, max_seqlen_q=1, seqused_k=kv.seq_lens,
                   max_seqlen_k=told, softmax_scale=kv.scale, causal=True, block_table=table,
                   scheduler_metadata=meta, fa_version=3, num_splits=MAX_SPLITS_UNDER_GRAPHS)
        return run
    calls = [call(i) for i in range(kv.copies)]
    err = checked_error(calls, out, kv.ref) if check else math.nan
    return calls, (f"FA3 ({ver} vllm_flash_attn) flash_attn_varlen_func with AOT scheduler metadata, "
                   f"num_splits {MAX_SPLITS_UNDER_GRAPHS} as under vLLM's CUDA graphs, "
                   + (f"K|V packed per token as vLLM's FLASH_ATTN cache [pages, {spec.block_size}, KH, 2D]"
                      if packed else f"NHD pages of {spec.block_size}")
                   + (f", max_seqlen_k {told} as in a graph captured at that max_model_len" if told != L else "")
                   + f", our kernel's KV contents, {kv.copies} copies"), err


def fa3_packed(spec: WorkloadSpec, min_bytes: int, check: bool = True,
               device: str = "cuda") -> tuple[list[Callable[[], None]], str, float]:
    """`fa3` on the cache vLLM allocates for FLASH_ATTN: K and V interleaved per token (fa3(packed=True))."""
    return fa3(spec, min_bytes, check, device, packed=True)
