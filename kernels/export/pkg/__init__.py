"""@PKG@: decode kernels tuned by workbench (study @STUDY@, @GPU_NAME@), as torch ops and a vLLM
attention backend. Importing this module loads the compiled ops into torch.ops.@PKG@."""
from .dispatch import BEST, BUCKETS, VARIANTS, pick_variant  # noqa: F401

__all__ = ["decode", "paged_attention_v1", "paged_attention_v2", "pick_variant", "load_ops"]

_loaded = False


def load_ops() -> None:
    """Load the compiled extension (registers torch.ops.@PKG@.*)."""
    global _loaded
    if not _loaded:
        from . import _C  # noqa: F401
        _loaded = True


def decode(out, query, key_cache, value_cache, num_kv_heads, scale, block_tables, seq_lens, max_seq_len):
    """Paged decode attention with the variant the dispatch table picks for (num_seqs, max_seq_len)."""
    import torch
    load_ops()
    v = pick_variant(query.shape[0], int(max_seq_len))
    torch.ops.@PKG@.decode_variant(out, query, key_cache, value_cache, int(num_kv_heads), float(scale),
                                   block_tables, seq_lens, int(max_seq_len), v)
    return out


def paged_attention_v1(*args, **kw):
    """vLLM's old `paged_attention_v1` argument order."""
    import torch
    load_ops()
    return torch.ops.@PKG@.paged_attention_v1(*args, **kw)


def paged_attention_v2(*args, **kw):
    """vLLM's old `paged_attention_v2` argument order (exp_sums, max_logits, tmp_out after out)."""
    import torch
    load_ops()
    return torch.ops.@PKG@.paged_attention_v2(*args, **kw)
