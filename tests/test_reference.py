"""The fp32 reference against a naive per-token loop that reads the paged layout element-wise."""
import math

import pytest
import torch

from workbench.measure.reference import reference_decode, relative_error
from workbench.measure.workload import WorkloadSpec, build_workload


def naive(w):
    s = w.spec
    P, D, G = s.block_size, s.head_size, s.group
    x = 16 // 2
    out = torch.zeros(s.num_seqs, s.num_heads, D, dtype=torch.float64)
    for i, n in enumerate(s.seq_lens):
        for h in range(s.num_heads):
            kvh = h // G
            q = w.query[i, h].double()
            logits, vals = [], []
            for t in range(n):
                blk = int(w.block_tables[i, t // P])
                off = t % P
                k = torch.stack([w.key_cache[blk, kvh, d // x, off, d % x] for d in range(D)]).double()
                logits.append(float(q @ k) * w.scale)
                vals.append(w.value_cache[blk, kvh, :, off].double())
            m = max(logits)
            e = [math.exp(l - m) for l in logits]
            tot = sum(e)
            out[i, h] = sum(ei / tot * v for ei, v in zip(e, vals))
    return out


@pytest.mark.parametrize("spec", [
    WorkloadSpec(seq_lens=(1, 17, 40), num_heads=4, num_kv_heads=2, head_size=64, block_size=16, num_blocks=12),
    WorkloadSpec(seq_lens=(33,), num_heads=7, num_kv_heads=1, head_size=80, block_size=32, dtype="fp16"),
    WorkloadSpec(seq_lens=(5, 64), num_heads=3, num_kv_heads=3, head_size=64, block_size=32, seed=3),
])
def test_reference_matches_naive_loop(spec):
    w = build_workload(spec)
    ref = reference_decode(w.query, w.key_cache, w.value_cache, w.block_tables, w.seq_lens, w.scale,
                           spec.num_kv_heads)
    assert not torch.isnan(ref).any(), "NaN padding leaked into the reference"
    assert relative_error(ref, naive(w)) < 1e-5


def test_relative_error_sees_nan():
    a = torch.ones(4)
    b = a.clone()
    b[1] = float("nan")
    assert math.isnan(relative_error(b, a))
    assert relative_error(a * 1.01, a) == pytest.approx(0.01, rel=1e-6)
