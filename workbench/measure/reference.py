"""fp32 reference for paged decode attention (torch, any device)."""
from __future__ import annotations

from typing import Any


def gather_kv(key_cache: Any, value_cache: Any, block_ids: Any, seq_len: int) -> tuple[Any, Any]:
    """One sequence's K and V as [kv_heads, seq_len, head] from the paged layout."""
    nb = block_ids.shape[0]
    kvh, d_over_x, block, x = key_cache.shape[1:]
    k = key_cache[block_ids]                                    # [nb, kvh, D/x, P, x]
    k = k.permute(1, 0, 3, 2, 4).reshape(kvh, nb * block, d_over_x * x)[:, :seq_len]
    v = value_cache[block_ids]                                  # [nb, kvh, D, P]
    v = v.permute(1, 0, 3, 2).reshape(kvh, nb * block, -1)[:, :seq_len]
    return k, v


def reference_decode(query: Any, key_cache: Any, value_cache: Any, block_tables: Any,
                     seq_lens: Any, scale: float, num_kv_heads: int) -> Any:
    """out[s, h] = softmax(scale * q[s, h] . K_s^T) V_s in fp32; returns [num_seqs, num_heads, head]."""
    import torch

    num_seqs, num_heads, head = query.shape
    group = num_heads // num_kv_heads
    block = key_cache.shape[3]
    lens = [int(n) for n in seq_lens.tolist()]
    out = torch.empty(num_seqs, num_heads, head, dtype=torch.float32, device=query.device)
    for s, n in enumerate(lens):
        if n == 0:                         # an empty (padding) sequence attends to nothing: zeros
            out[s] = 0.0
            continue
        nb = -(-n // block)
        k, v = gather_kv(key_cache, value_cache, block_tables[s, :nb].long(), n)
        k, v = k.float(), v.float()
        q = query[s].float().view(num_kv_heads, group, head)
        scores = torch.einsum("kgd,ktd->kgt", q, k) * scale
        p = torch.softmax(scores, dim=-1)
        out[s] = torch.einsum("kgt,ktd->kgd", p, v).reshape(num_heads, head)
    return out


def relative_error(out: Any, ref: Any) -> float:
    """||out - ref|| / ||ref|| in fp32; NaN anywhere gives NaN."""
    o, r = out.double(), ref.double()
    return float((o - r).norm() / r.norm())
