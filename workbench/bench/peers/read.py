"""`read`: a bound, not a peer. The shape's paged KV read once through its block tables and nothing
computed (kernels/readprobe.cu `wb_paged_read`), in the same harness as every row: the same pages,
rotation copies and cold L2, the launch included. The `floor` column is the KV bytes at the read
ceiling of a 4 GiB stream; this is what reading *this* shape's pages costs, with its launch, the
first bytes' latency and the last wave's tail. `fa3 ÷ read` is then about the most a kernel that
reads the KV this way could gain over FA3 at that shape.

The tiles are dealt evenly over the CTAs whatever the sequence lengths. Of a few launch forms
(CTAs per SM, tiles in flight per thread) the fastest in a short timing is kept, per shape."""
from __future__ import annotations

import ctypes
import math
from dataclasses import dataclass
from typing import Any, Callable

from workbench.bench.peers.common import PeerUnavailable, require_device
from workbench.measure.workload import WorkloadSpec

CTAS_PER_SM = (1, 2, 4, 8)
IN_FLIGHT = (4, 8)               # tiles (K and V each) in flight per thread: WB_READ_U
PICK_LAUNCHES = 8


@dataclass(frozen=True)
class ReadForm:
    ctas: int                    # grid size
    in_flight: int               # WB_READ_U
    threads: int                 # one per 16 bytes of a (page, KV head) tile

    @property
    def label(self) -> str:
        return f"{self.ctas} CTAs x {self.threads} threads, {self.in_flight} tiles in flight"


def tile_threads(spec: WorkloadSpec) -> int:
    """Threads of the read kernel: one per 16 bytes of one (page, KV head) tile of K."""
    n = spec.head_size * spec.block_size * 2 // 16          # 16-bit elements (bf16 / fp16)
    if not 32 <= n <= 512:
        raise PeerUnavailable(f"the read bound takes tiles of 512 B to 8 KB (head {spec.head_size} x block "
                              f"{spec.block_size} is {16 * n} B)")
    return n


def cu_pages(seq_lens: Any, block_size: int) -> list[int]:
    """Each sequence's first page in a page-major numbering of the batch: [0, p0, p0+p1, ...]."""
    out = [0]
    for n in [int(x) for x in seq_lens]:
        out.append(out[-1] + (n + block_size - 1) // block_size)
    return out


def forms(spec: WorkloadSpec, sms: int) -> list[ReadForm]:
    """The launch forms tried: grids of 1-8 CTAs per SM, none with a CTA left without a tile."""
    tiles = cu_pages(spec.seq_lens, spec.block_size)[-1] * spec.num_kv_heads
    t = tile_threads(spec)
    grids = sorted({min(tiles, m * sms) for m in CTAS_PER_SM if tiles})
    return [ReadForm(g, u, t) for g in grids for u in IN_FLIGHT]


class PagedRead:
    """The read kernel over one workload's pool (key_cache [N, KH, D/x, P, x], value_cache [N, KH, D, P],
    each (page, KV head) tile contiguous) and its sequence lengths."""

    def __init__(self, key_cache: Any, value_cache: Any, seq_lens: Any, spec: WorkloadSpec, arch: str):
        import torch

        from workbench.kernel.build import build_source
        from workbench.kernel.launch import Module
        dev = key_cache.device
        self.k, self.v, self.kh = key_cache, value_cache, spec.num_kv_heads
        self.nseq = int(seq_lens.numel())
        self.cu = torch.tensor(cu_pages(seq_lens.tolist(), spec.block_size), dtype=torch.int32, device=dev)
        self.total = int(self.cu[-1].item()) * self.kh
        self.sink = torch.zeros(4, dtype=torch.int32, device=dev)
        self.mods = {u: Module(build_source("readprobe.cu", arch, {"WB_READ_U": u}), dev.index or 0)
                     for u in IN_FLIGHT}

    def call(self, table: Any, form: ReadForm, check: bool = False) -> Callable[[], None]:
        import torch
        args = [ctypes.c_void_p(self.k.data_ptr()), ctypes.c_void_p(self.v.data_ptr()), ctypes.c_void_p(table.data_ptr()),
                ctypes.c_int(table.shape[1]), ctypes.c_void_p(self.cu.data_ptr()), ctypes.c_int(self.nseq),
                ctypes.c_int(self.kh), ctypes.c_int(self.total), ctypes.c_void_p(self.sink.data_ptr()),
                ctypes.c_int(int(check))]
        mod = self.mods[form.in_flight]
        # the stream at call time (time_calls captures on a stream of its own); the call holds the table
        # and this reader (its pool, modules): the kernel reads them through raw pointers
        return lambda _t=table, _r=self: mod.launch("wb_paged_read", (form.ctas, 1, 1), form.threads, 0, args,
                                                    torch.cuda.current_stream().cuda_stream)

    def xor_of(self, table: Any, form: ReadForm) -> int:
        """The xor of every 32-bit word the kernel read through `table` (tests)."""
        import torch
        self.sink.zero_()
        self.call(table, form, check=True)()
        torch.cuda.synchronize()
        return int(self.sink[0].item()) & 0xFFFFFFFF

    def close(self) -> None:
        for m in self.mods.values():
            m.close()


def expected_xor(key_cache: Any, value_cache: Any, table: Any, seq_lens: Any, block_size: int) -> int:
    """What `PagedRead.xor_of` must give: the xor of every word of every (page, KV head) tile, K and V,
    of the pages `table` lists for each sequence (whole pages), computed on the CPU."""
    import numpy as np
    import torch
    acc = np.uint32(0)
    for s, n in enumerate(int(x) for x in seq_lens):
        ids = table[s, :(n + block_size - 1) // block_size].long().cpu()
        for c in (key_cache, value_cache):
            words = c[ids.to(c.device)].contiguous().view(-1).view(torch.int32).cpu().numpy()
            acc ^= np.bitwise_xor.reduce(words.view(np.uint32)) if words.size else np.uint32(0)
    return int(acc)


def paged_read(spec: WorkloadSpec, min_bytes: int, check: bool = True,
               device: str = "cuda") -> tuple[list[Callable[[], None]], str, float]:
    """Calls over the rotation copies of our kernel's workload (measure.workload.build_rotation) in
    the fastest of `forms`; nothing to check against the reference (the error is NaN: a bound, not
    attention; tests check what it reads)."""
    from workbench.measure.gpuinfo import gpu_info
    from workbench.measure.timing import time_calls
    from workbench.measure.workload import build_rotation
    require_device("the read bound", device)
    info = gpu_info(0)
    fs = forms(spec, info.sm_count)
    if not fs:
        raise PeerUnavailable("no KV to read (every sequence is empty)")
    w, tables = build_rotation(spec, device, min_bytes)
    r = PagedRead(w.key_cache, w.value_cache, w.seq_lens, spec, info.arch)
    timed = []
    for f in fs:
        samples, _ = time_calls([r.call(t, f) for t in tables], info, launches=PICK_LAUNCHES, name=f"read :: {f.label}")
        timed.append((sorted(samples)[len(samples) // 2], f))
    best = min(timed, key=lambda x: x[0])[1]
    return [r.call(t, best) for t in tables], note_for(best, len(tables)), math.nan


RUN_NOTE = ("the paged KV read once through the block tables, nothing computed (a bound, not attention), the "
            "fastest of its launch forms per shape (1-8 CTAs per SM x 4 or 8 tiles in flight; the row's variant)")


def note_for(form: ReadForm, copies: int) -> str:
    """The builder's note: what the row is (the same every shape), then this shape's form and copies."""
    return f"{RUN_NOTE}: {form.label}, {copies} copies"


def split_note(note: str) -> tuple[str, str]:
    """(the run's note, this shape's launch form) of a note_for note: the bench keeps the first once and
    the second as the row's variant."""
    head, _, tail = note.partition(": ")
    return head, tail.rsplit(", ", 1)[0]
