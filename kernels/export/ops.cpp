// Torch ops of the exported package: vLLM's old paged_attention_v1/v2 argument order, and
// decode_variant (one variant by index, for tests and timing). The dispatch table and variant
// list come from dispatch.h, rendered by `workbench export` from a study.
#include <algorithm>
#include <optional>
#include <string>
#include <vector>

#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/extension.h>

#include "wb_args.h"
#include "dispatch.h"   // kVariants[], kBuckets[], kBest; WB_PKG is replaced by the package name

namespace {

int pick(int64_t num_seqs, int64_t max_seq_len) {
  for (const auto& b : kBuckets) {
    if (num_seqs >= b.batch_lo && (b.batch_hi == 0 || num_seqs < b.batch_hi) &&
        max_seq_len >= b.context_lo && (b.context_hi == 0 || max_seq_len < b.context_hi))
      return b.variant;
  }
  return kBest;
}

// Fused-reduce counters: zeroed once per device, grown on demand; the kernels leave them zero.
int* counters_for(const at::Tensor& q, int64_t n) {
  static std::vector<at::Tensor> per_device;
  const int dev = q.get_device();
  if ((int)per_device.size() <= dev) per_device.resize(dev + 1);
  at::Tensor& t = per_device[dev];
  if (!t.defined() || t.numel() < n) t = at::zeros({std::max<int64_t>(n, 4096)}, q.options().dtype(at::kInt));
  return t.data_ptr<int>();
}

int smem_optin(const at::Tensor& t) {
  int dev = t.get_device(), v = 0;
  cudaDeviceGetAttribute(&v, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev);
  return v;
}

void check_inputs(const at::Tensor& out, const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                  const at::Tensor& bt, const at::Tensor& sl, int64_t num_kv_heads, const VariantInfo& vi) {
  TORCH_CHECK(q.is_cuda() && k.is_cuda() && v.is_cuda() && out.is_cuda(), "tensors must be on a CUDA device");
  const auto want = vi.bf16 ? at::kBFloat16 : at::kHalf;
  TORCH_CHECK(q.scalar_type() == want && k.scalar_type() == want && v.scalar_type() == want &&
              out.scalar_type() == want, "dtype: this package is built for ", vi.bf16 ? "bfloat16" : "float16");
  TORCH_CHECK(q.dim() == 3 && q.size(2) == vi.head && q.stride(2) == 1 && q.stride(1) == vi.head,
              "query must be [num_seqs, num_heads, ", vi.head, "] with contiguous heads");
  TORCH_CHECK(out.is_contiguous() && out.sizes() == q.sizes(), "out must be contiguous, shaped like query");
  const int x = 16 / q.element_size();
  TORCH_CHECK(k.dim() == 5 && k.size(2) == vi.head / x && k.size(3) == vi.block && k.size(4) == x,
              "key_cache must be [blocks, kv_heads, head/x, block_size=", vi.block, ", x]");
  TORCH_CHECK(v.dim() == 4 && v.size(2) == vi.head && v.size(3) == vi.block,
              "value_cache must be [blocks, kv_heads, head, block_size]");
  TORCH_CHECK(k.stride(0) == v.stride(0) && k.stride(1) == v.stride(1), "key and value caches must share strides");
  TORCH_CHECK(bt.scalar_type() == at::kInt && bt.is_contiguous() && sl.scalar_type() == at::kInt && sl.is_contiguous(),
              "block_tables and seq_lens must be contiguous int32");
  TORCH_CHECK(num_kv_heads > 0 && q.size(1) % num_kv_heads == 0, "num_heads must be a multiple of num_kv_heads");
  TORCH_CHECK(q.size(1) / num_kv_heads >= vi.qpc, "GQA group smaller than the variant's heads per CTA");
}

void run(int variant, at::Tensor& out, const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
         int64_t num_kv_heads, double scale, const at::Tensor& bt, const at::Tensor& sl, int64_t max_seq_len,
         at::Tensor* exp_sums, at::Tensor* max_logits, at::Tensor* tmp_out) {
  TORCH_CHECK(variant >= 0 && variant < (int)(sizeof(kVariants) / sizeof(kVariants[0])), "no variant ", variant);
  const VariantInfo& vi = kVariants[variant];
  check_inputs(out, q, k, v, bt, sl, num_kv_heads, vi);
  const c10::cuda::CUDAGuard guard(q.device());
  const int num_seqs = q.size(0), num_heads = q.size(1);
  const int parts = vi.split_parts(num_seqs, num_heads, (int)max_seq_len);
  at::Tensor es, ml, to;
  if (parts > 0) {
    if (exp_sums && exp_sums->size(2) >= parts) {
      es = *exp_sums; ml = *max_logits; to = *tmp_out;
    } else {
      auto f = q.options().dtype(at::kFloat);
      es = at::empty({num_seqs, num_heads, parts}, f);
      ml = at::empty({num_seqs, num_heads, parts}, f);
      to = at::empty({num_seqs, num_heads, parts, vi.head}, f);
    }
  }
  WbArgs a{};
  a.out = out.data_ptr(); a.q = q.data_ptr(); a.k = k.data_ptr(); a.v = v.data_ptr();
  a.block_tables = bt.data_ptr<int>(); a.seq_lens = sl.data_ptr<int>();
  a.exp_sums = parts ? es.data_ptr<float>() : nullptr;
  a.max_logits = parts ? ml.data_ptr<float>() : nullptr;
  a.tmp_out = parts ? to.data_ptr<float>() : nullptr;
  a.max_parts = parts ? (int)es.size(2) : 1;
  a.counters = parts ? counters_for(q, (int64_t)num_seqs * num_heads) : nullptr;
  a.q_seq_stride = q.stride(0); a.kv_block_stride = k.stride(0); a.kv_head_stride = k.stride(1);
  a.num_seqs = num_seqs; a.num_heads = num_heads; a.num_kv_heads = (int)num_kv_heads;
  a.max_blocks_per_seq = bt.size(1); a.max_seq_len = (int)max_seq_len; a.scale = (float)scale;
  a.smem_limit = smem_optin(q);
  a.stream = c10::cuda::getCurrentCUDAStream(q.get_device()).stream();
  const int st = vi.run(a);
  TORCH_CHECK(st != WB_TOO_LONG, "max_seq_len ", max_seq_len, " is too long for variant ", variant,
              " without split-K (shared memory)");
  TORCH_CHECK(st == WB_OK, "launch of variant ", variant, " failed (status ", st, ")");
}

void check_vllm_args(const std::optional<at::Tensor>& alibi, const std::string& kv_cache_dtype, int64_t block_size,
                     const VariantInfo& vi) {
  TORCH_CHECK(!alibi.has_value(), "ALiBi is not supported by this kernel");
  TORCH_CHECK(kv_cache_dtype == "auto", "kv_cache_dtype must be 'auto' (no fp8 KV cache)");
  TORCH_CHECK(block_size == vi.block, "block_size ", block_size, " but the package is built for ", vi.block);
}

}  // namespace

void paged_attention_v1(at::Tensor& out, const at::Tensor& query, const at::Tensor& key_cache,
                        const at::Tensor& value_cache, int64_t num_kv_heads, double scale,
                        const at::Tensor& block_tables, const at::Tensor& seq_lens, int64_t block_size,
                        int64_t max_seq_len, const std::optional<at::Tensor>& alibi_slopes,
                        const std::string& kv_cache_dtype, const at::Tensor& k_scale, const at::Tensor& v_scale,
                        int64_t tp_rank, int64_t blocksparse_local_blocks, int64_t blocksparse_vert_stride,
                        int64_t blocksparse_block_size, int64_t blocksparse_head_sliding_step) {
  const int vid = pick(query.size(0), max_seq_len);
  check_vllm_args(alibi_slopes, kv_cache_dtype, block_size, kVariants[vid]);
  run(vid, out, query, key_cache, value_cache, num_kv_heads, scale, block_tables, seq_lens, max_seq_len,
      nullptr, nullptr, nullptr);
}

void paged_attention_v2(at::Tensor& out, at::Tensor& exp_sums, at::Tensor& max_logits, at::Tensor& tmp_out,
                        const at::Tensor& query, const at::Tensor& key_cache, const at::Tensor& value_cache,
                        int64_t num_kv_heads, double scale, const at::Tensor& block_tables,
                        const at::Tensor& seq_lens, int64_t block_size, int64_t max_seq_len,
                        const std::optional<at::Tensor>& alibi_slopes, const std::string& kv_cache_dtype,
                        const at::Tensor& k_scale, const at::Tensor& v_scale, int64_t tp_rank,
                        int64_t blocksparse_local_blocks, int64_t blocksparse_vert_stride,
                        int64_t blocksparse_block_size, int64_t blocksparse_head_sliding_step) {
  const int vid = pick(query.size(0), max_seq_len);
  check_vllm_args(alibi_slopes, kv_cache_dtype, block_size, kVariants[vid]);
  run(vid, out, query, key_cache, value_cache, num_kv_heads, scale, block_tables, seq_lens, max_seq_len,
      &exp_sums, &max_logits, &tmp_out);
}

void decode_variant(at::Tensor& out, const at::Tensor& query, const at::Tensor& key_cache,
                    const at::Tensor& value_cache, int64_t num_kv_heads, double scale,
                    const at::Tensor& block_tables, const at::Tensor& seq_lens, int64_t max_seq_len,
                    int64_t variant) {
  run(variant < 0 ? pick(query.size(0), max_seq_len) : (int)variant, out, query, key_cache, value_cache,
      num_kv_heads, scale, block_tables, seq_lens, max_seq_len, nullptr, nullptr, nullptr);
}

int64_t pick_variant(int64_t num_seqs, int64_t max_seq_len) { return pick(num_seqs, max_seq_len); }

TORCH_LIBRARY(WB_PKG, m) {
  m.def("paged_attention_v1(Tensor(a!) out, Tensor query, Tensor key_cache, Tensor value_cache, int num_kv_heads, "
        "float scale, Tensor block_tables, Tensor seq_lens, int block_size, int max_seq_len, Tensor? alibi_slopes, "
        "str kv_cache_dtype, Tensor k_scale, Tensor v_scale, int tp_rank=0, int blocksparse_local_blocks=0, "
        "int blocksparse_vert_stride=0, int blocksparse_block_size=64, int blocksparse_head_sliding_step=0) -> ()");
  m.def("paged_attention_v2(Tensor(a!) out, Tensor(b!) exp_sums, Tensor(c!) max_logits, Tensor(d!) tmp_out, "
        "Tensor query, Tensor key_cache, Tensor value_cache, int num_kv_heads, float scale, Tensor block_tables, "
        "Tensor seq_lens, int block_size, int max_seq_len, Tensor? alibi_slopes, str kv_cache_dtype, "
        "Tensor k_scale, Tensor v_scale, int tp_rank=0, int blocksparse_local_blocks=0, "
        "int blocksparse_vert_stride=0, int blocksparse_block_size=64, int blocksparse_head_sliding_step=0) -> ()");
  m.def("decode_variant(Tensor(a!) out, Tensor query, Tensor key_cache, Tensor value_cache, int num_kv_heads, "
        "float scale, Tensor block_tables, Tensor seq_lens, int max_seq_len, int variant=-1) -> ()");
  m.def("pick_variant(int num_seqs, int max_seq_len) -> int", &pick_variant);
}

TORCH_LIBRARY_IMPL(WB_PKG, CUDA, m) {
  m.impl("paged_attention_v1", &paged_attention_v1);
  m.impl("paged_attention_v2", &paged_attention_v2);
  m.impl("decode_variant", &decode_variant);
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {}
