"""@PKG@: decode kernels tuned by workbench (study @STUDY@, @GPU_NAME@), as torch ops and a vLLM
attention backend. Importing this module loads no extension; the ops are loaded into
torch.ops.@PKG@ on first use (load_ops), so the package imports on a machine without a GPU."""
import json
import math
from functools import lru_cache
from pathlib import Path

from .dispatch import BEST, BUCKETS, GRAPH_BUCKETS, VARIANTS, pick_graph_variant, pick_variant  # noqa: F401

__all__ = ["decode", "paged_attention_v1", "paged_attention_v2", "pick_variant", "pick_graph_variant", "load_ops",
           "split_parts",
           "launch_parts", "workspace_floats", "plan", "schedule_ints", "scheduled", "is_scheduled"]

_loaded = False


def load_ops() -> None:
    """Load the compiled extension (registers torch.ops.@PKG@.*)."""
    global _loaded
    if not _loaded:
        from . import _C  # noqa: F401
        _loaded = True


@lru_cache(maxsize=1)
def _variant_docs() -> tuple:
    """Each variant's knobs, by index (dispatch.json, read once)."""
    return tuple(json.loads(Path(__file__).with_name("dispatch.json").read_text())["variants_by_index"])


@lru_cache(maxsize=1)
def _variants() -> tuple:
    """(partition knob, query heads per CTA) of each variant, by index."""
    return tuple((int(v["partition"]), int(v["heads_per_cta"])) for v in _variant_docs())


AUTO_MIN_TOKENS = 256       # auto partitions (knob -2) are never shorter (launch.cuh, wb_auto_tokens)


def split_parts(variant: int, num_seqs: int, num_heads: int, max_seq_len: int) -> int:
    """Split-K partitions one launch of `variant` makes (0: whole sequence), as its launcher
    (launch.cuh) decides: the partition knob, vLLM's v1/v2 rule for -1, and for auto (-2) a bound:
    auto picks partitions of at least AUTO_MIN_TOKENS tokens, or as long as shared memory holds,
    which tuning checked to be at least that many (the exact count depends on the grid and the
    device: the op asks the launcher for it)."""
    partition = _variants()[variant][0]
    if partition > 0:
        return math.ceil(max_seq_len / partition)
    if partition == 0:
        return 0
    if partition == -2:
        return math.ceil(max_seq_len / AUTO_MIN_TOKENS)
    parts = math.ceil(max_seq_len / 512)
    return 0 if max_seq_len <= 8192 and (parts == 1 or num_seqs * num_heads > 512) else parts


def launch_parts(num_seqs: int, num_heads: int, num_kv_heads: int, max_seq_len: int, variant: int = -1) -> int:
    """The most split-K partitions the op may use for this launch: the variant's own, or, for a
    whole-sequence launch, those of the split variant it falls back to when the sequence does not
    fit shared memory (ops.cpp fallback_split: the table's long-context pick, else the first)."""
    v = pick_variant(num_seqs, max_seq_len) if variant < 0 else variant
    own = split_parts(v, num_seqs, num_heads, max_seq_len)
    if own:
        return own
    group = num_heads // max(num_kv_heads, 1)
    for c in (pick_variant(num_seqs, 2**31 - 1), *range(len(_variants()))):
        if c != v and _variants()[c][1] < 2 * group:      # padded CTAs (GQA 7 as 8) run too
            parts = split_parts(c, num_seqs, num_heads, max_seq_len)
            if parts:
                return parts
    return 0


def workspace_rows(rows: int, num_heads: int, num_kv_heads: int, max_seq_len: int) -> int:
    """max over launches of up to `rows` sequences and max_seq_len tokens (the dispatch table's
    picks, fallbacks included) of num_seqs * num_heads * partitions. The picks are constant on
    cells bounded by the buckets' edges (and vLLM's rule's: 512 and 8192 tokens, 512 (seq, head)
    pairs), and the count grows with both num_seqs and max_seq_len inside a cell: its upper corner
    is its maximum, so only the cells' upper corners are evaluated."""
    if rows <= 0 or max_seq_len <= 0:
        return 0
    ns = {rows, 512 // max(num_heads, 1)} | {b[1] - 1 for b in BUCKETS if b[1]} | {b[0] - 1 for b in BUCKETS}
    ls = {max_seq_len, 512, 8192} | {b[3] - 1 for b in BUCKETS if b[3]} | {b[2] - 1 for b in BUCKETS}
    ns = sorted(n for n in ns | {b[1] - 1 for b in GRAPH_BUCKETS if b[1]} if 1 <= n <= rows)
    ls = sorted(L for L in ls if 1 <= L <= max_seq_len)
    eager = max(n * num_heads * launch_parts(n, num_heads, num_kv_heads, L) for n in ns for L in ls)
    # the captured launches, bounded at max_seq_len with their batch row's graph pick
    graph = max(n * num_heads * launch_parts(n, num_heads, num_kv_heads, max_seq_len,
                                             pick_graph_variant(n, max_seq_len)) for n in ns)
    return max(eager, graph)


def workspace_floats(rows: int, num_heads: int, num_kv_heads: int, max_seq_len: int, head_size: int) -> int:
    """fp32 elements of a flat split-K workspace that serves every launch of up to `rows` sequences
    of up to max_seq_len tokens without allocating: exp_sums | max_logits | tmp_out, each 16-byte
    aligned (the layout ops.cpp slices it into)."""
    n = workspace_rows(rows, num_heads, num_kv_heads, max_seq_len)
    a4 = (n + 3) // 4 * 4
    return 2 * a4 + n * head_size


@lru_cache(maxsize=1)
def scheduled() -> bool:
    """Whether the package was exported with the schedule (the default; not with --no-graph-sched
    or --graph-walk): its captured decode launches run a schedule that plan() writes each step."""
    return any(v.get("graph_sched") for v in _variant_docs())


def schedule_ints(rows: int, max_seq_len: int) -> int:
    """int32s of a schedule buffer that serves every scheduled launch of up to `rows` sequences
    bounded at max_seq_len (header, an item per partition of at least 64 tokens, a slot's worth
    of sentinels: launch.cuh wb_sched_shape)."""
    return 4 + 8 * rows * math.ceil(max_seq_len / 64)


def is_scheduled(num_seqs, num_heads, num_kv_heads, max_seq_len, variant) -> bool:
    """Whether the captured decode launch of `num_seqs` sequences bounded at max_seq_len with
    `variant` runs a schedule (exported with it, the default; where its grid for the bound is more than 8 waves,
    for 2+ sequences of at most 4 CTAs each, or where whole sequences fill half to one wave: onepass)."""
    import torch
    load_ops()
    return bool(torch.ops.@PKG@.is_scheduled(int(num_seqs), int(num_heads), int(num_kv_heads), int(max_seq_len),
                                             int(variant)))


def plan(schedule, seq_lens, num_seqs, num_heads, num_kv_heads, max_seq_len, variant):
    """Plan the step's schedule for the captured decode launch of `num_seqs` sequences (the padded
    batch) bounded at max_seq_len with `variant`, from the real lengths `seq_lens` (one small kernel;
    a no-op unless the package was exported with the schedule and that launch is scheduled). The
    vLLM backend calls it once per decode step, before the graph replays."""
    import torch
    load_ops()
    torch.ops.@PKG@.plan_schedule(schedule, seq_lens, int(num_seqs), int(num_heads), int(num_kv_heads),
                                  int(max_seq_len), int(variant))


def decode(out, query, key_cache, value_cache, num_kv_heads, scale, block_tables, seq_lens, max_seq_len,
           variant=None, workspace=None, counters=None, per_seq_split=False, schedule=None, kv_new=None):
    """Paged decode attention. variant None: the dispatch table's pick for (num_seqs, max_seq_len).
    max_seq_len bounds the launch; each sequence's length is read on the device from seq_lens.
    per_seq_split (auto-split variants): each sequence splits by its own length on the device, not
    by max_seq_len: for a launch bounded far above the lengths, as in a CUDA graph captured at
    max_model_len (the vLLM backend sets it for captured batches).
    workspace (flat fp32, workspace_floats long) and counters (zeroed int32, num_seqs * num_heads)
    are optional: pass them to launch without allocating (e.g. under CUDA-graph capture).
    kv_new = (k_new, v_new, slot_mapping): the step's KV-cache write fused into the launch: each
    sequence's new K and V [num_seqs, num_kv_heads, head], written at slot_mapping[seq] (int64; < 0:
    none) by the CTAs that read that block, before they read it (vLLM's forward_includes_kv_cache_update)."""
    import torch
    load_ops()
    v = pick_variant(query.shape[0], int(max_seq_len)) if variant is None or variant < 0 else int(variant)
    torch.ops.@PKG@.decode_variant(out, query, key_cache, value_cache, int(num_kv_heads), float(scale),
                                   block_tables, seq_lens, int(max_seq_len), v, workspace, counters,
                                   bool(per_seq_split), schedule, *(kv_new or (None, None, None)))
    return out


def paged_attention_v1(*args, **kw):
    """vLLM's old `paged_attention_v1` argument order."""
    import torch
    load_ops()
    return torch.ops.@PKG@.paged_attention_v1(*args, **kw)


def paged_attention_v2(*args, **kw):
    """vLLM's old `paged_attention_v2` argument order (exp_sums, max_logits, tmp_out after out;
    tmp_out may be in the output dtype, as vLLM allocated it: the op then uses an fp32 one)."""
    import torch
    load_ops()
    return torch.ops.@PKG@.paged_attention_v2(*args, **kw)
