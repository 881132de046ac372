"""Named variants: vLLM 0.10.2's own kernel (`baseline`, `paper` = + the L2 prefetch; measured beside
a study for the paper's story, never searched) and our kernel in vLLM's decomposition (`simple`,
`simple-pf`: search seeds)."""
from __future__ import annotations

from workbench.kernel.variant import PARTITION_VLLM, Variant


from workbench.errors import WorkbenchError


def simple(head_size: int = 128, block_size: int = 16, dtype: str = "bf16") -> Variant:
    """Our kernel in vLLM's decomposition: 1 query head per CTA, 128 threads, no prefetch, v1/v2 rule.
    (Faster than vLLM's own kernel on GQA, so it is a search seed, not the reference.)"""
    return Variant(head_size=head_size, block_size=block_size, dtype=dtype, threads=128,
                   heads_per_cta=1, partition=PARTITION_VLLM)


def simple_pf(head_size: int = 128, block_size: int = 16, dtype: str = "bf16") -> Variant:
    """`simple` + the paper's change: bulk L2 prefetch of the K and V tiles one tile ahead."""
    return simple(head_size, block_size, dtype).with_(
        prefetch_distance=1, prefetch_target="kv", prefetch_op="bulk", prefetch_hint="none")


def baseline(head_size: int = 128, block_size: int = 16, dtype: str = "bf16") -> Variant:
    """The reference every speedup is quoted against: vLLM 0.10.2's own paged-attention kernel
    (v1/v2 rule), compiled from its sha256-pinned source (fetched, never shipped)."""
    return simple(head_size, block_size, dtype).with_(algorithm="vllm")


def paper(head_size: int = 128, block_size: int = 16, dtype: str = "bf16") -> Variant:
    """The paper's variant: vLLM's own kernel with the K and V bulk L2 prefetch one tile ahead."""
    return simple_pf(head_size, block_size, dtype).with_(algorithm="vllm")


NAMED = {"baseline": baseline, "paper": paper, "simple": simple, "simple-pf": simple_pf}


REFERENCES = ("baseline", "paper")     # vLLM's own kernel: measured beside a study, never searched


def named(name: str, head_size: int = 128, block_size: int = 16, dtype: str = "bf16") -> Variant:
    if name in NAMED:
        return NAMED[name](head_size, block_size, dtype)
    raise WorkbenchError(f"unknown named variant {name!r}: use {', '.join(NAMED)}")
