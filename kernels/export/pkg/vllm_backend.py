"""vLLM V1 attention backend (selected as CUSTOM): decode tokens run on this package's tuned
kernels; prefill / chunked-prefill tokens and the KV-cache write use vLLM's own Triton ops
(`prefix_prefill.context_attention_fwd`, `triton_reshape_and_cache_flash`), which read and write the same
split paged layout: keys [blocks, kv_heads, head/x, block, x], values [blocks, kv_heads, head, block].

Built for: head size @HEAD@, KV block @BLOCK@, @DTYPE@, compute capability @CC@ (the tuned GPU).
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import ClassVar

import torch

from vllm.v1.attention.backend import (AttentionBackend, AttentionCGSupport, AttentionImpl,
                                       AttentionMetadataBuilder, AttentionType, CommonAttentionMetadata)
from vllm.v1.kv_cache_layout import KVCacheLayout

HEAD_SIZE = @HEAD@
BLOCK_SIZE = @BLOCK@
DTYPE = torch.bfloat16 if "@DTYPE@" == "bf16" else torch.float16
CAPABILITY = @CC@


@dataclass
class WorkbenchDecodeMetadata:
    num_actual_tokens: int
    max_query_len: int
    query_start_loc: torch.Tensor
    max_seq_len: int
    seq_lens: torch.Tensor
    block_table: torch.Tensor
    slot_mapping: torch.Tensor
    num_decodes: int
    num_decode_tokens: int
    num_prefills: int
    causal: bool = True


class WorkbenchDecodeMetadataBuilder(AttentionMetadataBuilder[WorkbenchDecodeMetadata]):
    # the dispatch picks a variant from max_seq_len on the host: not capturable in a full graph
    _cudagraph_support: ClassVar[AttentionCGSupport] = AttentionCGSupport.NEVER

    def __init__(self, kv_cache_spec, layer_names, vllm_config, device):
        super().__init__(kv_cache_spec, layer_names, vllm_config, device)
        # decodes first in every batch: rows [0, num_decodes) have one query token each
        self._init_reorder_batch_threshold(1)

    def build(self, common_prefix_len: int, common_attn_metadata: CommonAttentionMetadata,
              fast_build: bool = False) -> WorkbenchDecodeMetadata:
        from vllm.v1.attention.backends.utils import split_decodes_and_prefills
        m = common_attn_metadata
        nd, np_, ndt, _ = split_decodes_and_prefills(m, decode_threshold=1)
        return WorkbenchDecodeMetadata(
            num_actual_tokens=m.num_actual_tokens, max_query_len=m.max_query_len,
            query_start_loc=m.query_start_loc, max_seq_len=m.max_seq_len, seq_lens=m.seq_lens,
            block_table=m.block_table_tensor, slot_mapping=m.slot_mapping, num_decodes=nd,
            num_decode_tokens=ndt, num_prefills=np_, causal=bool(m.causal) if isinstance(m.causal, bool) else True)


def split_kv_cache(kv_cache: torch.Tensor, num_kv_heads: int, head_size: int):
    """The layer's cache (K and V as two head groups) -> vLLM's split paged views."""
    kv = kv_cache.transpose(0, 1)
    x = 16 // kv.element_size()
    nb = kv.shape[1]
    return (kv[0].view(nb, num_kv_heads, head_size // x, -1, x),
            kv[1].view(nb, num_kv_heads, head_size, -1))


class WorkbenchDecodeImpl(AttentionImpl[WorkbenchDecodeMetadata]):
    def __init__(self, num_heads: int, head_size: int, scale: float, num_kv_heads: int | None = None,
                 alibi_slopes: list[float] | None = None, sliding_window: int | None = None,
                 kv_cache_dtype: str = "auto", logits_soft_cap: float | None = None,
                 attn_type: str = AttentionType.DECODER, kv_sharing_target_layer_name: str | None = None,
                 sinks: torch.Tensor | None = None) -> None:
        if head_size != HEAD_SIZE:
            raise ValueError(f"this backend is built for head size {HEAD_SIZE}, the model has {head_size}")
        if alibi_slopes is not None or sliding_window is not None or logits_soft_cap or sinks is not None:
            raise NotImplementedError("ALiBi, sliding window, logit soft-cap and sinks are not supported")
        if attn_type != AttentionType.DECODER:
            raise NotImplementedError("decoder self-attention only")
        self.num_heads, self.head_size, self.scale = num_heads, head_size, float(scale)
        self.num_kv_heads = num_kv_heads or num_heads
        self.kv_cache_dtype = kv_cache_dtype
        self.attn_type = attn_type
        self.kv_sharing_target_layer_name = kv_sharing_target_layer_name

    def do_kv_cache_update(self, layer, key: torch.Tensor, value: torch.Tensor, kv_cache: torch.Tensor,
                           slot_mapping: torch.Tensor) -> None:
        from vllm.v1.attention.ops.triton_reshape_and_cache_flash import triton_reshape_and_cache_flash
        k_cache, v_cache = split_kv_cache(kv_cache, self.num_kv_heads, self.head_size)
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
        from . import decode
        md = attn_metadata
        k_cache, v_cache = split_kv_cache(kv_cache, self.num_kv_heads, self.head_size)
        out = output.view(-1, self.num_heads, self.head_size)
        nd, ndt, n = md.num_decodes, md.num_decode_tokens, md.num_actual_tokens
        if nd:                                     # one token per request: the tuned kernels
            q = query[:ndt].view(ndt, self.num_heads, self.head_size)
            tmp = out[:ndt] if out[:ndt].is_contiguous() else torch.empty_like(q)
            decode(tmp, q, k_cache, v_cache, self.num_kv_heads, self.scale, md.block_table[:nd],
                   md.seq_lens[:nd], md.max_seq_len)
            if tmp.data_ptr() != out[:ndt].data_ptr():
                out[:ndt].copy_(tmp)
        if md.num_prefills:                        # prefill / chunked prefill: vLLM's Triton kernel
            from vllm.v1.attention.ops.prefix_prefill import context_attention_fwd
            context_attention_fwd(
                query[ndt:n], key[ndt:n], value[ndt:n], out[ndt:n], self.kv_cache_dtype, k_cache, v_cache,
                md.block_table[nd:], md.query_start_loc[nd:] - ndt, md.seq_lens[nd:], md.max_seq_len,
                md.max_query_len, layer._k_scale, layer._v_scale, sm_scale=self.scale, causal=md.causal)
        return output


class @CLASS@(AttentionBackend):
    supported_dtypes: ClassVar[list[torch.dtype]] = [DTYPE]
    supported_kv_cache_dtypes: ClassVar[list[str]] = ["auto", "bfloat16" if DTYPE == torch.bfloat16 else "float16"]
    forward_includes_kv_cache_update: bool = False

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
        return False                               # K/V as two head groups, not blocks-first

    @classmethod
    def customize_spec(cls, spec):
        """K and V as two head groups, so each (block, KV head) tile of K (or V) is one contiguous
        run: the split 5-D/4-D layout the kernels (and vLLM's Triton ops) address."""
        from vllm.utils.torch_utils import get_dtype_size
        if spec.state_content_bytes is not None:
            return spec
        return replace(spec, num_head_slots=2,
                       state_content_bytes=spec.num_kv_heads * spec.head_size * get_dtype_size(spec.dtype))

    @classmethod
    def supported_kv_cache_layouts(cls) -> tuple[KVCacheLayout, ...]:
        return (KVCacheLayout.LHBNC, KVCacheLayout.LBHNC)   # stride-aware in the block dimension
