// Arguments of one decode launch, shared by the torch op (ops.cpp) and every variant's launcher.
#pragma once
#include <cuda_runtime.h>

// WB_NOT_SCHEDULED: wb_plan_run for a launch that runs the plain grid (nothing to plan)
enum WbStatus { WB_OK = 0, WB_TOO_LONG = 1, WB_NEED_WORKSPACE = 2, WB_LAUNCH_FAILED = 3, WB_NOT_SCHEDULED = 4 };

struct WbArgs {
  void* out;
  const void* q;
  const void* k;
  const void* v;
  const int* block_tables;
  const int* seq_lens;
  float* exp_sums;          // split-K workspace (nullptr when the launch needs none)
  float* max_logits;
  float* tmp_out;
  int* counters;            // fused reduce: zeroed ints, one per (seq, CTA column); self-resetting.
                            // Never shared by two streams at once (ops.cpp: the caller's, or one per stream)
  long long q_seq_stride;
  long long kv_block_stride;
  long long kv_head_stride;
  int num_seqs;
  int num_heads;
  int num_kv_heads;
  int max_blocks_per_seq;   // row stride of block_tables (elements)
  int max_seq_len;          // launch bound: the grid (split-K) or the logits room (whole sequence)
  int max_parts;
  int smem_limit;           // opt-in dynamic shared memory per block of the device
  float scale;
  cudaStream_t stream;
  int* cuda_error;          // optional out: the CUDA error of a failed launch (WB_LAUNCH_FAILED)
  int* parts_needed;        // optional out: split-K partitions of this launch (set before WB_NEED_WORKSPACE,
                            // so that a caller can call once without a workspace to learn its size)
  int per_seq_split;        // auto variants: split each sequence by its own length (Params.seq_fill), for
                            // launches bounded far above the lengths (CUDA graphs captured at max_model_len)
  int* sched;               // graph_sched variants, per_seq_split: the step's schedule (wb_plan_run wrote it);
  long long sched_ints;     // its int32s (a launch the buffer cannot hold runs the plain per-sequence grid)
  int plan_seqs;            // wb_plan_run: the real sequences (num_seqs is the captured, padded batch)
  const void* k_new;        // the step's KV-cache write, fused (vLLM's forward_includes_kv_cache_update):
  const void* v_new;        // each sequence's new K and V [num_seqs, num_kv_heads, head], written at
  const long long* slot_mapping;  // slot_mapping[seq] (< 0: none) before it is read; null: not fused
  long long new_seq_stride;
  long long new_head_stride;
  long long new_v_seq_stride;
  long long new_v_head_stride;
};
