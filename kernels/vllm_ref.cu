// vLLM's own paged-attention decode kernel (vLLM 0.10.2, the version the paper patched), as a
// *reference measurement* only: the fidelity of `baseline` / `paper` and the "vs vLLM" column of
// `workbench bench` are measured against it in our own harness (same cold-L2 timing, same ncu).
//
// This file is ours; vLLM's kernel source is not in this repository. workbench/vllm_ref.py
// fetches vLLM's pinned sdist (sha256-checked), extracts csrc/attention, and compiles this file
// against it with stub torch headers. The entry points take workbench's Params (the same struct
// as kernels/decode.cu), so the Python launcher drives it like any variant.
//
// WB_PF_DIST > 0 inserts, at build time, the paper's change into vLLM's two block loops: the
// warp's lane 0 issues cp.async.bulk.prefetch.L2 for the K (resp. V) tile WB_PF_DIST
// iterations ahead (see WB_VLLM_PREFETCH in workbench/vllm_ref.py's patch).

#include <stdint.h>
#include "attention/attention_kernels.cuh"

#ifndef WB_HEAD
#error "WB_HEAD must be defined"
#endif
#ifndef WB_BLOCK
#error "WB_BLOCK must be defined"
#endif
#ifndef WB_THREADS
#error "WB_THREADS must be defined"
#endif
#ifndef WB_PARTITION
#error "WB_PARTITION must be defined"
#endif
#ifndef WB_PF_DIST
#define WB_PF_DIST 0
#endif

#if WB_DTYPE == 0
typedef uint16_t wb_scalar;           // vLLM's type for fp16
#else
typedef __nv_bfloat16 wb_scalar;
#endif

namespace wbref {
struct Params {                      // must match kernels/decode.cu and workbench/launch.py
  void* out;
  float* exp_sums;
  float* max_logits;
  float* tmp_out;
  const void* q;
  const void* k_cache;
  const void* v_cache;
  const int* block_tables;
  const int* seq_lens;
  long long q_seq_stride;
  long long kv_block_stride;
  long long kv_head_stride;
  int num_heads;
  int num_kv_heads;
  int max_blocks_per_seq;
  int max_parts;
  int logits_len;
  float scale;
  int* counters;
};
}  // namespace wbref

#define WB_VLLM_ARGS(p)                                                                             \
  reinterpret_cast<const wb_scalar*>(p.q), reinterpret_cast<const wb_scalar*>(p.k_cache),           \
      reinterpret_cast<const wb_scalar*>(p.v_cache), p.num_kv_heads, p.scale, p.block_tables,       \
      p.seq_lens, p.max_blocks_per_seq, nullptr, (int)p.q_seq_stride, (int)p.kv_block_stride,       \
      (int)p.kv_head_stride, nullptr, nullptr, 0, 0, 0, 0, 0

// No __launch_bounds__: vLLM's kernels have none, and register allocation is part of what we
// want to reproduce.
#if WB_PARTITION == 0 || WB_PARTITION == -1
extern "C" __global__ void wb_decode_full(const wbref::Params p) {
  vllm::paged_attention_kernel<wb_scalar, wb_scalar, WB_HEAD, WB_BLOCK, WB_THREADS,
                               vllm::Fp8KVCacheDataType::kAuto, false>(
      nullptr, nullptr, reinterpret_cast<wb_scalar*>(p.out), WB_VLLM_ARGS(p));
}
#endif

#if WB_PARTITION != 0
#if WB_PARTITION == -1
#define WB_SPLIT_TOKENS 512
#else
#define WB_SPLIT_TOKENS WB_PARTITION
#endif
// vLLM keeps the partial outputs in the 16-bit type: tmp_out is reinterpreted (it is larger).
extern "C" __global__ void wb_decode_split(const wbref::Params p) {
  vllm::paged_attention_kernel<wb_scalar, wb_scalar, WB_HEAD, WB_BLOCK, WB_THREADS,
                               vllm::Fp8KVCacheDataType::kAuto, false, WB_SPLIT_TOKENS>(
      p.exp_sums, p.max_logits, reinterpret_cast<wb_scalar*>(p.tmp_out), WB_VLLM_ARGS(p));
}

// (the fetch step turns vLLM's __global__ reduce into a __device__ function so it can be wrapped)
extern "C" __global__ void wb_reduce(const wbref::Params p) {
  // vLLM launches its reduce with the decode kernel's 128 threads, grid (num_heads, num_seqs)
  vllm::paged_attention_v2_reduce_kernel<wb_scalar, WB_HEAD, WB_THREADS, WB_SPLIT_TOKENS>(
      reinterpret_cast<wb_scalar*>(p.out), p.exp_sums, p.max_logits,
      reinterpret_cast<const wb_scalar*>(p.tmp_out), p.seq_lens, p.max_parts);
}
#endif
