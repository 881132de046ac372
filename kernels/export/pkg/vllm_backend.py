"""vLLM V1 attention backend (selected as CUSTOM): decode tokens run on this package's tuned
kernels, which also write each decode token's K and V into the cache (forward_includes_kv_cache_update:
no write kernel of vLLM's before each layer); prefill / chunked-prefill tokens use vLLM's own Triton ops
(`triton_reshape_and_cache_flash`, `prefix_prefill.context_attention_fwd`), which read and write the same
split paged layout: keys [blocks, kv_heads, head/x, block, x], values [blocks, kv_heads, head, block].

Built for: head size @HEAD@, KV block @BLOCK@, @DTYPE@, compute capability @CC@ (the tuned GPU).

Two generations of vLLM's backend API are served, chosen at import from the installed vLLM
(docs/vllm-backend-notes.md in workbench has the details and the references into vLLM's source):
- "shape" (vLLM 0.26, what the GPU hosts run): the backend gives the layer's cache shape and stride
  order (abstract get_kv_cache_shape, get_kv_cache_stride_order);
- "spec" (vLLM 0.33): the backend edits the layer's KV-cache spec (customize_spec) and names the
  physical layouts it can read (supported_kv_cache_layouts).
Either way the tensor handed to forward() is logically [blocks, 2 (K, V), block, kv_heads * head]
with each (block, K or V) page one contiguous run, so split_kv_cache gives the same views.

Full CUDA graphs: the builder declares UNIFORM_SINGLE_TOKEN_DECODE. Everything a captured decode
launch reads lives in persistent buffers: vLLM's seq_lens / block table / query (its runners slice
persistent buffers for these) and this builder's split-K workspace and fused-reduce counters,
allocated once. The variant and the grid are fixed at capture for max_model_len; at replay each
sequence's length is read on the device.
"""
from __future__ import annotations

import bisect
import os
from dataclasses import dataclass, replace
from typing import Any, ClassVar

import torch

from vllm.v1.attention.backend import (AttentionBackend, AttentionCGSupport, AttentionImpl, AttentionMetadata,
                                       AttentionMetadataBuilder, AttentionType, CommonAttentionMetadata)

from . import decode, is_scheduled, pick_graph_variant, pick_variant, plan, schedule_ints, scheduled, workspace_floats

HEAD_SIZE = @HEAD@
BLOCK_SIZE = @BLOCK@
DTYPE = torch.bfloat16 if "@DTYPE@" == "bf16" else torch.float16
CAPABILITY = @CC@
CACHE_DTYPES = ("auto", "bfloat16" if DTYPE == torch.bfloat16 else "float16")
# eager decode launches plan a batch whose tokens fill at most this share of (sequences x longest)
# (workbench's Variant.plans_eager / variant.ragged, the same constants)
RAGGED_FILL = @RAGGED_FILL@
RAGGED_MIN_SEQS = @RAGGED_MIN_SEQS@
# the step's KV-cache write fused into the decode kernel (forward_includes_kv_cache_update); read at
# import: WB_FUSED_KV_WRITE=0 leaves the write to vLLM's own kernel before each layer (for A/B runs)
FUSED_KV_WRITE = os.environ.get("WB_FUSED_KV_WRITE", "1") != "0"

if hasattr(AttentionBackend, "customize_spec"):
    VLLM_API = "spec"
elif "get_kv_cache_shape" in getattr(AttentionBackend, "__abstractmethods__", ()):
    VLLM_API = "shape"
else:
    raise ImportError("@PKG@: this vLLM has neither AttentionBackend.customize_spec (vLLM 0.33) nor an abstract "
                      "get_kv_cache_shape (vLLM 0.26): the backend supports those two API generations")


@dataclass
class WorkbenchDecodeMetadata(AttentionMetadata):
    num_actual_tokens: int
    max_query_len: int
    query_start_loc: torch.Tensor
    max_seq_len: int
    seq_lens: torch.Tensor
    block_table: torch.Tensor
    slot_mapping: torch.Tensor
    num_decodes: int                       # leading requests of one query token each
    num_prefills: int                      # the rest (prefill, chunked prefill; padding at the end)
    decode_max_seq_len: int                # launch bound of the decode kernels (max_model_len when captured)
    decode_variant: int = -1               # -1: the dispatch table picks per launch; fixed when captured
    workspace: torch.Tensor | None = None  # flat fp32 split-K workspace (the builder's, persistent)
    counters: torch.Tensor | None = None   # zeroed int32 fused-reduce counters (the builder's, persistent)
    causal: bool = True
    per_seq_split: bool = False            # captured: split each sequence by its own length (the launch
                                           # is bounded at max_model_len, the batches replayed are shorter);
                                           # eager: a ragged batch planned at its own bound (schedule)
    schedule: torch.Tensor | None = None   # the step's schedule (the builder's, persistent; not with --no-graph-sched)
    decode_slots: torch.Tensor | None = None   # int64 slot of each decode row's new token, -1 for padded rows
                                               # (the builder's, persistent: a captured launch reads it at replay)


def ragged(lengths: list[int]) -> bool:
    """A batch whose tokens fill at most RAGGED_FILL of (sequences x longest): the plain launch, each
    sequence split as the longest, would idle most of its CTAs."""
    n, top = len(lengths), max(lengths, default=0)
    return n >= RAGGED_MIN_SEQS and top > 0 and sum(lengths) <= RAGGED_FILL * n * top


def split_batch(m: CommonAttentionMetadata) -> tuple[int, int]:
    """(num_decodes, num_prefills) of a batch vLLM reordered for reorder_batch_threshold = 1:
    single-token decodes first. A captured decode batch is padded with requests of query and
    sequence length 0 after the real ones: they count as decodes (the kernels give zeros)."""
    if m.max_query_len <= 1:
        return m.num_reqs, 0
    qsl = m.query_start_loc_cpu[: m.num_reqs + 1]
    not_single = torch.nonzero((qsl[1:] - qsl[:-1]) != 1)
    nd = int(not_single[0, 0]) if not_single.numel() else m.num_reqs
    return nd, m.num_reqs - nd


class WorkbenchDecodeMetadataBuilder(AttentionMetadataBuilder[WorkbenchDecodeMetadata]):
    # full graphs of uniform single-token decode batches (FULL_AND_PIECEWISE: mixed batches run
    # their attention eagerly between piecewise graphs)
    _cudagraph_support: ClassVar[AttentionCGSupport] = AttentionCGSupport.UNIFORM_SINGLE_TOKEN_DECODE

    def __init__(self, kv_cache_spec, layer_names, vllm_config, device):
        super().__init__(kv_cache_spec, layer_names, vllm_config, device)
        self._init_reorder_batch_threshold(1)     # decodes first: rows [0, num_decodes) are one token each
        model, par = vllm_config.model_config, vllm_config.parallel_config
        self.max_model_len = int(model.max_model_len)
        self.num_heads = int(model.get_num_attention_heads(par))
        self.num_kv_heads = int(model.get_num_kv_heads(par))
        # decode rows of one launch: up to max_num_seqs, or the largest capture size a batch is padded to
        capture = getattr(vllm_config.compilation_config, "max_cudagraph_capture_size", None) or 0
        self.max_rows = max(int(vllm_config.scheduler_config.max_num_seqs), int(capture))
        # One split-K workspace and one set of fused-reduce counters per builder, sized for every
        # launch the dispatch table can make for up to max_rows sequences of up to max_model_len
        # tokens (so no launch allocates, captured or not). vLLM makes one builder per KV-cache group
        # and micro-batch: no two streams share them; the layers use them in turn on one stream.
        n = workspace_floats(self.max_rows, self.num_heads, self.num_kv_heads, self.max_model_len, HEAD_SIZE)
        self.workspace = torch.empty(n, dtype=torch.float32, device=device) if n else None
        self.counters = torch.zeros(self.max_rows * self.num_heads, dtype=torch.int32, device=device) if n else None
        # exported with the schedule (the default): each decode step's schedule for the captured launch its batch is padded to,
        # planned on the device by build() before the graph replays (one small kernel per step)
        cc = vllm_config.compilation_config
        self.capture_sizes = sorted(int(s) for s in (getattr(cc, "cudagraph_capture_sizes", None) or ()))
        # (WB_GRAPH_SCHED=0 in the environment: off, the package's plain graph-bound grids; for A/B runs)
        self.schedule = (torch.zeros(schedule_ints(self.max_rows, self.max_model_len), dtype=torch.int32,
                                     device=device)
                         if scheduled() and self.capture_sizes and os.environ.get("WB_GRAPH_SCHED", "1") != "0"
                         else None)
        self._plans: dict[int, int] = {}        # capture size -> variant whose launch is scheduled, or -1
        # the decode rows' slots for the KV-cache write the decode kernel does (forward_includes_kv_cache_update):
        # refilled by build() each step, -1 past vLLM's slot_mapping (a captured batch's padding rows)
        self.slots = torch.full((self.max_rows,), -1, dtype=torch.int64, device=device)
        # eager steps (mixed batches; decode batches no graph holds) plan ragged decode batches at their
        # own bound into a buffer of their own: a step vLLM replays after all never clobbers the graph's
        self.eager_schedule = (torch.zeros_like(self.schedule) if self.schedule is not None
                               else torch.zeros(schedule_ints(self.max_rows, self.max_model_len), dtype=torch.int32,
                                                device=device) if scheduled() else None)

    def build(self, common_prefix_len: int, common_attn_metadata: CommonAttentionMetadata,
              fast_build: bool = False) -> WorkbenchDecodeMetadata:
        m = common_attn_metadata
        nd, npf = split_batch(m)
        if self.schedule is not None and nd and not npf:
            # a uniform decode batch: vLLM replays the graph captured for the smallest capture size
            # that holds it (padded rows have length 0). A wrong guess costs speed, not results:
            # the kernel ignores a schedule planned for another launch (decode.cu, sched_key).
            i = bisect.bisect_left(self.capture_sizes, nd)
            b = self.capture_sizes[i] if i < len(self.capture_sizes) else 0
            if b and b not in self._plans:        # steps whose graph is not scheduled cost nothing
                v = pick_graph_variant(b, self.max_model_len)
                self._plans[b] = v if is_scheduled(b, self.num_heads, self.num_kv_heads, self.max_model_len, v) else -1
            if b and self._plans[b] >= 0:
                plan(self.schedule, m.seq_lens[:nd], b, self.num_heads, self.num_kv_heads, self.max_model_len,
                     self._plans[b])
        if nd:
            k = min(nd, m.slot_mapping.numel(), self.max_rows)
            self.slots[:k].copy_(m.slot_mapping[:k], non_blocking=True)
            self.slots[k:nd].fill_(-1)
        md = WorkbenchDecodeMetadata(
            num_actual_tokens=m.num_actual_tokens, max_query_len=m.max_query_len,
            query_start_loc=m.query_start_loc, max_seq_len=m.max_seq_len, seq_lens=m.seq_lens,
            block_table=m.block_table_tensor, slot_mapping=m.slot_mapping, num_decodes=nd, num_prefills=npf,
            decode_max_seq_len=int(m.max_seq_len), workspace=self.workspace, counters=self.counters,
            causal=m.causal if isinstance(m.causal, bool) else True, schedule=self.schedule,
            decode_slots=self.slots[:nd] if nd <= self.max_rows else None)
        replayed = bool(self.capture_sizes) and not npf and nd <= self.capture_sizes[-1]
        if self.eager_schedule is not None and nd >= RAGGED_MIN_SEQS and not replayed:
            self._plan_eager(md, m, nd)
        return md

    def _plan_eager(self, md: WorkbenchDecodeMetadata, m: CommonAttentionMetadata, nd: int) -> None:
        """An eager step's decode rows, when ragged (their CPU upper bounds: no device sync): planned at
        their longest, launched split per sequence, with the batch size's graph pick (`workbench refine`
        times it on ragged batches too) where that launch schedules, else the table's pick where it does
        (workbench bench's `tuned` row times the same launch; H200 70b TP8 r32 78.6 -> 40.4 us)."""
        ub = getattr(m, "seq_lens_cpu_upper_bound", None)
        if ub is None:
            return
        lens = [int(x) for x in ub[:nd].tolist()]
        if not ragged(lens):
            return
        top = max(lens)                        # an upper bound: the launch's, the lengths come from the device
        v = next((c for c in (pick_graph_variant(nd, self.max_model_len), pick_variant(nd, top))
                  if is_scheduled(nd, self.num_heads, self.num_kv_heads, top, c)), -1)
        if v < 0:
            return
        plan(self.eager_schedule, m.seq_lens[:nd], nd, self.num_heads, self.num_kv_heads, top, v)
        md.decode_variant, md.decode_max_seq_len = v, top
        md.per_seq_split, md.schedule = True, self.eager_schedule

    def build_for_cudagraph_capture(self, common_attn_metadata: CommonAttentionMetadata) -> WorkbenchDecodeMetadata:
        """The graph replays this batch size's launch for every later batch of that size: size its grid
        for the longest sequence the model allows and fix its variant now."""
        md = self.build(0, common_attn_metadata)
        md.decode_max_seq_len = max(md.decode_max_seq_len, self.max_model_len)
        # the batch row's graph pick (`workbench refine`: timed graph-bound over the row's contexts), else the
        # table's pick at the bound; build() plans with the same one
        md.decode_variant = pick_graph_variant(max(md.num_decodes, 1), md.decode_max_seq_len)
        # the split the launch bound implies is the one for max_model_len tokens: far too coarse for
        # the shorter batches the graph replays (H200 e2e, 2026-11-28: 4-8% of the step lost at
        # b1x1k, b8x4k, b64x1k): each sequence splits by its own length on the device instead
        md.per_seq_split = True
        return md


def split_kv_cache(kv_cache: torch.Tensor, num_kv_heads: int, head_size: int):
    """The layer's cache [blocks, 2, block, kv_heads * head] -> vLLM's split paged views:
    keys [blocks, kv_heads, head/x, block, x], values [blocks, kv_heads, head, block]. The block
    stride stays whatever the layout made it; each (block, kv head) tile is contiguous."""
    kv = kv_cache.transpose(0, 1)
    x = 16 // kv.element_size()
    nb = kv.shape[1]
    return (kv[0].view(nb, num_kv_heads, head_size // x, -1, x),
            kv[1].view(nb, num_kv_heads, head_size, -1))


def asks_for_more(name: str, value: Any) -> bool:
    """Whether a keyword argument a model passes through the Attention layer (extra_impl_args:
    sinks, chunk_lookback, use_alibi_sqrt, ... in vLLM 0.26 and 0.33) asks for a feature: None,
    False and chunk_lookback = -1 do not; anything else does (and this backend has none)."""
    if value is None or value is False:
        return False
    return not (name == "chunk_lookback" and isinstance(value, int) and value < 0)


class WorkbenchDecodeImpl(AttentionImpl[WorkbenchDecodeMetadata]):
    supports_dcp: bool = False          # the kernels return no LSE (vLLM 0.26 defaults this to True)

    def __init__(self, num_heads: int, head_size: int, scale: float, num_kv_heads: int | None = None,
                 alibi_slopes: list[float] | None = None, sliding_window: int | None = None,
                 kv_cache_dtype: str = "auto", logits_soft_cap: float | None = None,
                 attn_type: str = AttentionType.DECODER, kv_sharing_target_layer_name: str | None = None,
                 sinks: torch.Tensor | None = None, **extra: Any) -> None:
        if head_size != HEAD_SIZE:
            raise ValueError(f"this backend is built for head size {HEAD_SIZE}, the model has {head_size}")
        if alibi_slopes is not None or sliding_window is not None or logits_soft_cap or sinks is not None:
            raise NotImplementedError("ALiBi, sliding window, logit soft-cap and sinks are not supported")
        asked = sorted(k for k, v in extra.items() if asks_for_more(k, v))
        if asked:
            raise NotImplementedError(f"attention options not supported by this backend: {asked}")
        if attn_type != AttentionType.DECODER:
            raise NotImplementedError("decoder self-attention only")
        if kv_cache_dtype not in CACHE_DTYPES:
            raise NotImplementedError(f"kv_cache_dtype {kv_cache_dtype!r}: this backend keeps the cache in {DTYPE}")
        self.num_heads, self.head_size, self.scale = num_heads, head_size, float(scale)
        self.num_kv_heads = num_kv_heads or num_heads
        self.kv_cache_dtype = kv_cache_dtype
        self.attn_type = attn_type
        self.kv_sharing_target_layer_name = kv_sharing_target_layer_name

    def do_kv_cache_update(self, layer, key: torch.Tensor, value: torch.Tensor, kv_cache: torch.Tensor,
                           slot_mapping: torch.Tensor) -> None:
        k_cache, v_cache = split_kv_cache(kv_cache, self.num_kv_heads, self.head_size)
        self._write_kv(layer, key, value, k_cache, v_cache, slot_mapping)

    def _write_kv(self, layer, key, value, k_cache, v_cache, slot_mapping) -> None:
        from vllm.v1.attention.ops.triton_reshape_and_cache_flash import triton_reshape_and_cache_flash
        # the 5-D key cache selects its head-major path; it follows the caches' strides
        triton_reshape_and_cache_flash(key, value, k_cache, v_cache, slot_mapping, self.kv_cache_dtype,
                                       layer._k_scale, layer._v_scale)

    def forward(self, layer, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                kv_cache: torch.Tensor, attn_metadata: WorkbenchDecodeMetadata, output: torch.Tensor,
                output_scale: torch.Tensor | None = None,
                output_block_scale: torch.Tensor | None = None) -> torch.Tensor:
        if output_scale is not None or output_block_scale is not None:
            raise NotImplementedError("fused output quantization is not supported")
        if attn_metadata is None:                  # profiling run
            return output.fill_(0)
        md = attn_metadata
        k_cache, v_cache = split_kv_cache(kv_cache, self.num_kv_heads, self.head_size)
        q = query.view(-1, self.num_heads, self.head_size)
        out = output.view(-1, self.num_heads, self.head_size)
        nd, n = md.num_decodes, md.num_actual_tokens
        # forward_includes_kv_cache_update: this step's K and V go into the cache here, not in a kernel
        # of vLLM's before it: the decode kernel writes each request's token where it reads it
        write = FUSED_KV_WRITE and key is not None and value is not None and self.kv_sharing_target_layer_name is None
        if write and nd and md.decode_slots is None:   # more decode rows than the builder sized for
            self._write_kv(layer, key[:nd], value[:nd], k_cache, v_cache, md.slot_mapping[:nd])
        fused = write and nd and md.decode_slots is not None
        if nd:                                     # one token per request: the tuned kernels
            dst = out[:nd]
            tmp = dst if dst.is_contiguous() else torch.empty_like(q[:nd])
            decode(tmp, q[:nd], k_cache, v_cache, self.num_kv_heads, self.scale, md.block_table[:nd],
                   md.seq_lens[:nd], md.decode_max_seq_len, variant=md.decode_variant, workspace=md.workspace,
                   counters=md.counters, per_seq_split=md.per_seq_split, schedule=md.schedule,
                   kv_new=(key[:nd], value[:nd], md.decode_slots) if fused else None)
            if tmp is not dst:
                dst.copy_(tmp)
        if md.num_prefills:                        # prefill / chunked prefill: vLLM's Triton kernel
            from vllm.v1.attention.ops.prefix_prefill import context_attention_fwd
            if write:                              # their tokens into the cache first (later steps read them)
                self._write_kv(layer, key[nd:n], value[nd:n], k_cache, v_cache, md.slot_mapping[nd:n])
            k_new = None if key is None else key[nd:n]          # None (0.33 only): context from the cache
            v_new = None if value is None else value[nd:n]
            context_attention_fwd(
                q[nd:n], k_new, v_new, out[nd:n], self.kv_cache_dtype, k_cache, v_cache, md.block_table[nd:],
                md.query_start_loc[nd:] - nd, md.seq_lens[nd:], md.max_seq_len, md.max_query_len,
                layer._k_scale, layer._v_scale, sm_scale=self.scale, causal=md.causal)
        return output


class @CLASS@(AttentionBackend):
    supported_dtypes: ClassVar[list[torch.dtype]] = [DTYPE]
    supported_kv_cache_dtypes: ClassVar[list[str]] = list(CACHE_DTYPES)
    forward_includes_kv_cache_update: bool = FUSED_KV_WRITE     # decode rows: fused into the decode kernel

    @staticmethod
    def get_name() -> str:
        return "CUSTOM"

    @staticmethod
    def get_impl_cls() -> type[WorkbenchDecodeImpl]:
        return WorkbenchDecodeImpl

    @staticmethod
    def get_builder_cls() -> type[WorkbenchDecodeMetadataBuilder]:
        return WorkbenchDecodeMetadataBuilder

    @staticmethod
    def get_supported_kernel_block_sizes(kv_cache_spec=None) -> list[int]:
        return [BLOCK_SIZE]

    @classmethod
    def get_supported_head_sizes(cls) -> list[int]:
        return [HEAD_SIZE]

    @classmethod
    def supports_compute_capability(cls, capability) -> bool:
        return capability is not None and capability.major * 10 + capability.minor == CAPABILITY

    @classmethod
    def supports_attn_type(cls, attn_type: str) -> bool:
        return attn_type == AttentionType.DECODER

    @classmethod
    def supports_kv_connector(cls) -> bool:
        return False                               # K/V as two page halves, not vLLM's interleaved content

    @classmethod
    def supports_device_cpu_query_lens_mismatch(cls) -> bool:
        return False                               # (vLLM 0.33) the decode/prefill split reads the CPU query lengths

    if VLLM_API == "spec":
        @classmethod
        def customize_spec(cls, spec):
            """K and V as two head slots of the page ([blocks, 2, block, kv_heads * head] logically), so
            each (block, KV head) tile of K (or V) is one contiguous run: the split 5-D/4-D layout the
            kernels (and vLLM's Triton ops) address."""
            from vllm.utils.torch_utils import get_dtype_size
            if spec.head_size_v != spec.head_size:
                raise ValueError(f"{cls.__name__}: K and V head sizes differ ({spec.head_size}, {spec.head_size_v})")
            half_page = spec.num_kv_heads * spec.head_size * get_dtype_size(spec.dtype)
            if (spec.num_head_slots, spec.state_content_bytes) == (2, half_page):
                return spec                        # already ours (vLLM may ask twice)
            if spec.num_head_slots is not None or spec.state_content_bytes is not None:
                raise ValueError(f"{cls.__name__}: the KV-cache spec is already packed otherwise ({spec})")
            return replace(spec, num_head_slots=2, state_content_bytes=half_page)

        @classmethod
        def supported_kv_cache_layouts(cls):
            """Layouts of logical [L, B, H, N, C] (H = the K/V slot here) where (N, C) stay innermost, so
            each page half is contiguous; the block stride may be anything. Not LBNHC / BLNHC."""
            from vllm.v1.kv_cache_layout import KVCacheLayout
            return (KVCacheLayout.LBHNC, KVCacheLayout.LHBNC, KVCacheLayout.BLHNC, KVCacheLayout.BHLNC)
    else:
        @staticmethod
        def get_kv_cache_shape(num_blocks: int, block_size: int, num_kv_heads: int, head_size: int,
                               cache_dtype_str: str = "auto") -> tuple[int, ...]:
            """Blocks first, then K and V as the two halves of a page: [blocks, 2, block, kv_heads * head]
            (the same logical view vLLM 0.33 builds from customize_spec)."""
            if cache_dtype_str not in CACHE_DTYPES:
                raise ValueError(f"kv cache dtype {cache_dtype_str!r} is not supported (only {CACHE_DTYPES})")
            return (num_blocks, 2, block_size, num_kv_heads * head_size)

        @staticmethod
        def get_kv_cache_stride_order(include_num_layers_dimension: bool = False) -> tuple[int, ...]:
            """Physical order = logical order; with a leading layers dimension (cross-layer allocation)
            blocks stay outermost, each layer's page still one [2, block, kv_heads * head] run."""
            return (1, 0, 2, 3, 4) if include_num_layers_dimension else (0, 1, 2, 3)
