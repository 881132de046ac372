"""What users would run instead, on the same decode shape, each as a list of calls over rotating
copies of its own KV (≥ 4× L2, so every launch reads cold): torch SDPA on contiguous KV (no
paging), xformers' Triton split-k paged decode (page size 64), FlexAttention. Each builder
returns (calls, note) or raises PeerUnavailable with the reason."""
from __future__ import annotations

import math
from typing import Any, Callable

from .workload import WorkloadSpec, torch_dtype


class PeerUnavailable(Exception):
    """This peer cannot run here (missing package, unsupported shape...): the reason is shown."""


def _copies(kv_bytes: int, min_bytes: int) -> int:
    return max(2, math.ceil(min_bytes / max(1, kv_bytes)))


def reference_out(spec: WorkloadSpec, q: Any, k: Any, v: Any) -> Any:
    """fp32 SDPA of one batch of contiguous q [B,H,D], k/v [B,KH,L,D] (uniform lengths)."""
    import torch
    qq = q.float().unsqueeze(2)
    return torch.nn.functional.scaled_dot_product_attention(qq, k.float(), v.float(), enable_gqa=True).squeeze(2)


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


PEERS: dict[str, Callable[..., tuple[list[Callable[[], None]], str, float]]] = {
    "sdpa": sdpa, "xformers": xformers_splitk, "flex": flex_attention}
