"""FlashInfer's XQA decode (TensorRT-LLM's kernel), the decode vLLM's FLASHINFER backend runs on
SM90 when it picks XQA: `flashinfer.decode.trtllm_batch_decode_with_kv_cache(..., backend="xqa")`
(vllm/v1/attention/backends/flashinfer.py, FlashInferImpl.forward), HND pages.
"""
from __future__ import annotations

import math
from typing import Callable

from workbench.bench.peers.common import PeerUnavailable, checked_error, require_device
from workbench.bench.peers.flashinfer import WORKSPACE_BYTES, load_flashinfer
from workbench.measure.workload import WorkloadSpec

# flashinfer/jit/xqa.py gen_xqa_module: TOKENS_PER_PAGE in {16, 32, 64, 128}, head_dim % 16 == 0
XQA_PAGES = (16, 32, 64, 128)


def xqa_page(block_size: int) -> int:
    """Our block size when XQA takes it (16 and 32 do: the pages stay the ones our kernel reads);
    there is no repacking into other page sizes, as every block size we build (16, 32) is accepted."""
    if block_size not in XQA_PAGES:
        raise PeerUnavailable(f"XQA takes pages of {'/'.join(map(str, XQA_PAGES))} tokens, not {block_size}")
    return block_size


def xqa(spec: WorkloadSpec, min_bytes: int, check: bool = True,
        device: str = "cuda") -> tuple[list[Callable[[], None]], str, float]:
    """Our KV contents in HND pages [pages, KH, block, D], one block table per rotation copy. One
    zeroed workspace for all calls (its first 8 MB are XQA's semaphores, which the kernel leaves
    reset), as vLLM shares one across layers; bmm1_scale = softmax scale, bmm2_scale = 1."""
    import torch

    from workbench.bench.peers.paged import our_kv
    decode, ver = load_flashinfer()
    # flashinfer/xqa.py: "XQA is only supported on SM90, SM100, SM120/SM121 GPUs"
    require_device("XQA", device, majors=(9, 10, 12))
    page = xqa_page(spec.block_size)
    if spec.head_size % 16:
        raise PeerUnavailable(f"XQA needs a head size divisible by 16, not {spec.head_size}")
    kv = our_kv(spec, min_bytes, "HND", check, device)
    ws = torch.zeros(WORKSPACE_BYTES, dtype=torch.uint8, device=device)
    out = torch.empty_like(kv.q)

    def call(i: int) -> Callable[[], None]:
        table = kv.tables[i]

        def run() -> None:
            decode.trtllm_batch_decode_with_kv_cache(
                query=kv.q, kv_cache=(kv.k, kv.v), workspace_buffer=ws, block_tables=table,
                seq_lens=kv.seq_lens, max_seq_len=spec.max_seq_len, bmm1_scale=kv.scale, bmm2_scale=1.0,
                out=out, kv_layout="HND", backend="xqa")
        return run
    calls = [call(i) for i in range(kv.copies)]
    err = checked_error(calls, out, kv.ref) if check else math.nan
    return calls, (f"{ver} trtllm_batch_decode_with_kv_cache(backend='xqa'), HND pages of {page} (the cache "
                   f"block size; XQA takes 16-128), our kernel's KV contents, {kv.copies} copies"), err
