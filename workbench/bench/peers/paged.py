"""Our kernel's paged KV, handed to a peer in the peer's own layout (pure torch, any device).

Peers must read the same bytes our kernel reads when it is timed: `our_kv` rebuilds exactly the
workload `time_variant` builds for the shape (`build_rotation(spec, device, min_bytes)`: same seed,
same pool size, so the same q, K/V values, seq_lens and scattered block tables of every rotation
copy) and re-lays its pages out:
  vLLM (ours)  K [pages, KH, D/x, P, x]   V [pages, KH, D, P]
  NHD          K, V [pages, P, KH, D]      (FA3, FlashInfer)
  HND          K, V [pages, KH, P, D]      (XQA)
  NHD-packed   one [pages, P, KH, 2D] tensor, K the first D of each row, V the last: the cache vLLM
               0.26 and 0.33 allocate for FLASH_ATTN (get_kv_cache_shape (pages, KH, P, 2D) in NHD
               stride order, split into K and V views), so FA3 reads K and V interleaved per token
Page ids are unchanged, so each copy's block table indexes the peer's pages as it does ours.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from workbench.measure.workload import WorkloadSpec

LAYOUTS = ("NHD", "HND")
PACKED = "NHD-packed"          # our_kv only: K and V as views of one packed tensor (NHD-shaped)


def _check(layout: str) -> None:
    if layout not in LAYOUTS:
        raise ValueError(f"layout {layout!r}: choose from {LAYOUTS}")


def _fresh(shape: tuple[int, ...], like: Any) -> Any:
    # torch.empty gives canonical strides even on size-1 dims (KH = 1 under TP): FA3 and XQA read
    # pages through TMA, which rejects a 2-byte stride that .contiguous() may leave on such a dim
    import torch
    return torch.empty(shape, dtype=like.dtype, device=like.device)


def key_pages(key_cache: Any, layout: str) -> Any:
    """vLLM's K [N, KH, D/x, P, x] as NHD [N, P, KH, D] or HND [N, KH, P, D]. Copied through a
    5-D view of the destination, so no pool-sized temporary is made."""
    _check(layout)
    n, kh, dx, p, x = key_cache.shape
    if layout == "NHD":
        out = _fresh((n, p, kh, dx * x), key_cache)
        out.view(n, p, kh, dx, x).copy_(key_cache.permute(0, 3, 1, 2, 4))
    else:
        out = _fresh((n, kh, p, dx * x), key_cache)
        out.view(n, kh, p, dx, x).copy_(key_cache.permute(0, 1, 3, 2, 4))
    return out


def value_pages(value_cache: Any, layout: str) -> Any:
    """vLLM's V [N, KH, D, P] as NHD [N, P, KH, D] or HND [N, KH, P, D]."""
    _check(layout)
    n, kh, d, p = value_cache.shape
    out = _fresh((n, p, kh, d) if layout == "NHD" else (n, kh, p, d), value_cache)
    out.copy_(value_cache.permute(0, 3, 1, 2) if layout == "NHD" else value_cache.permute(0, 1, 3, 2))
    return out


def packed_pages(key_cache: Any, value_cache: Any) -> tuple[Any, Any]:
    """vLLM's K [N, KH, D/x, P, x] and V [N, KH, D, P] as one NHD-packed tensor [N, P, KH, 2D]
    (FLASH_ATTN's cache in vLLM 0.26 / 0.33); returns its K and V views, each [N, P, KH, D] with
    the packed strides (a token's row of one head is 2D long), as FlashAttentionImpl splits it."""
    n, kh, dx, p, x = key_cache.shape
    d = dx * x
    kv = _fresh((n, p, kh, 2 * d), key_cache)
    kv[..., :d].unflatten(-1, (dx, x)).copy_(key_cache.permute(0, 3, 1, 2, 4))
    kv[..., d:].copy_(value_cache.permute(0, 3, 1, 2))
    return _canonical_unit_strides(kv[..., :d]), _canonical_unit_strides(kv[..., d:])


def _canonical_unit_strides(t: Any) -> Any:
    """A size-1 dim's stride set to what a contiguous tensor would have there (KH = 1 under TP),
    as vLLM does to its cache views before FA3: TMA rejects odd strides even on size-1 dims."""
    strides, inner = list(t.stride()), 1
    for i in range(t.dim() - 1, -1, -1):
        if t.shape[i] == 1:
            strides[i] = inner
        inner = strides[i] * t.shape[i]
    return t.as_strided(t.shape, strides) if strides != list(t.stride()) else t


def gather_pages(pages: Any, block_ids: Any, seq_len: int, layout: str) -> Any:
    """One sequence's K or V as [KH, seq_len, D] from NHD / HND pages (tests, fake peers); the
    views of NHD-packed pages are NHD-shaped."""
    layout = "NHD" if layout == PACKED else layout
    _check(layout)
    g = pages[block_ids.long()]
    g = g.permute(2, 0, 1, 3) if layout == "NHD" else g.permute(1, 0, 2, 3)   # [KH, nb, P, D]
    return g.reshape(g.shape[0], -1, g.shape[-1])[:, :seq_len]


def csr_pages(block_table: Any, seq_lens: Any, page: int) -> tuple[Any, Any, Any]:
    """FlashInfer's page lists from a block table: indptr [B+1], indices [sum pages] (each
    sequence's pages in order), last_page_len [B] in 1..page; int32, on the table's device."""
    import torch
    lens = torch.as_tensor(seq_lens, dtype=torch.int64).to(block_table.device)
    npages = (lens + page - 1) // page
    indptr = torch.zeros(len(lens) + 1, dtype=torch.int32, device=block_table.device)
    indptr[1:] = torch.cumsum(npages, 0).to(torch.int32)
    cols = torch.arange(block_table.shape[1], device=block_table.device)
    indices = block_table[cols[None, :] < npages[:, None]].to(torch.int32)  # row-major: sequence by sequence
    last = (lens - (npages - 1) * page).to(torch.int32)
    return indptr, indices.contiguous(), last


@dataclass
class PeerKV:
    """Our timed workload for one shape, pages in a peer's layout."""
    q: Any              # [B, H, D]
    k: Any              # pages in `layout`
    v: Any
    tables: list[Any]   # int32 [B, max pages] per rotation copy (disjoint, scattered pages)
    seq_lens: Any       # int32 [B]
    scale: float
    layout: str
    ref: Any = None     # fp32 reference output of copy 0, [B, H, D] (when checked)

    @property
    def copies(self) -> int:
        return len(self.tables)


def our_kv(spec: WorkloadSpec, min_bytes: int, layout: str, check: bool, device: Any = "cuda") -> PeerKV:
    """The workload our kernel is timed on (see the module doc), re-laid out in `layout`; with
    `check`, the fp32 reference of copy 0 computed on *our* layout first, so a peer's check also
    covers the conversion."""
    from workbench.measure.reference import reference_decode
    from workbench.measure.workload import build_rotation
    w, tables = build_rotation(spec, device, min_bytes)
    ref = reference_decode(w.query, w.key_cache, w.value_cache, tables[0], w.seq_lens, w.scale,
                           spec.num_kv_heads) if check else None
    if layout == PACKED:              # one tensor for both: the peak is both pools, twice
        k, v = packed_pages(w.key_cache, w.value_cache)
        w.key_cache = w.value_cache = None
        return PeerKV(q=w.query, k=k, v=v, tables=tables, seq_lens=w.seq_lens, scale=w.scale, layout=layout, ref=ref)
    # one pool in each layout would double the peak at 9 GB of KV: K is freed before V is copied
    k = key_pages(w.key_cache, layout)
    w.key_cache = None
    v = value_pages(w.value_cache, layout)
    w.value_cache = None
    return PeerKV(q=w.query, k=k, v=v, tables=tables, seq_lens=w.seq_lens, scale=w.scale, layout=layout, ref=ref)
