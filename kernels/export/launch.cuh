// Host side of one kernel variant, for the exported torch extension. A variant's translation
// unit defines the WB_* knobs, WB_NS and WB_SYM, includes decode.cu, then this file; it gets
// WB_SYM(wb_run), which mirrors workbench/launch.py (grid, shared memory, split-K + reduce).
#include <cuda_runtime.h>
#include "wb_args.h"

static inline bool WB_SYM(wb_uses_split_impl)(int num_seqs, int num_heads, int max_seq_len) {
#if WB_PARTITION == 0
  return false;
#elif WB_PARTITION > 0
  return true;
#else
  // vLLM's v1/v2 rule: whole sequence up to 8192 tokens when one partition suffices or the
  // batch has enough (sequence, head) pairs; split-K 512 otherwise
  const int parts = (max_seq_len + 511) / 512;
  const bool v1 = max_seq_len <= 8192 && (parts == 1 || num_seqs * num_heads > 512);
  return !v1;
#endif
}

static inline int WB_SYM(wb_smem_bytes)(int logits_tokens) {
  const int warps = WB_THREADS / 32;
#if WB_ALGO == 1
  logits_tokens = 0;   // onepass keeps no logits in shared memory
#endif
  int bytes = 4 * (2 * WB_QPC * WB_HEAD + 2 * warps * WB_QPC + WB_QPC * logits_tokens);
#if WB_STAGES > 0
  // the per-warp cp.async ring of K/V tiles, then the CTA's slice of the block table
  bytes += warps * WB_STAGES * WB_HEAD * WB_BLOCK * (int)sizeof(elem_t) + 4 * ((logits_tokens + WB_BLOCK - 1) / WB_BLOCK);
#endif
  return bytes;
}

extern "C" int WB_SYM(wb_split_parts)(int num_seqs, int num_heads, int max_seq_len) {
  if (!WB_SYM(wb_uses_split_impl)(num_seqs, num_heads, max_seq_len)) return 0;
#if WB_PARTITION > 0
  const int tokens = WB_PARTITION;
#else
  const int tokens = 512;
#endif
  return (max_seq_len + tokens - 1) / tokens;
}

// Programmatic dependent launch for the reduce kernel on sm_90+ (it waits on griddepcontrol):
// its launch overlaps the split kernel's tail. Compute capability cached per device.
static inline bool WB_SYM(wb_pdl_ok)() {
  static int major[64] = {0};
  int dev = 0;
  if (cudaGetDevice(&dev) != cudaSuccess || dev < 0 || dev >= 64) return false;
  if (major[dev] == 0 &&
      cudaDeviceGetAttribute(&major[dev], cudaDevAttrComputeCapabilityMajor, dev) != cudaSuccess)
    return false;
  return major[dev] >= 9;
}

// 0 = launched; otherwise a WbStatus code (the caller turns it into a message).
extern "C" int WB_SYM(wb_run)(const WbArgs& a) {
  WB_NS::Params p{};
  p.out = reinterpret_cast<elem_t*>(a.out);
  p.q = reinterpret_cast<const elem_t*>(a.q);
  p.k_cache = reinterpret_cast<const elem_t*>(a.k);
  p.v_cache = reinterpret_cast<const elem_t*>(a.v);
  p.block_tables = a.block_tables;
  p.seq_lens = a.seq_lens;
  p.q_seq_stride = a.q_seq_stride;
  p.kv_block_stride = a.kv_block_stride;
  p.kv_head_stride = a.kv_head_stride;
  p.num_heads = a.num_heads;
  p.num_kv_heads = a.num_kv_heads;
  p.max_blocks_per_seq = a.max_blocks_per_seq;
  p.scale = a.scale;
  const int group = a.num_heads / a.num_kv_heads;
  const dim3 block(WB_THREADS);
  const int grid_x = a.num_kv_heads * ((group + WB_QPC - 1) / WB_QPC);
  const int parts = WB_SYM(wb_split_parts)(a.num_seqs, a.num_heads, a.max_seq_len);
  if (parts == 0) {
#if WB_PARTITION == 0 || WB_PARTITION == -1
    p.logits_len = (a.max_seq_len + WB_BLOCK - 1) / WB_BLOCK * WB_BLOCK;
    p.max_parts = 1;
    const int smem = WB_SYM(wb_smem_bytes)(p.logits_len);
    if (smem > a.smem_limit) return WB_TOO_LONG;
    if (smem > 48 * 1024 &&
        cudaFuncSetAttribute(WB_SYM(wb_decode_full), cudaFuncAttributeMaxDynamicSharedMemorySize, smem) != cudaSuccess)
      return WB_LAUNCH_FAILED;
    WB_SYM(wb_decode_full)<<<dim3(grid_x, a.num_seqs, 1), block, smem, a.stream>>>(p);
#endif
  } else {
#if WB_PARTITION != 0
    if (!a.exp_sums || !a.max_logits || !a.tmp_out || a.max_parts < parts) return WB_NEED_WORKSPACE;
#if WB_FUSED_REDUCE
    if (!a.counters) return WB_NEED_WORKSPACE;
#endif
    p.counters = a.counters;
    p.exp_sums = a.exp_sums;
    p.max_logits = a.max_logits;
    p.tmp_out = a.tmp_out;
    p.max_parts = a.max_parts;
    p.logits_len = WB_SPLIT_TOKENS;
    const int smem = WB_SYM(wb_smem_bytes)(p.logits_len);
    if (smem > 48 * 1024 &&
        cudaFuncSetAttribute(WB_SYM(wb_decode_split), cudaFuncAttributeMaxDynamicSharedMemorySize, smem) != cudaSuccess)
      return WB_LAUNCH_FAILED;
    WB_SYM(wb_decode_split)<<<dim3(grid_x, a.num_seqs, parts), block, smem, a.stream>>>(p);
#if !WB_FUSED_REDUCE
    if (WB_SYM(wb_pdl_ok)()) {
      cudaLaunchConfig_t cfg = {};
      cfg.gridDim = dim3(a.num_heads, a.num_seqs, 1);
      cfg.blockDim = dim3(128);
      cfg.dynamicSmemBytes = 8 * a.max_parts;
      cfg.stream = a.stream;
      cudaLaunchAttribute attr[1];
      attr[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
      attr[0].val.programmaticStreamSerializationAllowed = 1;
      cfg.attrs = attr;
      cfg.numAttrs = 1;
      if (cudaLaunchKernelEx(&cfg, WB_SYM(wb_reduce), p) != cudaSuccess) return WB_LAUNCH_FAILED;
    } else {
      WB_SYM(wb_reduce)<<<dim3(a.num_heads, a.num_seqs, 1), 128, 8 * a.max_parts, a.stream>>>(p);
    }
#endif
#endif
  }
  return cudaPeekAtLastError() == cudaSuccess ? WB_OK : WB_LAUNCH_FAILED;
}
