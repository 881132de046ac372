"""bench.peers.xformers (split from peers.py)."""
from __future__ import annotations

from workbench.bench.peers.common import PeerUnavailable, _copies, reference_out

import math
from typing import Callable

from workbench.measure.workload import WorkloadSpec, torch_dtype


def xformers_splitk(spec: WorkloadSpec, min_bytes: int, check: bool = True) -> tuple[list[Callable[[], None]], str, float]:
    """xformers' Triton split-k decode over a paged cache (page 64, its requirement). When the
    C++ extension cannot load on this torch, its Triton operator is called directly (said so)."""
    import torch
    try:
        import xformers
        from xformers.ops import fmha
        from xformers.ops.fmha import triton_splitk
        from xformers.ops.fmha.attn_bias import PagedBlockDiagonalPaddedKeysMask
    except Exception as e:                          # not installed / broken install
        raise PeerUnavailable(f"xformers not importable: {type(e).__name__}: {e}") from None
    page = 64
    B, H, KH, D = spec.num_seqs, spec.num_heads, spec.num_kv_heads, spec.head_size
    G, Hg = KH, H // KH
    dt = torch_dtype(spec.dtype)
    pages_per_seq = [math.ceil(n / page) for n in spec.seq_lens]
    need = sum(pages_per_seq)
    n = _copies(spec.kv_bytes, min_bytes)
    pool = need * n
    k = torch.randn(1, pool * page, G, 1, D, device="cuda", dtype=dt)
    v = torch.randn(1, pool * page, G, 1, D, device="cuda", dtype=dt)
    kx, vx = k.expand(1, pool * page, G, Hg, D), v.expand(1, pool * page, G, Hg, D)
    q = torch.randn(1, B, G, Hg, D, device="cuda", dtype=dt)
    perm = torch.randperm(pool, generator=torch.Generator().manual_seed(3))
    maxp = max(pages_per_seq)
    biases = []
    for c in range(n):
        ids = perm[c * need:(c + 1) * need].tolist()
        bt = torch.zeros(B, maxp, dtype=torch.int32)
        at = 0
        for b, np_ in enumerate(pages_per_seq):
            bt[b, :np_] = torch.tensor(ids[at:at + np_], dtype=torch.int32)
            at += np_
        biases.append(PagedBlockDiagonalPaddedKeysMask.from_seqlens(
            q_seqlen=[1] * B, kv_seqlen=list(spec.seq_lens), block_tables=bt.cuda(), page_size=page, device="cuda"))
    op = triton_splitk.FwOp
    direct = False
    try:
        from xformers import _has_cpp_library  # type: ignore[attr-defined]
        direct = not _has_cpp_library
    except Exception:
        direct = True
    inps = []
    for bias in biases:
        inp = fmha.Inputs(query=q, key=kx, value=vx, attn_bias=bias)
        inp.validate_inputs()
        inp.normalize_bmhk()
        inps.append(inp)
    if not direct:
        reasons = op.not_supported_reasons(inps[0])
        if reasons:
            raise PeerUnavailable(f"xformers triton_splitk refuses this shape: {'; '.join(reasons)}")
    out = [None]

    def call(i: int) -> Callable[[], None]:
        def run() -> None:
            out[0] = op.apply(inps[i], needs_gradient=False)[0]
        return run
    calls = [call(i) for i in range(n)]
    err = math.nan
    if check:
        calls[0]()
        torch.cuda.synchronize()
        # gather the first copy's pages into contiguous [B, KH, L, D] for the reference
        bt = biases[0].block_tables.long()
        L = spec.max_seq_len
        idx = (bt[:, :, None] * page + torch.arange(page, device="cuda")).reshape(B, -1)[:, :L]
        kc = k[0, :, :, 0][idx].permute(0, 2, 1, 3)
        vc = v[0, :, :, 0][idx].permute(0, 2, 1, 3)
        ref = reference_out(spec, q.reshape(B, H, D), kc, vc)
        got = out[0].reshape(B, H, D).float()
        err = float((got - ref).norm() / ref.norm())
    how = "its Triton operator called directly (C++ extension not loaded on this torch)" if direct else "via fmha"
    return calls, f"xformers {xformers.__version__} triton_splitk, page {page}, {how}, {n} copies", err
