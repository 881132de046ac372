"""bench.peers.flex (split from peers.py)."""
from __future__ import annotations

from workbench.bench.peers.common import PeerUnavailable, _copies, reference_out

import math
from typing import Any, Callable

from workbench.measure.workload import WorkloadSpec, torch_dtype


_FLEX: dict[str, Any] = {}


FLEX_PAGE = 128


def _compiled_flex() -> Any:
    """One torch.compile'd flex_attention per process (recompiles per shape are torch's)."""
    if "fn" not in _FLEX:
        import torch
        from torch.nn.attention.flex_attention import flex_attention as fa
        _FLEX["fn"] = torch.compile(fa, dynamic=False)
    return _FLEX["fn"]


def flex_attention(spec: WorkloadSpec, min_bytes: int, check: bool = True, device: str = "cuda",
                   copies: int | None = None) -> tuple[list[Callable[[], None]], str, float]:
    """FlexAttention paged decode: one [1, KH, pages*page, D] pool per K and V, and per sequence a
    block mask whose KV blocks are its *physical* pages (what torch's paged-attention helper builds),
    all marked full, so no mask_mod runs in the kernel. Sequence lengths must fill whole pages (the
    bench suites do); q [B, H, 1, D] against the batch-1 pool, enable_gqa."""
    import torch
    try:
        from torch.nn.attention.flex_attention import BlockMask
    except Exception as e:
        raise PeerUnavailable(f"FlexAttention unavailable on torch {torch.__version__}: {type(e).__name__}: {e}") from None
    # flex's default sparse block is 128 tokens, and torch's BlockMask handling still builds maps
    # that grow as batch x pages^2 (a 1 GB pool of 16-token pages asks for 128+ GiB): page 128
    # when the lengths allow, the cache block size otherwise
    page = FLEX_PAGE if all(n % FLEX_PAGE == 0 for n in spec.seq_lens) else spec.block_size
    if any(n % page for n in spec.seq_lens):
        raise PeerUnavailable(f"flex peer needs lengths that fill whole pages of {page} (no mask_mod in the timed path)")
    B, H, KH, D = spec.num_seqs, spec.num_heads, spec.num_kv_heads, spec.head_size
    dt = torch_dtype(spec.dtype)
    pages_per_seq = [n // page for n in spec.seq_lens]
    need, maxp = sum(pages_per_seq), max(pages_per_seq)
    n = copies or _copies(spec.kv_bytes, min_bytes)
    pool = need * n
    k = torch.randn(1, KH, pool * page, D, device=device, dtype=dt)
    v = torch.randn(1, KH, pool * page, D, device=device, dtype=dt)
    q = torch.randn(B, H, 1, D, device=device, dtype=dt)
    perm = torch.randperm(pool, generator=torch.Generator().manual_seed(5))
    counts = torch.tensor(pages_per_seq, dtype=torch.int32, device=device).view(B, 1, 1)
    # Every listed block is "full": the compiled kernel visits exactly the listed pages and never
    # evaluates mask_mod. mask_mod states the same rule for eager flex (a token is visible to
    # sequence b iff its page belongs to b); one owner table for all copies avoids recompiles, so
    # it is exact for one copy only, which is fine because the timed and checked path is compiled.
    owner = torch.full((pool,), -1, dtype=torch.int32)
    masks, tables = [], []
    for c in range(n):
        ids = perm[c * need:(c + 1) * need]
        bt = torch.zeros(B, maxp, dtype=torch.int32)
        at = 0
        for b, np_ in enumerate(pages_per_seq):
            bt[b, :np_] = ids[at:at + np_].to(torch.int32)
            owner[bt[b, :np_].long()] = b
            at += np_
        tables.append(bt)
        # columns = pool pages, as torch's paged helper does: indices are physical page numbers
        idx = torch.zeros(B, 1, 1, pool, dtype=torch.int32)
        idx[:, 0, 0, :maxp] = bt
        idx = idx.to(device)
        masks.append((counts, idx))
    owner = owner.to(device)

    def same_seq(b: Any, h: Any, q_idx: Any, kv_idx: Any) -> Any:
        return owner[kv_idx // page] == b
    # compute_q_blocks=False: the transposed (backward) indices would be a dense pages x pages map
    masks = [BlockMask.from_kv_blocks(torch.zeros_like(c), torch.zeros_like(i), c, i, BLOCK_SIZE=page,
                                      mask_mod=same_seq, seq_lengths=(1, pool * page), compute_q_blocks=False)
             for c, i in masks]
    fa = _compiled_flex() if device != "cpu" else None
    if fa is None:                                    # tests: eager flex on the CPU
        from torch.nn.attention.flex_attention import flex_attention as fa
    out = [None]

    def call(i: int) -> Callable[[], None]:
        def run() -> None:
            out[0] = fa(q, k, v, block_mask=masks[i], enable_gqa=True)
        return run
    calls = [call(i) for i in range(n)]
    err = math.nan
    if check:
        calls[0]()
        if device != "cpu":
            torch.cuda.synchronize()
        L = spec.max_seq_len
        tok = (tables[0].to(device).long()[:, :, None] * page + torch.arange(page, device=device)).reshape(B, -1)[:, :L]
        kc = k[0][:, tok].permute(1, 0, 2, 3)            # [B, KH, L, D]
        vc = v[0][:, tok].permute(1, 0, 2, 3)
        ref = reference_out(spec, q.reshape(B, H, D), kc, vc)
        err = float((out[0].reshape(B, H, D).float() - ref).norm() / ref.norm())
    return calls, (f"torch {torch.__version__} flex_attention (torch.compile), paged through a physical-page "
                   f"block mask, page {page}, {n} copies"), err
