"""FlashInfer batch decode (`BatchDecodeWithPagedKVCacheWrapper`), CUDA-core and tensor-core, set
up as vLLM's FLASHINFER backend does under CUDA graphs (vllm/v1/attention/backends/flashinfer.py,
`_get_decode_wrapper`: use_cuda_graph=True with fixed indptr / indices / last_page_len buffers).
"""
from __future__ import annotations

import math
from typing import Any, Callable

from workbench.bench.peers.common import BUNDLE, PeerUnavailable, checked_error, one_line, require_device
from workbench.measure.workload import WorkloadSpec, torch_dtype

# vLLM's VLLM_FLASHINFER_WORKSPACE_BUFFER_SIZE default: split-KV partial results live here
WORKSPACE_BYTES = 394 * 1024 * 1024
PROVIDE = f"FlashInfer needs flashinfer-python 0.7.2.post1 + apache-tvm-ffi 0.1.11: {BUNDLE}"


def load_flashinfer() -> tuple[Any, str]:
    """(flashinfer.decode module, version text) or PeerUnavailable."""
    try:
        import flashinfer
        from flashinfer import decode
    except Exception as e:             # missing, tvm_ffi missing, CUDA libraries missing...
        raise PeerUnavailable(f"{PROVIDE} ({one_line(e)})") from None
    return decode, f"FlashInfer {getattr(flashinfer, '__version__', '?')}"


def flashinfer_decode(spec: WorkloadSpec, min_bytes: int, check: bool = True, device: str = "cuda",
                      tensor_cores: bool = False) -> tuple[list[Callable[[], None]], str, float]:
    """Our KV contents in NHD pages [pages, block, KH, D]. The CUDA-graph wrapper binds its page
    buffers at construction and plan() writes them, so each rotation copy gets its own wrapper and
    plan (made here, outside the timed calls); they share one float workspace, as vLLM's layers do:
    the calls run one after another on one stream."""
    import torch

    from workbench.bench.peers.paged import csr_pages, our_kv
    decode, ver = load_flashinfer()
    what = "FlashInfer tensor-core decode" if tensor_cores else "FlashInfer decode"
    require_device(what, device, majors=(8, 9, 10, 12))
    B, H, KH, D, P = spec.num_seqs, spec.num_heads, spec.num_kv_heads, spec.head_size, spec.block_size
    dt = torch_dtype(spec.dtype)
    kv = our_kv(spec, min_bytes, "NHD", check, device)
    ws = torch.zeros(WORKSPACE_BYTES, dtype=torch.uint8, device=device)   # "must be 0 for its first use"
    wrappers = []
    for table in kv.tables:
        indptr, indices, last = csr_pages(table.cpu(), spec.seq_lens, P)
        w = decode.BatchDecodeWithPagedKVCacheWrapper(
            ws, "NHD", use_cuda_graph=True, use_tensor_cores=tensor_cores,
            paged_kv_indptr_buffer=torch.empty(B + 1, dtype=torch.int32, device=device),
            paged_kv_indices_buffer=torch.empty(len(indices), dtype=torch.int32, device=device),
            paged_kv_last_page_len_buffer=torch.empty(B, dtype=torch.int32, device=device))
        # host indptr / last_page_len, as vLLM's fast_plan_decode passes them (plan reads them on the host)
        w.plan(indptr, indices.to(device), last, H, KH, D, P, pos_encoding_mode="NONE",
               q_data_type=dt, kv_data_type=dt, sm_scale=kv.scale, non_blocking=False)
        wrappers.append(w)
    out = torch.empty_like(kv.q)

    def call(i: int) -> Callable[[], None]:
        w = wrappers[i]

        def run() -> None:
            w.run(kv.q, (kv.k, kv.v), out=out)
        return run
    calls = [call(i) for i in range(kv.copies)]
    err = checked_error(calls, out, kv.ref) if check else math.nan
    cores = "tensor cores (use_tensor_cores=True)" if tensor_cores else "CUDA cores"
    return calls, (f"{ver} BatchDecodeWithPagedKVCacheWrapper, {cores}, use_cuda_graph with one plan per "
                   f"copy, NHD pages of {P}, our kernel's KV contents, {kv.copies} copies"), err


def flashinfer_cuda_cores(spec: WorkloadSpec, min_bytes: int, check: bool = True,
                          device: str = "cuda") -> tuple[list[Callable[[], None]], str, float]:
    return flashinfer_decode(spec, min_bytes, check, device, tensor_cores=False)


def flashinfer_tensor_cores(spec: WorkloadSpec, min_bytes: int, check: bool = True,
                            device: str = "cuda") -> tuple[list[Callable[[], None]], str, float]:
    return flashinfer_decode(spec, min_bytes, check, device, tensor_cores=True)
