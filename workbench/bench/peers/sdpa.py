"""bench.peers.sdpa (split from peers.py)."""
from __future__ import annotations

from workbench.bench.peers.common import PeerUnavailable, _copies, reference_out

import math
from typing import Callable

from workbench.measure.workload import WorkloadSpec, torch_dtype


def sdpa(spec: WorkloadSpec, min_bytes: int, check: bool = True) -> tuple[list[Callable[[], None]], str, float]:
    """torch SDPA, contiguous [B, KH, L, D] keys/values, enable_gqa: the no-paging reference."""
    import torch
    import torch.nn.functional as F
    if len(set(spec.seq_lens)) != 1:
        raise PeerUnavailable("SDPA reference needs uniform lengths")
    B, H, KH, D, L = spec.num_seqs, spec.num_heads, spec.num_kv_heads, spec.head_size, spec.max_seq_len
    dt = torch_dtype(spec.dtype)
    n = _copies(spec.kv_bytes, min_bytes)
    q = torch.randn(B, H, 1, D, device="cuda", dtype=dt)
    kvs = [(torch.randn(B, KH, L, D, device="cuda", dtype=dt), torch.randn(B, KH, L, D, device="cuda", dtype=dt))
           for _ in range(n)]
    out = [None]

    def call(i: int) -> Callable[[], None]:
        def run() -> None:
            out[0] = F.scaled_dot_product_attention(q, kvs[i][0], kvs[i][1], enable_gqa=True)
        return run
    calls = [call(i) for i in range(n)]
    err = math.nan
    if check:
        calls[0]()
        ref = reference_out(spec, q.squeeze(2), *kvs[0])
        err = float((out[0].squeeze(2).float() - ref).norm() / ref.norm())
    backend = "flash/efficient/math as torch picks"
    return calls, f"torch {torch.__version__} SDPA ({backend}), contiguous KV, {n} copies", err
