"""Load a variant's cubin and launch it on torch tensors (current stream) via cuda.bindings.

GPU imports happen inside functions: this module imports on a machine without CUDA.
The kernel takes one `Params` struct by value (see kernels/decode.cu); `_Params` mirrors it.
"""
from __future__ import annotations

import ctypes
import math
import os
from dataclasses import dataclass
from typing import Any

from workbench.kernel.build import BuildResult
from workbench.errors import WorkbenchError
from workbench.kernel import variant as variant_mod
from workbench.kernel.variant import PARTITION_AUTO, Occupancy, SchedShape, sched_ints


class KernelFault(RuntimeError):
    """A CUDA error raised by a variant's launch (illegal address, launch failure, ...)."""


class _Params(ctypes.Structure):
    _fields_ = [
        ("out", ctypes.c_void_p), ("exp_sums", ctypes.c_void_p), ("max_logits", ctypes.c_void_p),
        ("tmp_out", ctypes.c_void_p), ("q", ctypes.c_void_p), ("k_cache", ctypes.c_void_p),
        ("v_cache", ctypes.c_void_p), ("block_tables", ctypes.c_void_p), ("seq_lens", ctypes.c_void_p),
        ("q_seq_stride", ctypes.c_longlong), ("kv_block_stride", ctypes.c_longlong),
        ("kv_head_stride", ctypes.c_longlong), ("num_heads", ctypes.c_int),
        ("num_kv_heads", ctypes.c_int), ("max_blocks_per_seq", ctypes.c_int),
        ("max_parts", ctypes.c_int), ("logits_len", ctypes.c_int), ("scale", ctypes.c_float),
        ("counters", ctypes.c_void_p), ("part_tokens", ctypes.c_int), ("seq_fill", ctypes.c_int),
        ("grid_parts", ctypes.c_int), ("sched", ctypes.c_void_p), ("sched_key", ctypes.c_int),
        ("sched_seqs", ctypes.c_int),
        ("k_new", ctypes.c_void_p), ("v_new", ctypes.c_void_p), ("slot_mapping", ctypes.c_void_p),
        ("new_seq_stride", ctypes.c_longlong), ("new_head_stride", ctypes.c_longlong),
        ("new_v_seq_stride", ctypes.c_longlong), ("new_v_head_stride", ctypes.c_longlong),
    ]


class _PlanParams(ctypes.Structure):      # kernels/decode.cu PlanParams
    _fields_ = [
        ("seq_lens", ctypes.c_void_p), ("sched", ctypes.c_void_p), ("num_seqs", ctypes.c_int),
        ("pt_cap", ctypes.c_int), ("slots", ctypes.c_int), ("grid_x", ctypes.c_int), ("cap", ctypes.c_int),
        ("max_parts", ctypes.c_int), ("key", ctypes.c_int), ("wave_tokens", ctypes.c_int),
        ("whole_max", ctypes.c_int),
    ]


def _driver():
    try:
        from cuda.bindings import driver
    except ImportError:  # older cuda-python layout
        try:
            from cuda import cuda as driver  # type: ignore[no-redef]
        except ImportError:
            raise WorkbenchError("cuda-python is missing: pip install cuda-python") from None
    return driver


def _check(result: Any, what: str) -> Any:
    drv = _driver()
    err, *rest = result if isinstance(result, tuple) else (result,)
    if err != drv.CUresult.CUDA_SUCCESS:
        _, msg = drv.cuGetErrorString(err)
        name = msg.decode() if isinstance(msg, bytes) else str(msg)
        raise KernelFault(f"{what}: {err.name if hasattr(err, 'name') else err} ({name})")
    if not rest:
        return None
    return rest[0] if len(rest) == 1 else tuple(rest)


def ensure_context(device_index: int) -> None:
    """Make torch's primary context current for the driver API on this thread."""
    import torch

    torch.cuda.init()
    with torch.cuda.device(device_index):
        torch.cuda.current_stream()  # forces context creation
    drv = _driver()
    ctx = _check(drv.cuCtxGetCurrent(), "cuCtxGetCurrent")
    if not ctx or int(ctx) == 0:
        dev = _check(drv.cuDeviceGet(device_index), "cuDeviceGet")
        pctx = _check(drv.cuDevicePrimaryCtxRetain(dev), "cuDevicePrimaryCtxRetain")
        _check(drv.cuCtxSetCurrent(pctx), "cuCtxSetCurrent")


def device_attr(device_index: int, name: str) -> int:
    """One CU_DEVICE_ATTRIBUTE_<name> of a device."""
    drv = _driver()
    dev = _check(drv.cuDeviceGet(device_index), "cuDeviceGet")
    attr = getattr(drv.CUdevice_attribute, f"CU_DEVICE_ATTRIBUTE_{name}")
    return int(_check(drv.cuDeviceGetAttribute(attr, dev), "cuDeviceGetAttribute"))


def device_smem_optin(device_index: int = 0) -> int:
    return device_attr(device_index, "MAX_SHARED_MEMORY_PER_BLOCK_OPTIN")


class Module:
    """A cubin loaded into the current context; launches take ctypes arguments."""

    def __init__(self, cubin: str, device_index: int):
        ensure_context(device_index)
        self._drv = _driver()
        self._module = _check(self._drv.cuModuleLoad(cubin.encode()), f"cuModuleLoad {cubin}")
        self._funcs: dict[str, Any] = {}
        self._smem_set: dict[str, int] = {}
        self._pdl_configs: dict[tuple[Any, ...], Any] = {}

    def function(self, name: str) -> Any:
        if name not in self._funcs:
            self._funcs[name] = _check(self._drv.cuModuleGetFunction(self._module, name.encode()),
                                       f"cuModuleGetFunction {name}")
        return self._funcs[name]

    def allow_smem(self, name: str, smem: int) -> Any:
        """The kernel `name`, allowed `smem` bytes of dynamic shared memory (past the 48 KB default
        only when asked: launches and occupancy queries need it set first)."""
        f = self.function(name)
        if smem > 48 * 1024 and self._smem_set.get(name, 0) < smem:
            attr = self._drv.CUfunction_attribute.CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES
            _check(self._drv.cuFuncSetAttribute(f, attr, smem), "cuFuncSetAttribute")
            self._smem_set[name] = smem
        return f

    def launch(self, name: str, grid: tuple[int, int, int], block: int, smem: int, args: list[Any],
               stream: int, pdl: bool = False) -> None:
        """pdl: programmatic dependent launch (sm_90+) -- the kernel may start while the previous
        one on the stream finishes; it must wait for its inputs with griddepcontrol.wait."""
        f = self.allow_smem(name, smem)
        ptrs = (ctypes.c_void_p * len(args))(*[ctypes.addressof(a) for a in args])
        if not pdl:
            _check(self._drv.cuLaunchKernel(f, *grid, block, 1, 1, smem, self._drv.CUstream(stream),
                                            ctypes.addressof(ptrs), 0), f"launch {name}")
            return
        key = (name, grid, block, smem, stream)
        cfg = self._pdl_configs.get(key)
        if cfg is None:                    # built once: launch overhead matters at 10 µs kernels
            drv = self._drv
            cfg = drv.CUlaunchConfig()
            cfg.gridDimX, cfg.gridDimY, cfg.gridDimZ = grid
            cfg.blockDimX, cfg.blockDimY, cfg.blockDimZ = block, 1, 1
            cfg.sharedMemBytes, cfg.hStream = smem, drv.CUstream(stream)
            a = drv.CUlaunchAttribute()
            a.id = drv.CUlaunchAttributeID.CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION
            a.value.programmaticStreamSerializationAllowed = 1
            cfg.attrs, cfg.numAttrs = [a], 1
            self._pdl_configs[key] = cfg
        _check(self._drv.cuLaunchKernelEx(cfg, f, ctypes.addressof(ptrs), 0), f"launch {name} (PDL)")

    def close(self) -> None:
        if self._module is not None:
            _check(self._drv.cuModuleUnload(self._module), "cuModuleUnload")
            self._module, self._funcs = None, {}


@dataclass
class Workspace:
    """Split-K scratch: per (seq, head, partition) max / exp-sum and partial outputs (fp32)."""
    exp_sums: Any
    max_logits: Any
    tmp_out: Any
    max_parts: int
    counters: Any = None         # fused reduce: one int per (seq, CTA column), zero
    sched: Any = None            # graph_sched: the step's schedule (LoadedVariant.plan), int32


class LoadedVariant:
    """A built variant loaded into the current CUDA context, callable like a paged-attention op."""

    def __init__(self, build: BuildResult, device_index: int | None = None, sm_count: int | None = None):
        """sm_count: the SMs auto launches plan with when not the device's own (an emulation's
        green context holds fewer: its split choices must see those)."""
        import torch

        if not build.ok:
            raise WorkbenchError(f"{build.variant.name} was not built ({build.status}: {build.error})")
        self.build = build
        self.variant = build.variant
        self.device_index = torch.cuda.current_device() if device_index is None else device_index
        self.module = Module(build.cubin, self.device_index)
        self.smem_limit = device_smem_optin(self.device_index)
        self._occ: Occupancy | None = None
        self.sm_count = sm_count
        self._auto: dict[tuple[int, int], int] = {}       # (ctas, max_seq_len) -> tokens
        self._sched: dict[tuple[int, int, int], SchedShape | None] = {}
        # our reduce kernel waits on griddepcontrol (sm_90+); vLLM's own does not, so never PDL it
        cc = torch.cuda.get_device_capability(self.device_index)
        self.pdl = (cc[0] >= 9 and self.variant.algorithm != "vllm"
                    and os.environ.get("WORKBENCH_PDL", "1") != "0")

    def occupancy(self) -> Occupancy:
        """The device and occupancy numbers auto launches plan with (read once)."""
        if self._occ is None:
            drv, m, i = _driver(), self.module, self.device_index

            v = self.variant
            # a fixed split has no whole-sequence kernel, partition none no split kernel (decode.cu)
            has = {"wb_decode_split": v.partition != 0, "wb_decode_full": v.partition <= 0,
                   "wb_decode_sched": v.graph_sched}

            def blocks(name: str) -> int:
                if not has[name]:
                    return 0
                return int(_check(drv.cuOccupancyMaxActiveBlocksPerMultiprocessor(
                    m.function(name), self.variant.threads, 0), "cuOccupancyMaxActiveBlocksPerMultiprocessor"))
            self._occ = Occupancy(self.sm_count or device_attr(i, "MULTIPROCESSOR_COUNT"),
                                  device_attr(i, "MAX_SHARED_MEMORY_PER_MULTIPROCESSOR"),
                                  device_attr(i, "RESERVED_SHARED_MEMORY_PER_BLOCK"),
                                  self.smem_limit, blocks("wb_decode_split"), blocks("wb_decode_full"),
                                  blocks("wb_decode_sched"))
        return self._occ

    def auto_tokens(self, ctas: int, max_seq_len: int) -> int:
        key = (ctas, max_seq_len)
        if key not in self._auto:
            self._auto[key] = self.variant.auto_tokens(ctas, max_seq_len, self.occupancy())
        return self._auto[key]

    def close(self) -> None:
        """Unload the module (many variants are checked in one process)."""
        self.module.close()

    def _launch(self, name: str, grid: tuple[int, int, int], block: int, smem: int,
                params: Any, stream: int, pdl: bool = False) -> None:
        try:
            self.module.launch(name, grid, block, smem, [params], stream, pdl)
        except KernelFault as e:
            raise KernelFault(f"{self.variant.name}: {e}") from None

    def workspace(self, num_seqs: int, num_heads: int, max_seq_len: int) -> Workspace:
        import torch

        parts = max(1, math.ceil(max_seq_len / self.variant.split_tokens()))
        dev = torch.device("cuda", self.device_index)
        f32 = torch.float32
        cols = num_heads  # >= grid x for any heads-per-CTA
        return Workspace(torch.empty(num_seqs, num_heads, parts, dtype=f32, device=dev),
                         torch.empty(num_seqs, num_heads, parts, dtype=f32, device=dev),
                         torch.empty(num_seqs, num_heads, parts, self.variant.head_size, dtype=f32, device=dev),
                         parts, torch.zeros(num_seqs * cols, dtype=torch.int32, device=dev)
                         if self.variant.reduce == "fused" else None,
                         torch.zeros(sched_ints(num_seqs, parts), dtype=torch.int32, device=dev)
                         if self.variant.graph_sched else None)

    def grid_x(self, num_heads: int, num_kv_heads: int) -> int:
        """CTAs per (sequence, partition): the kv heads times the query-head groups of each."""
        return num_kv_heads * math.ceil(num_heads // num_kv_heads / self.variant.heads_per_cta)

    def sched_shape(self, grid_x: int, num_seqs: int, max_seq_len: int) -> SchedShape | None:
        """The scheduled launch's shape for this batch size and bound, or None where the launch
        runs the plain grid (Variant.schedules); once per shape, not per launch."""
        key = (grid_x, num_seqs, max_seq_len)
        if key not in self._sched:
            v, occ = self.variant, self.occupancy()
            self._sched[key] = (v.sched_shape(grid_x, num_seqs, max_seq_len, occ)
                                if v.schedules(grid_x * num_seqs, max_seq_len, occ, num_seqs) else None)
        return self._sched[key]

    def plans_eager(self, lengths: Any, num_heads: int, num_kv_heads: int) -> bool:
        """Whether the per-shape launch of a batch of these (host) lengths, bounded at the longest,
        runs a plan (Variant.plans_eager: a ragged batch whose launch schedules). Its caller then
        plans at that bound and launches with per_seq_split, as the exported backend's eager steps do."""
        return self.variant.plans_eager(self.grid_x(num_heads, num_kv_heads), list(lengths), self.occupancy())

    def step_workspace(self, seq_lens: Any, num_heads: int, num_kv_heads: int, launch_len: int,
                       per_seq_split: bool = False) -> Workspace | None:
        """The workspace a launch bounded at launch_len uses (None where it does not split), with the
        step's schedule planned into it first where a per_seq_split launch of a graph_sched variant
        runs one, as vLLM's builder plans each step (timing and checks launch the same way)."""
        v, num_seqs = self.variant, seq_lens.shape[0]
        if not v.uses_split(num_seqs, num_heads, launch_len):
            return None
        ws = self.workspace(num_seqs, num_heads, launch_len)
        if per_seq_split and v.graph_sched:
            self.plan(ws, seq_lens, num_heads, num_kv_heads, launch_len)
        return ws

    def plan(self, workspace: Workspace, seq_lens: Any, num_heads: int, num_kv_heads: int, max_seq_len: int,
             max_parts: int | None = None) -> None:
        """Plan the step's schedule for the scheduled graph-bound launch of this batch size bounded
        at max_seq_len (graph_sched variants; one small kernel on the current stream, before the
        launches that use it, outside any graph: vLLM's metadata builder calls it once per step).
        max_parts: the partitions the plan aims to give at most per sequence (None: the workspace's);
        a probe passes 1 to run the scheduled kernel on whole sequences (scripts/probe_ragged.py).
        The variant's partition cap still binds: a sequence longer than it takes more."""
        import torch

        v = self.variant
        if not v.graph_sched or workspace.sched is None:
            raise WorkbenchError(f"{v.name}: plan() is for graph_sched variants with their workspace")
        num_seqs = seq_lens.shape[0]
        grid_x = self.grid_x(num_heads, num_kv_heads)
        sh = self.sched_shape(grid_x, num_seqs, max_seq_len)
        if sh is None:
            return                                # the launch runs the plain per-sequence grid
        if workspace.sched.numel() < sched_ints(num_seqs, workspace.max_parts):
            raise WorkbenchError("schedule buffer too small for this batch (use kernel.workspace())")
        if max_parts is not None and not 1 <= max_parts <= workspace.max_parts:
            raise WorkbenchError(f"plan: max_parts must be 1..{workspace.max_parts} (the workspace's), got {max_parts}")
        a = _PlanParams()
        a.seq_lens, a.sched, a.num_seqs = seq_lens.data_ptr(), workspace.sched.data_ptr(), num_seqs
        a.pt_cap, a.slots, a.grid_x, a.cap = sh.part_tokens, sh.slots, grid_x, sh.cap
        # the plan's constants read at each call (launch.cuh holds them as literals; scripts/wb_with.py A/Bs them)
        a.max_parts, a.key = max_parts or workspace.max_parts, sh.key
        a.wave_tokens, a.whole_max = variant_mod.SCHED_WAVE_TOKENS, variant_mod.SCHED_WHOLE_MAX
        stream = torch.cuda.current_stream(seq_lens.device).cuda_stream
        self._launch("wb_plan", (1, 1, 1), 512, 0, a, stream)

    def __call__(self, out: Any, query: Any, key_cache: Any, value_cache: Any, num_kv_heads: int,
                 scale: float, block_tables: Any, seq_lens: Any, max_seq_len: int,
                 workspace: Workspace | None = None, per_seq_split: bool = False,
                 kv_new: tuple[Any, Any, Any] | None = None) -> None:
        """out[s, h, :] = softmax(scale * q k^T) v over the paged cache (shapes as vLLM's).
        per_seq_split (auto variants): each sequence splits by its own length, not by max_seq_len
        (Variant.seq_fill): for launches whose bound is far above the lengths, as in a CUDA graph
        captured for the model's longest sequence. With per_seq_split a Variant.graph_walk variant's
        split grid holds Variant.graph_parts partitions, not all that max_seq_len needs, and a CTA
        walks the rest of a long sequence (Params.grid_parts).
        kv_new = (k_new, v_new, slot_mapping): the step's KV-cache write fused into the launch (vLLM's
        forward_includes_kv_cache_update): each sequence's new token, K and V [num_seqs, num_kv_heads,
        head] (head contiguous), written at slot_mapping[seq] (int64, block * block_size + offset; < 0
        for a padded row) by the CTAs that read that block, before they read it."""
        import torch

        v = self.variant
        num_seqs, num_heads, head_size = query.shape
        self._validate(out, query, key_cache, value_cache, block_tables, seq_lens)
        v.check_workload(num_seqs, num_heads, num_kv_heads, head_size, max_seq_len, self.smem_limit)
        grid_x = self.grid_x(num_heads, num_kv_heads)
        stream = torch.cuda.current_stream(query.device).cuda_stream
        p = _Params()
        p.out, p.q = out.data_ptr(), query.data_ptr()
        p.k_cache, p.v_cache = key_cache.data_ptr(), value_cache.data_ptr()
        p.block_tables, p.seq_lens = block_tables.data_ptr(), seq_lens.data_ptr()
        p.q_seq_stride = query.stride(0)
        p.kv_block_stride, p.kv_head_stride = key_cache.stride(0), key_cache.stride(1)
        p.num_heads, p.num_kv_heads = num_heads, num_kv_heads
        p.max_blocks_per_seq = block_tables.shape[1]
        p.scale = float(scale)
        if kv_new is not None:
            k_new, v_new, slots = kv_new
            self._validate_kv_new(query, k_new, v_new, slots, num_kv_heads)
            p.k_new, p.v_new, p.slot_mapping = k_new.data_ptr(), v_new.data_ptr(), slots.data_ptr()
            p.new_seq_stride, p.new_head_stride = k_new.stride(0), k_new.stride(1)
            p.new_v_seq_stride, p.new_v_head_stride = v_new.stride(0), v_new.stride(1)
        if num_seqs > 65535:
            raise WorkbenchError(f"{num_seqs} sequences: at most 65535 per launch (grid y)")
        sched = self.sched_shape(grid_x, num_seqs, max_seq_len) if per_seq_split and v.graph_sched else None
        if v.partition == PARTITION_AUTO:
            ptok = self.auto_tokens(grid_x * num_seqs, max_seq_len)
            split = ptok > 0 or sched is not None      # a schedule splits where the bound's plan would not
        else:
            ptok, split = v.split_tokens(), v.uses_split(num_seqs, num_heads, max_seq_len)
        if not split:
            p.logits_len = math.ceil(max_seq_len / v.block_size) * v.block_size
            p.max_parts = 1
            self._launch("wb_decode_full", (grid_x, num_seqs, 1), v.threads,
                         v.smem_bytes(p.logits_len), p, stream)
            return
        ws = workspace or self.workspace(num_seqs, num_heads, max_seq_len)
        if sched is not None:
            ptok = sched.part_tokens
        parts = math.ceil(max_seq_len / ptok)
        if ws.max_parts < parts:
            raise WorkbenchError(f"workspace holds {ws.max_parts} partitions, launch needs {parts}")
        p.exp_sums, p.max_logits, p.tmp_out = ws.exp_sums.data_ptr(), ws.max_logits.data_ptr(), ws.tmp_out.data_ptr()
        p.max_parts = ws.max_parts
        p.logits_len = ptok
        p.part_tokens = ptok
        if sched is not None:
            # the grid has the schedule's item slots; plan() wrote the step's items (decode.cu)
            ptok = p.logits_len = p.part_tokens = sched.part_tokens
            if ws.sched is None or ws.sched.numel() < sched_ints(num_seqs, ws.max_parts):
                raise WorkbenchError("graph_sched launch without its schedule buffer (use kernel.workspace())")
            p.sched, p.sched_key, p.sched_seqs = ws.sched.data_ptr(), sched.key, num_seqs
        elif per_seq_split and v.partition == PARTITION_AUTO:
            p.seq_fill = v.seq_fill(grid_x * num_seqs, max_seq_len, ptok, self.occupancy())
        if v.reduce == "fused":
            if ws.counters is None or ws.counters.numel() < num_seqs * grid_x:
                raise WorkbenchError("fused reduce needs the workspace's counters (use kernel.workspace())")
            p.counters = ws.counters.data_ptr()
        smem = v.smem_bytes(p.logits_len)
        grid_y, grid_z = num_seqs, parts
        if sched is not None:                       # item slots; ptok (shared memory) is the shape's
            grid_y, grid_z = sched.cap, 1
        if v.graph_walk and p.seq_fill > 0:         # graph_walk: auto, two-kernel reduce (Variant rules)
            grid_z = v.graph_parts(grid_x * num_seqs, max_seq_len, ptok, p.seq_fill, self.occupancy())
            p.grid_parts = grid_z if grid_z < parts else 0
        # a scheduled launch has kernels of its own (decode.cu: the plain ones stay as they were)
        split_k, reduce_k = ("wb_decode_sched", "wb_reduce_sched") if sched else ("wb_decode_split", "wb_reduce")
        self._launch(split_k, (grid_x, grid_y, grid_z), v.threads, smem, p, stream)
        if v.reduce != "fused":
            # our reduce keeps its running sums in registers; vLLM's own keeps 2 floats per partition
            smem = 8 * ws.max_parts if v.algorithm == "vllm" else 0
            self._launch(reduce_k, (num_heads, num_seqs, 1), 128, smem, p, stream, self.pdl)

    def _validate_kv_new(self, query: Any, k_new: Any, v_new: Any, slots: Any, num_kv_heads: int) -> None:
        import torch

        if self.variant.algorithm == "vllm":
            raise WorkbenchError("kv_new: vLLM's own kernel (algorithm vllm) does not write the cache")
        want = (query.shape[0], num_kv_heads, self.variant.head_size)
        for name, t in (("k_new", k_new), ("v_new", v_new)):
            if t.dtype != query.dtype or not t.is_cuda or tuple(t.shape) != want or t.stride(2) != 1:
                raise WorkbenchError(f"{name} must be a CUDA {query.dtype} tensor of shape {list(want)} with "
                                     f"contiguous heads (got {t.dtype}, {tuple(t.shape)}, strides {t.stride()})")
        if slots.dtype != torch.int64 or not slots.is_contiguous() or slots.shape[0] < query.shape[0]:
            raise WorkbenchError(f"slot_mapping must be a contiguous int64 tensor of >= {query.shape[0]} slots")

    def _validate(self, out: Any, query: Any, key_cache: Any, value_cache: Any,
                  block_tables: Any, seq_lens: Any) -> None:
        import torch

        v = self.variant
        want = torch.bfloat16 if v.dtype == "bf16" else torch.float16
        for name, t in (("out", out), ("query", query), ("key_cache", key_cache), ("value_cache", value_cache)):
            if t.dtype != want:
                raise WorkbenchError(f"{name} is {t.dtype}, variant {v.name} is built for {want}")
            if not t.is_cuda:
                raise WorkbenchError(f"{name} must be a CUDA tensor")
        x = 16 // query.element_size()
        if tuple(key_cache.shape[2:]) != (v.head_size // x, v.block_size, x):
            raise WorkbenchError(f"key_cache shape {tuple(key_cache.shape)} does not match "
                                 f"[blocks, kv_heads, {v.head_size // x}, {v.block_size}, {x}]")
        if tuple(value_cache.shape[2:]) != (v.head_size, v.block_size):
            raise WorkbenchError(f"value_cache shape {tuple(value_cache.shape)} does not match "
                                 f"[blocks, kv_heads, {v.head_size}, {v.block_size}]")
        if key_cache.stride()[:2] != value_cache.stride()[:2] or not (key_cache[0, 0].is_contiguous()
                                                                     and value_cache[0, 0].is_contiguous()):
            raise WorkbenchError("key and value caches must share strides and hold contiguous tiles")
        if query.stride(2) != 1 or query.stride(1) != v.head_size or not out.is_contiguous():
            raise WorkbenchError("query heads must be contiguous and out fully contiguous")
        if out.shape != query.shape:
            raise WorkbenchError(f"out shape {tuple(out.shape)} != query shape {tuple(query.shape)}")
        for name, t in (("block_tables", block_tables), ("seq_lens", seq_lens)):
            if t.dtype != torch.int32 or not t.is_contiguous():
                raise WorkbenchError(f"{name} must be a contiguous int32 tensor")


def load(build: BuildResult, device_index: int | None = None, sm_count: int | None = None) -> LoadedVariant:
    return LoadedVariant(build, device_index, sm_count)
