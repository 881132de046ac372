"""Peers on the CPU where they can run there: the FlexAttention paged decode path (eager flex,
one copy: the mask_mod states the page ownership exactly for one copy) against the fp32 reference."""
import pytest

from workbench.bench.peers.common import PeerUnavailable
from workbench.bench.peers.flex import flex_attention
from workbench.measure.workload import WorkloadSpec


@pytest.mark.parametrize("batch,ctx,heads,kv_heads,head", [(3, 64, 8, 2, 64), (2, 160, 4, 4, 64), (1, 48, 8, 1, 128), (2, 256, 8, 2, 64)])
def test_flex_paged_decode_matches_reference(batch, ctx, heads, kv_heads, head):
    pytest.importorskip("torch.nn.attention.flex_attention")
    spec = WorkloadSpec.uniform(batch, ctx, num_heads=heads, num_kv_heads=kv_heads, head_size=head)
    calls, note, err = flex_attention(spec, 0, check=True, device="cpu", copies=1)
    assert len(calls) == 1 and f"page {128 if ctx % 128 == 0 else 16}" in note
    assert err < 1e-2


def test_flex_needs_whole_pages():
    spec = WorkloadSpec(seq_lens=(17, 32), num_heads=8, num_kv_heads=2, head_size=64)
    with pytest.raises(PeerUnavailable, match="whole pages"):
        flex_attention(spec, 0, device="cpu", copies=1)
