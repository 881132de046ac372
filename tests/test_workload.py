import pytest
import torch

from workbench.errors import WorkbenchError
from workbench.measure.workload import WorkloadSpec, build_workload


def test_block_tables_distinct_seeded_and_padded_with_nan():
    spec = WorkloadSpec(seq_lens=(1, 16, 17, 100), num_heads=8, num_kv_heads=2, head_size=64, num_blocks=64, seed=7)
    a, b = build_workload(spec), build_workload(spec)
    assert torch.equal(a.block_tables, b.block_tables) and torch.equal(a.query, b.query)
    used = [int(a.block_tables[i, j]) for i, n in enumerate(spec.blocks_per_seq) for j in range(n)]
    assert len(used) == len(set(used)) == spec.blocks_needed == 1 + 1 + 2 + 7
    assert all(0 <= u < 64 for u in used)
    assert a.block_tables.dtype == torch.int32 and a.seq_lens.tolist() == [1, 16, 17, 100]
    assert a.key_cache.shape == (64, 2, 8, 16, 8) and a.value_cache.shape == (64, 2, 64, 16)
    last = int(a.block_tables[2, 1])                       # seq of 17: slot 1.. of its 2nd block
    assert torch.isnan(a.value_cache[last, :, :, 1:]).all() and not torch.isnan(a.value_cache[last, :, :, 0]).any()
    assert (a.query != 0).float().mean() > 0.99            # never zeros
    c = build_workload(WorkloadSpec(**{**spec.to_dict(), "seed": 8}))
    assert not torch.equal(a.block_tables, c.block_tables)


def test_kv_bytes_and_labels():
    s = WorkloadSpec.uniform(8, 4096)
    assert s.kv_bytes == 8 * 4096 * 8 * 128 * 2 * 2 == 128 * 2**20
    assert s.label.startswith("b8x4096 h32/8 d128")
    assert WorkloadSpec.from_dict(s.to_dict()) == s


def test_contiguous_pages_in_order_per_copy_and_scattered_unchanged():
    """pages="contiguous" (bench --pages): each sequence's blocks are consecutive ids, sequence
    after sequence, and each rotation copy takes the next run of ids (disjoint copies); the
    default stays scattered and out of to_dict (saved specs read the same)."""
    from workbench.measure.workload import build_rotation
    lens = (1, 16, 17, 100)
    spec = WorkloadSpec(seq_lens=lens, num_heads=8, num_kv_heads=2, head_size=64, pages="contiguous")
    assert spec.to_dict()["pages"] == "contiguous" and WorkloadSpec.from_dict(spec.to_dict()) == spec
    assert spec.label.endswith(" contiguous")
    w, tables = build_rotation(spec, "cpu", 40 * spec.blocks_needed * spec.block_bytes)
    assert len(tables) == 40
    need = spec.blocks_needed
    for c, t in enumerate(tables):
        used = [int(t[i, j]) for i, n in enumerate(spec.blocks_per_seq) for j in range(n)]
        assert used == list(range(c * need, (c + 1) * need)), c
    assert w.key_cache.shape[0] == 40 * need
    t0 = build_workload(spec).block_tables
    assert [int(t0[i, j]) for i, n in enumerate(spec.blocks_per_seq) for j in range(n)] == list(range(need))
    plain = WorkloadSpec(seq_lens=lens, num_heads=8, num_kv_heads=2, head_size=64)
    assert "pages" not in plain.to_dict() and not plain.label.endswith("contiguous")
    _, scattered = build_rotation(plain, "cpu", 40 * need * plain.block_bytes)
    ids = [int(x) for x in scattered[0][3, :7]]
    assert ids != sorted(ids)                               # random over the pool, as before


def test_new_tokens_are_each_sequences_last_token_as_cached():
    """bench --fused-write hands each launch the step's new tokens (measure.workload.new_tokens): the
    last token of every sequence, K and V as the cache holds them, at its slot; -1 for an empty one."""
    from workbench.measure.workload import build_rotation, new_tokens
    spec = WorkloadSpec(seq_lens=(1, 16, 17, 0, 100), num_heads=8, num_kv_heads=2, head_size=64, seed=3)
    w, tables = build_rotation(spec, "cpu", 6 * spec.blocks_needed * spec.block_bytes)
    for t in tables[:2]:
        k_new, v_new, slots = new_tokens(w, t)
        assert slots.dtype == torch.int64 and k_new.shape == v_new.shape == (5, 2, 64)
        for i, n in enumerate(spec.seq_lens):
            if n == 0:
                assert slots[i] == -1
                continue
            blk, off = int(t[i, (n - 1) // 16]), (n - 1) % 16
            assert int(slots[i]) == blk * 16 + off
            assert torch.equal(k_new[i], w.key_cache[blk, :, :, off, :].reshape(2, 64))
            assert torch.equal(v_new[i], w.value_cache[blk, :, :, off])
            assert not torch.isnan(k_new[i]).any()          # the last token is real, not padding
    assert not torch.equal(new_tokens(w, tables[0])[2], new_tokens(w, tables[1])[2])   # each copy its own slots


@pytest.mark.parametrize("kw", [dict(seq_lens=()), dict(seq_lens=(0,)), dict(seq_lens=(4,), num_heads=6, num_kv_heads=4),
                                dict(seq_lens=(4,), head_size=100), dict(seq_lens=(40,), num_blocks=1),
                                dict(seq_lens=(4,), pages="sorted")])
def test_bad_specs(kw):
    with pytest.raises(WorkbenchError):
        WorkloadSpec(**kw)


def test_heads_from_text_profiles_and_bare_counts():
    from workbench.config.profiles import heads_from_text
    h = heads_from_text("llama-3.1-70b:8")
    assert (h.num_heads, h.num_kv_heads, h.head_size, h.tp) == (8, 1, 128, 8)
    h = heads_from_text("qwen2.5-7b")
    assert (h.num_heads, h.num_kv_heads) == (28, 4)
    h = heads_from_text("16/4")
    assert (h.num_heads, h.num_kv_heads, h.head_size, h.group) == (16, 4, 128, 4)
    assert heads_from_text("32/8/256").head_size == 256
    for bad in ("30/4", "16/4/100", "a/b", "16/4/128/1", "llama-3.1-8b:x", "0/1"):
        with pytest.raises(WorkbenchError):
            heads_from_text(bad)
