"""Workloads: a JSON-serializable spec of a decode batch, and the paged tensors built from it.

KV blocks are drawn at random (seeded) from a pool, distinct across the batch, as a serving
engine's allocator would leave them after a while (`pages="scattered"`, the default), or handed out
in order, each sequence's blocks one after another (`pages="contiguous"`), as a fresh engine's
allocator leaves a batch whose prompts were admitted together (what `workbench e2e` runs).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from workbench.errors import WorkbenchError
from workbench.kernel.variant import BLOCK_SIZES, DTYPES, HEAD_SIZES


# scattered: random distinct ids over the pool; contiguous: in order, sequence after sequence
PAGE_ORDERS = ("scattered", "contiguous")


@dataclass(frozen=True)
class WorkloadSpec:
    seq_lens: tuple[int, ...]
    num_heads: int = 32
    num_kv_heads: int = 8
    head_size: int = 128
    block_size: int = 16
    dtype: str = "bf16"
    num_blocks: int = 0          # pool size; 0 = just what the batch needs
    seed: int = 0
    pages: str = "scattered"     # block ids: PAGE_ORDERS

    def __post_init__(self) -> None:
        object.__setattr__(self, "seq_lens", tuple(int(x) for x in self.seq_lens))
        # length 0 is allowed: vLLM pads CUDA-graph batches with empty sequences
        if not self.seq_lens or min(self.seq_lens) < 0 or max(self.seq_lens) < 1:
            raise WorkbenchError("a workload needs at least one sequence of length >= 1 (and none negative)")
        if self.num_kv_heads < 1 or self.num_heads % self.num_kv_heads:
            raise WorkbenchError(f"num_heads {self.num_heads} must be a multiple of num_kv_heads {self.num_kv_heads}")
        if self.head_size not in HEAD_SIZES:
            raise WorkbenchError(f"head size {self.head_size} unsupported; supported: {HEAD_SIZES}")
        if self.block_size not in BLOCK_SIZES:
            raise WorkbenchError(f"block size {self.block_size} unsupported; supported: {BLOCK_SIZES}")
        if self.dtype not in DTYPES:
            raise WorkbenchError(f"dtype {self.dtype!r} unsupported; supported: {DTYPES}")
        if self.pages not in PAGE_ORDERS:
            raise WorkbenchError(f"page order {self.pages!r} unknown; choose from {', '.join(PAGE_ORDERS)}")
        if self.num_blocks and self.num_blocks < self.blocks_needed:
            raise WorkbenchError(f"pool of {self.num_blocks} blocks is smaller than the "
                                 f"{self.blocks_needed} the batch needs")

    @classmethod
    def uniform(cls, batch: int, context: int, **kw: Any) -> "WorkloadSpec":
        return cls(seq_lens=(context,) * batch, **kw)

    @property
    def num_seqs(self) -> int:
        return len(self.seq_lens)

    @property
    def group(self) -> int:
        return self.num_heads // self.num_kv_heads

    @property
    def max_seq_len(self) -> int:
        return max(self.seq_lens)

    @property
    def blocks_per_seq(self) -> tuple[int, ...]:
        return tuple(math.ceil(n / self.block_size) for n in self.seq_lens)

    @property
    def blocks_needed(self) -> int:
        return sum(self.blocks_per_seq)

    @property
    def pool_blocks(self) -> int:
        return self.num_blocks or self.blocks_needed

    @property
    def kv_bytes(self) -> int:
        """K and V bytes the batch must read (valid tokens only): the memory floor's numerator."""
        return 2 * sum(self.seq_lens) * self.num_kv_heads * self.head_size * 2

    @property
    def block_bytes(self) -> int:
        """Bytes of one pool block (K + V, all KV heads)."""
        return 2 * self.num_kv_heads * self.head_size * self.block_size * 2

    @property
    def label(self) -> str:
        lens = set(self.seq_lens)
        ctx = str(self.seq_lens[0]) if len(lens) == 1 else f"mixed{min(lens)}-{max(lens)}"
        return (f"b{self.num_seqs}x{ctx} h{self.num_heads}/{self.num_kv_heads} d{self.head_size} "
                f"blk{self.block_size} {self.dtype}" + ("" if self.pages == PAGE_ORDERS[0] else f" {self.pages}"))

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["seq_lens"] = list(self.seq_lens)
        if self.pages == PAGE_ORDERS[0]:   # the default stays out: specs saved before it read the same
            del d["pages"]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "WorkloadSpec":
        return cls(**d)


@dataclass
class Workload:
    spec: WorkloadSpec
    query: Any            # [num_seqs, num_heads, head]
    key_cache: Any        # [blocks, kv_heads, head/x, block, x]
    value_cache: Any      # [blocks, kv_heads, head, block]
    block_tables: Any     # int32 [num_seqs, max_blocks]
    seq_lens: Any         # int32 [num_seqs]
    scale: float

    def new_output(self) -> Any:
        import torch

        return torch.full_like(self.query, float("nan"))  # poisoned: unwritten elements show


def torch_dtype(name: str) -> Any:
    import torch

    return {"bf16": torch.bfloat16, "fp16": torch.float16}[name]


EMPTY_ROW_BLOCK = 1 << 30       # far past any pool


def _fill_table(spec: WorkloadSpec, ids: Any) -> Any:
    """Block table [num_seqs, max_blocks] taking consecutive ids for each sequence (0-padded)."""
    import torch

    bt = torch.zeros(spec.num_seqs, max(spec.blocks_per_seq), dtype=torch.int32)
    at = 0
    for i, n in enumerate(spec.blocks_per_seq):
        bt[i, :n] = ids[at:at + n]
        if n == 0:                 # an empty sequence: a kernel that follows this entry faults
            bt[i, :] = EMPTY_ROW_BLOCK
        at += n
    return bt


def _block_ids(spec: WorkloadSpec, pool: int, generator: Any) -> Any:
    """All the pool's ids in the order copies take them (copy c: [c * need, (c + 1) * need))."""
    import torch

    if spec.pages == "contiguous":
        return torch.arange(pool, dtype=torch.int64)
    return torch.randperm(pool, generator=generator)


def make_block_tables(spec: WorkloadSpec, generator: Any) -> Any:
    import torch

    return _fill_table(spec, _block_ids(spec, spec.pool_blocks, generator)[: spec.blocks_needed].to(torch.int32))


def build_workload(spec: WorkloadSpec, device: Any = "cpu", *, poison_padding: bool = True) -> Workload:
    """Random query/KV (seeded, never zeros) in vLLM's paged layout.

    poison_padding writes NaN into the slots past each sequence's end inside its last block:
    a kernel that lets them leak into the output fails its check.
    """
    import torch

    dev = torch.device(device)
    dt = torch_dtype(spec.dtype)
    x = 16 // 2
    cpu_gen = torch.Generator().manual_seed(spec.seed)
    bt = make_block_tables(spec, cpu_gen)
    gen = torch.Generator(device=dev).manual_seed(spec.seed + 1)
    D, P, H, KH = spec.head_size, spec.block_size, spec.num_heads, spec.num_kv_heads
    q = torch.randn(spec.num_seqs, H, D, generator=gen, device=dev, dtype=torch.float32).to(dt)
    k = torch.randn(spec.pool_blocks, KH, D // x, P, x, generator=gen, device=dev, dtype=torch.float32).to(dt)
    v = torch.randn(spec.pool_blocks, KH, D, P, generator=gen, device=dev, dtype=torch.float32).to(dt)
    if poison_padding:
        for i, n in enumerate(spec.seq_lens):
            tail = n % P
            if tail:
                last = int(bt[i, spec.blocks_per_seq[i] - 1])
                k[last, :, :, tail:, :] = float("nan")
                v[last, :, :, tail:] = float("nan")
    return Workload(spec=spec, query=q, key_cache=k, value_cache=v, block_tables=bt.to(dev),
                    seq_lens=torch.tensor(spec.seq_lens, dtype=torch.int32, device=dev),
                    scale=1.0 / math.sqrt(D))



def build_rotation(spec: WorkloadSpec, device: Any, min_bytes: int) -> tuple[Workload, list[Any]]:
    """A workload whose pool holds several disjoint copies of the batch's blocks.

    Launch i reads through block table i % copies; the copies together span >= min_bytes
    (4x L2 for cold-L2 timing), so no launch finds the previous launch's KV in L2.
    """
    import torch

    copies = max(2, math.ceil(min_bytes / max(1, spec.blocks_needed * spec.block_bytes)))
    pooled = WorkloadSpec(**{**spec.to_dict(), "num_blocks": max(spec.num_blocks, copies * spec.blocks_needed)})
    w = build_workload(pooled, device, poison_padding=False)
    ids = _block_ids(spec, pooled.pool_blocks, torch.Generator().manual_seed(spec.seed + 2))
    need = spec.blocks_needed
    tables = [_fill_table(spec, ids[c * need:(c + 1) * need].to(torch.int32)).to(w.query.device)
              for c in range(copies)]
    w.block_tables = tables[0]
    return w, tables


def new_tokens(w: Workload, table: Any) -> tuple[Any, Any, Any]:
    """(k_new, v_new, slot_mapping) of the step's KV-cache write through `table`: each sequence's last
    token as the cache holds it, K and V [num_seqs, num_kv_heads, head], slots int64 (block * block_size
    + offset; -1 for an empty sequence). Written back by a fused launch (LoadedVariant(kv_new=)), it
    leaves the cache as it was."""
    import torch

    P = w.key_cache.shape[3]
    lens = w.seq_lens.to(torch.int64)
    last = (lens - 1).clamp(min=0)
    live = lens > 0
    # an empty sequence's row holds EMPTY_ROW_BLOCK (outside the pool): read block 0 for it, write nothing
    blk = torch.where(live, table.to(torch.int64).gather(1, (last // P).unsqueeze(1)).squeeze(1), 0)
    off = last % P
    slots = torch.where(live, blk * P + off, torch.full_like(lens, -1))
    n, KH, D = lens.numel(), w.value_cache.shape[1], w.value_cache.shape[2]
    k_new = w.key_cache[blk, :, :, off, :].reshape(n, KH, D).contiguous()
    v_new = w.value_cache[blk, :, :, off].contiguous()
    return k_new, v_new, slots


def kv_write_standin(spec: WorkloadSpec, device: Any) -> Any:
    """What vLLM's step runs right before each layer's attention, for `bench --in-graph --kv-write`:
    one small kernel writing the step's new K and V (num_seqs x 2 x KH x D) into a buffer of its own,
    as reshape_and_cache does into the cache (ours leaves the timed KV untouched). It ends the chain
    of back-to-back attention launches, which overlap one another's tails where they use PDL."""
    import torch

    src = torch.randn(spec.num_seqs, 2, spec.num_kv_heads, spec.head_size, device=device).to(torch_dtype(spec.dtype))
    dst = torch.empty_like(src)
    return lambda: dst.copy_(src)
