// Torch ops of the exported package: vLLM's old paged_attention_v1/v2 argument order, and
// decode_variant (one variant by index, or the dispatch table's pick; optional caller workspace,
// which is how the vLLM backend runs under full CUDA graphs). The dispatch table and variant list
// come from dispatch.h, rendered by `workbench export` from a study.
//
// Every op checks what the kernels assume of their arguments and raises (TORCH_CHECK) where they
// would fault: devices, dtypes, shapes, the strides the kernels address, 16-byte alignment,
// grid limits, the block table against max_seq_len. What needs the device's data (block ids,
// seq_lens <= max_seq_len) is the caller's contract, as for vLLM's own ops.
#include <algorithm>
#include <climits>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <tuple>
#include <utility>

#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/extension.h>

#include "wb_args.h"
#include "dispatch.h"   // kVariants[], kBuckets[], kBest; WB_PKG is replaced by the package name

namespace {

constexpr int kNumVariants = (int)(sizeof(kVariants) / sizeof(kVariants[0]));
constexpr int64_t kMaxSeqs = 65535;    // sequences are gridDim.y
constexpr int kMaxParts = 6144;        // the reduce keeps 2 floats per partition in 48 KB of shared memory

int pick(int64_t num_seqs, int64_t max_seq_len) {
  for (const auto& b : kBuckets) {
    if (num_seqs >= b.batch_lo && (b.batch_hi == 0 || num_seqs < b.batch_hi) &&
        max_seq_len >= b.context_lo && (b.context_hi == 0 || max_seq_len < b.context_hi))
      return b.variant;
  }
  return kBest;
}

// One flat fp32 split-K workspace holds exp_sums | max_logits | tmp_out for n = num_seqs *
// num_heads * parts rows, each part starting 16-byte aligned. The package's __init__.py
// (workspace_floats) sizes the vLLM backend's preallocated workspace with the same layout.
int64_t align4(int64_t n) { return (n + 3) / 4 * 4; }
int64_t workspace_floats(int64_t n, int64_t head) { return 2 * align4(n) + n * head; }

bool stream_capturing(cudaStream_t s) {
  cudaStreamCaptureStatus st = cudaStreamCaptureStatusNone;
  if (cudaStreamIsCapturing(s, &st) != cudaSuccess) {
    (void)cudaGetLastError();
    return true;                        // cannot tell: behave as under capture (no shared state)
  }
  return st != cudaStreamCaptureStatusNone;
}

// Fused-reduce counters of the ops' callers that pass none: one zeroed buffer per (device, stream),
// grown on demand; the kernels leave them zero. Never shared by two streams (two launches on
// different streams could otherwise count each other's partitions).
int* stream_counters(const at::Tensor& q, cudaStream_t s, int64_t n) {
  static std::mutex mu;
  static std::map<std::pair<int, cudaStream_t>, at::Tensor> per_stream;
  std::lock_guard<std::mutex> lock(mu);
  at::Tensor& t = per_stream[{q.get_device(), s}];
  if (!t.defined() || t.numel() < n) t = at::zeros({std::max<int64_t>(n, 4096)}, q.options().dtype(at::kInt));
  return t.data_ptr<int>();
}

int smem_optin(int dev) {
  int v = 0;
  if (cudaDeviceGetAttribute(&v, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev) != cudaSuccess) {
    (void)cudaGetLastError();
    v = 48 * 1024;
  }
  return v;
}
int smem_optin(const at::Tensor& t) { return smem_optin(t.get_device()); }

bool aligned16(const at::Tensor& t) { return reinterpret_cast<uintptr_t>(t.data_ptr()) % 16 == 0; }

void check_inputs(const at::Tensor& out, const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                  const at::Tensor& bt, const at::Tensor& sl, int64_t num_kv_heads, int64_t max_seq_len,
                  const VariantInfo& vi) {
  TORCH_CHECK(q.is_cuda(), "query must be a CUDA tensor");
  const auto dev = q.device();
  TORCH_CHECK(out.device() == dev && k.device() == dev && v.device() == dev && bt.device() == dev &&
              sl.device() == dev, "out, key_cache, value_cache, block_tables and seq_lens must be on ", dev,
              " with the query");
  const auto want = vi.bf16 ? at::kBFloat16 : at::kHalf;
  TORCH_CHECK(q.scalar_type() == want && k.scalar_type() == want && v.scalar_type() == want &&
              out.scalar_type() == want, "dtype: this package is built for ", vi.bf16 ? "bfloat16" : "float16");
  TORCH_CHECK(q.dim() == 3 && q.size(2) == vi.head && q.stride(2) == 1 && q.stride(1) == vi.head &&
              q.stride(0) >= 0, "query must be [num_seqs, num_heads, ", vi.head, "] with contiguous heads");
  const int64_t num_seqs = q.size(0), num_heads = q.size(1);
  TORCH_CHECK(num_seqs <= kMaxSeqs, "at most ", kMaxSeqs, " sequences per launch (got ", num_seqs, ")");
  TORCH_CHECK(out.is_contiguous() && out.sizes() == q.sizes(), "out must be contiguous, shaped like query");
  TORCH_CHECK(num_kv_heads > 0 && num_heads % num_kv_heads == 0, "num_heads (", num_heads,
              ") must be a multiple of num_kv_heads (", num_kv_heads, ")");
  // a CTA wider than the group runs one KV head with its last rows masked (GQA 7 in a CTA of 8);
  // wider than that is refused, as Variant.check_workload refuses it
  TORCH_CHECK(vi.qpc < 2 * (num_heads / num_kv_heads), "the variant's ", vi.qpc, " heads per CTA are too many for a GQA group of ",
              num_heads / num_kv_heads);
  const int64_t x = 16 / q.element_size();
  TORCH_CHECK(k.dim() == 5 && k.size(1) == num_kv_heads && k.size(2) == vi.head / x && k.size(3) == vi.block &&
              k.size(4) == x, "key_cache must be [blocks, num_kv_heads=", num_kv_heads, ", head/x=", vi.head / x,
              ", block_size=", vi.block, ", x=", x, "]");
  TORCH_CHECK(v.dim() == 4 && v.size(0) == k.size(0) && v.size(1) == num_kv_heads && v.size(2) == vi.head &&
              v.size(3) == vi.block, "value_cache must be [blocks, num_kv_heads, head=", vi.head, ", block_size=",
              vi.block, "] with as many blocks as key_cache");
  // one (block, kv head) tile of K or V is one contiguous run; block and head strides are free
  TORCH_CHECK(k.stride(4) == 1 && k.stride(3) == x && k.stride(2) == vi.block * x,
              "key_cache: each (block, kv head) tile [head/x, block, x] must be contiguous");
  TORCH_CHECK(v.stride(3) == 1 && v.stride(2) == vi.block,
              "value_cache: each (block, kv head) tile [head, block] must be contiguous");
  TORCH_CHECK(k.stride(0) == v.stride(0) && k.stride(1) == v.stride(1) && k.stride(0) >= 0 && k.stride(1) >= 0,
              "key and value caches must share block and head strides");
  const int64_t es = q.element_size();
  TORCH_CHECK(aligned16(q) && aligned16(out) && aligned16(k) && aligned16(v) && (q.stride(0) * es) % 16 == 0 &&
              (k.stride(0) * es) % 16 == 0 && (k.stride(1) * es) % 16 == 0,
              "query, out and the caches (and their sequence, block and head strides) must be 16-byte aligned");
  TORCH_CHECK(bt.scalar_type() == at::kInt && bt.dim() == 2 && bt.stride(1) == 1 && bt.stride(0) >= 0 &&
              bt.stride(0) <= INT_MAX, "block_tables must be int32 [num_seqs, max_blocks] with contiguous rows");
  TORCH_CHECK(sl.scalar_type() == at::kInt && sl.dim() == 1 && sl.stride(0) == 1,
              "seq_lens must be a contiguous int32 vector");
  TORCH_CHECK(sl.numel() == num_seqs, "seq_lens has ", sl.numel(), " entries for ", num_seqs, " sequences");
  TORCH_CHECK(bt.size(0) >= num_seqs, "block_tables has ", bt.size(0), " rows for ", num_seqs, " sequences");
  TORCH_CHECK(max_seq_len >= 0 && max_seq_len <= INT_MAX, "max_seq_len out of range: ", max_seq_len);
  TORCH_CHECK(bt.size(1) * vi.block >= max_seq_len, "block_tables rows hold ", bt.size(1), " blocks of ", vi.block,
              " tokens: fewer than max_seq_len ", max_seq_len);
}

// The split-K workspace a launch with `parts` partitions uses: vLLM's old v2 buffers when they
// are fp32 and large enough (vLLM allocated tmp_out in the output dtype: then not), else the
// caller's flat workspace when large enough, else a fresh one (also fine under CUDA-graph capture:
// torch serves it from the graph's pool).
struct Split {
  at::Tensor own;
  float* es = nullptr;
  float* ml = nullptr;
  float* to = nullptr;
  int max_parts = 1;
};

bool fp32_on(const at::Tensor* t, const at::Tensor& q) {
  return t && t->defined() && t->scalar_type() == at::kFloat && t->device() == q.device() && t->is_contiguous();
}

Split split_workspace(const at::Tensor& q, int64_t num_seqs, int64_t num_heads, int head, int parts,
                      const std::optional<at::Tensor>& workspace, at::Tensor* exp_sums, at::Tensor* max_logits,
                      at::Tensor* tmp_out) {
  Split s;
  if (fp32_on(exp_sums, q) && fp32_on(max_logits, q) && fp32_on(tmp_out, q) && exp_sums->dim() == 3 &&
      exp_sums->size(0) >= num_seqs && exp_sums->size(1) == num_heads && exp_sums->size(2) >= parts &&
      max_logits->sizes() == exp_sums->sizes() && tmp_out->dim() == 4 && tmp_out->size(0) == exp_sums->size(0) &&
      tmp_out->size(1) == num_heads && tmp_out->size(2) == exp_sums->size(2) && tmp_out->size(3) == head) {
    s.es = exp_sums->data_ptr<float>();
    s.ml = max_logits->data_ptr<float>();
    s.to = tmp_out->data_ptr<float>();
    s.max_parts = (int)exp_sums->size(2);
    return s;
  }
  const int64_t n = num_seqs * num_heads * parts, need = workspace_floats(n, head);
  float* base = nullptr;
  if (workspace.has_value() && fp32_on(&*workspace, q) && workspace->numel() >= need && aligned16(*workspace)) {
    base = workspace->data_ptr<float>();
  } else {
    s.own = at::empty({need}, q.options().dtype(at::kFloat));
    base = s.own.data_ptr<float>();
  }
  s.es = base;
  s.ml = base + align4(n);
  s.to = base + 2 * align4(n);
  s.max_parts = parts;
  return s;
}

// A split-K variant to run when `failed` (whole sequence) does not fit shared memory at this
// max_seq_len: the table's choice for this batch at long contexts if it splits, else the first
// variant that does.
int fallback_split(int failed, int64_t num_seqs, int64_t num_heads, int64_t group, int64_t max_seq_len) {
  const VariantInfo& f = kVariants[failed];
  auto ok = [&](int i) {
    const VariantInfo& c = kVariants[i];
    return i != failed && c.head == f.head && c.block == f.block && c.bf16 == f.bf16 && c.qpc < 2 * group &&
           c.split_parts((int)num_seqs, (int)num_heads, (int)max_seq_len) > 0;
  };
  const int pref = pick(num_seqs, INT_MAX);
  if (ok(pref)) return pref;
  for (int i = 0; i < kNumVariants; ++i)
    if (ok(i)) return i;
  return -1;
}

struct Call {
  at::Tensor& out;
  const at::Tensor& q;
  const at::Tensor& k;
  const at::Tensor& v;
  int64_t num_kv_heads;
  double scale;
  const at::Tensor& bt;
  const at::Tensor& sl;
  int64_t max_seq_len;
  const std::optional<at::Tensor>& workspace;
  const std::optional<at::Tensor>& counters;
  at::Tensor* exp_sums;
  at::Tensor* max_logits;
  at::Tensor* tmp_out;
  bool per_seq_split = false;
  const std::optional<at::Tensor>* schedule = nullptr;   // graph_sched variants: the step's plan (plan_schedule)
  const std::optional<at::Tensor>* k_new = nullptr;      // the step's KV-cache write, fused (all three or none)
  const std::optional<at::Tensor>* v_new = nullptr;
  const std::optional<at::Tensor>* slot_mapping = nullptr;
};

// the fused KV-cache write's tensors, checked: new K and V [num_seqs, num_kv_heads, head] in the query's
// dtype with contiguous heads (strides of their own: vLLM hands a rotated key and a value viewed in the
// qkv projection), slots int64 with >= num_seqs entries
void set_kv_new(WbArgs& a, const Call& c) {
  const bool any = (c.k_new && c.k_new->has_value()) || (c.v_new && c.v_new->has_value()) ||
                   (c.slot_mapping && c.slot_mapping->has_value());
  if (!any) return;
  TORCH_CHECK(c.k_new && c.k_new->has_value() && c.v_new && c.v_new->has_value() && c.slot_mapping &&
              c.slot_mapping->has_value(), "k_new, v_new and slot_mapping go together");
  const at::Tensor &kn = **c.k_new, &vn = **c.v_new, &sm = **c.slot_mapping;
  for (const at::Tensor* t : {&kn, &vn}) {
    TORCH_CHECK(t->dim() == 3 && t->size(0) == c.q.size(0) && t->size(1) == c.num_kv_heads &&
                t->size(2) == c.q.size(2) && t->stride(2) == 1 && t->scalar_type() == c.q.scalar_type() &&
                t->device() == c.q.device(), "k_new / v_new must be [num_seqs, num_kv_heads, head] in the query's "
                "dtype and device, heads contiguous");
  }
  TORCH_CHECK(sm.scalar_type() == at::kLong && sm.dim() == 1 && sm.is_contiguous() && sm.numel() >= c.q.size(0) &&
              sm.device() == c.q.device(), "slot_mapping must be a contiguous int64 vector of >= num_seqs slots");
  a.k_new = kn.data_ptr(); a.v_new = vn.data_ptr(); a.slot_mapping = reinterpret_cast<const long long*>(sm.data_ptr<int64_t>());
  a.new_seq_stride = kn.stride(0); a.new_head_stride = kn.stride(1);
  a.new_v_seq_stride = vn.stride(0); a.new_v_head_stride = vn.stride(1);
}

// a schedule buffer (int32, on the query's device): pointer and size, or null when absent
std::pair<int*, long long> schedule_of(const std::optional<at::Tensor>* t, const at::Tensor& q) {
  if (!t || !t->has_value()) return {nullptr, 0};
  const at::Tensor& s = **t;
  TORCH_CHECK(s.scalar_type() == at::kInt && s.device() == q.device() && s.is_contiguous() && aligned16(s),
              "schedule must be a contiguous, 16-byte aligned int32 tensor on ", q.device());
  return {s.data_ptr<int>(), (long long)s.numel()};
}

// One launch of one variant; returns its WbStatus (cuda_error: the CUDA error of a failed one).
// A split-K launch runs in two calls of the launcher: the first, without a workspace, launches
// nothing and says how many partitions it makes (auto partitions depend on the grid and the
// device); the second gets a workspace of exactly that size and launches.
int launch(int variant, const Call& c, int* cuda_error) {
  const VariantInfo& vi = kVariants[variant];
  check_inputs(c.out, c.q, c.k, c.v, c.bt, c.sl, c.num_kv_heads, c.max_seq_len, vi);
  const int64_t num_seqs = c.q.size(0), num_heads = c.q.size(1);
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream(c.q.get_device()).stream();
  int parts = 0;
  WbArgs a{};
  a.out = c.out.data_ptr(); a.q = c.q.data_ptr(); a.k = c.k.data_ptr(); a.v = c.v.data_ptr();
  a.block_tables = c.bt.data_ptr<int>(); a.seq_lens = c.sl.data_ptr<int>();
  a.q_seq_stride = c.q.stride(0); a.kv_block_stride = c.k.stride(0); a.kv_head_stride = c.k.stride(1);
  a.num_seqs = (int)num_seqs; a.num_heads = (int)num_heads; a.num_kv_heads = (int)c.num_kv_heads;
  a.max_blocks_per_seq = (int)c.bt.stride(0); a.max_seq_len = (int)c.max_seq_len; a.scale = (float)c.scale;
  a.smem_limit = smem_optin(c.q);
  a.max_parts = 1;
  a.stream = stream;
  a.cuda_error = cuda_error;
  a.parts_needed = &parts;
  a.per_seq_split = c.per_seq_split ? 1 : 0;
  std::tie(a.sched, a.sched_ints) = schedule_of(c.schedule, c.q);
  set_kv_new(a, c);
  const int st = vi.run(a);                      // whole sequence: launched (or WB_TOO_LONG) here
  if (st != WB_NEED_WORKSPACE) return st;
  TORCH_CHECK(parts > 0 && parts <= kMaxParts, "max_seq_len ", c.max_seq_len, " needs ", parts,
              " split-K partitions with variant ", variant, "; at most ", kMaxParts);
  Split s = split_workspace(c.q, num_seqs, num_heads, vi.head, parts, c.workspace, c.exp_sums, c.max_logits,
                            c.tmp_out);
  at::Tensor own_counters;
  const int64_t n = num_seqs * num_heads;        // >= num_seqs * gridDim.x
  if (c.counters.has_value()) {
    const at::Tensor& t = *c.counters;
    TORCH_CHECK(t.scalar_type() == at::kInt && t.device() == c.q.device() && t.is_contiguous() && t.numel() >= n,
                "counters must be zeroed contiguous int32 on ", c.q.device(), " with at least num_seqs * num_heads = ",
                n, " entries");
    a.counters = t.data_ptr<int>();
  } else if (stream_capturing(stream)) {
    // a fresh zeroed buffer, its zeroing captured with the launch: the graph owns it
    own_counters = at::zeros({n}, c.q.options().dtype(at::kInt));
    a.counters = own_counters.data_ptr<int>();
  } else {
    a.counters = stream_counters(c.q, stream, n);
  }
  a.exp_sums = s.es; a.max_logits = s.ml; a.tmp_out = s.to;
  a.max_parts = s.max_parts;
  return vi.run(a);
}

void run(int variant, const Call& c) {
  TORCH_CHECK(variant >= 0 && variant < kNumVariants, "no variant ", variant, " (the package has ", kNumVariants, ")");
  if (c.q.dim() == 3 && c.q.size(0) == 0) {      // an empty batch: nothing to launch (a 0-sized grid is an error)
    check_inputs(c.out, c.q, c.k, c.v, c.bt, c.sl, c.num_kv_heads, c.max_seq_len, kVariants[variant]);
    return;
  }
  const c10::cuda::CUDAGuard guard(c.q.device());
  if (c.max_seq_len == 0) {                      // every sequence is empty: zeros, as the kernels give
    check_inputs(c.out, c.q, c.k, c.v, c.bt, c.sl, c.num_kv_heads, c.max_seq_len, kVariants[variant]);
    c.out.zero_();
    return;
  }
  int err = 0;
  int st = launch(variant, c, &err);
  if (st == WB_TOO_LONG) {
    const int64_t group = c.q.size(1) / c.num_kv_heads;
    const int fb = fallback_split(variant, c.q.size(0), c.q.size(1), group, c.max_seq_len);
    TORCH_CHECK(fb >= 0, "max_seq_len ", c.max_seq_len, " does not fit variant ", variant,
                " without split-K (shared memory) and the package has no split-K variant to fall back to");
    variant = fb;
    st = launch(variant, c, &err);
  }
  TORCH_CHECK(st != WB_NEED_WORKSPACE, "variant ", variant, " needs a split-K workspace it did not get");
  TORCH_CHECK(st == WB_OK, "launch of variant ", variant, " failed (status ", st, ": ",
              err ? cudaGetErrorString((cudaError_t)err) : "unknown", ")");
}

void check_vllm_args(const std::optional<at::Tensor>& alibi, const std::string& kv_cache_dtype, int64_t block_size,
                     const VariantInfo& vi) {
  TORCH_CHECK(!alibi.has_value(), "ALiBi is not supported by this kernel");
  TORCH_CHECK(kv_cache_dtype == "auto" || kv_cache_dtype == (vi.bf16 ? "bfloat16" : "float16"),
              "kv_cache_dtype must be 'auto' (no fp8 KV cache)");
  TORCH_CHECK(block_size == vi.block, "block_size ", block_size, " but the package is built for ", vi.block);
}

const std::optional<at::Tensor> kNone;

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
  run(vid, Call{out, query, key_cache, value_cache, num_kv_heads, scale, block_tables, seq_lens, max_seq_len,
                kNone, kNone, nullptr, nullptr, nullptr});
}

// exp_sums / max_logits / tmp_out as vLLM allocated them ([num_seqs, num_heads, parts(, head)]; tmp_out
// in the output dtype): used when fp32 and large enough, else the op takes an fp32 workspace of its own.
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
  run(vid, Call{out, query, key_cache, value_cache, num_kv_heads, scale, block_tables, seq_lens, max_seq_len,
                kNone, kNone, &exp_sums, &max_logits, &tmp_out});
}

// variant < 0: the dispatch table's pick for (num_seqs, max_seq_len). max_seq_len bounds the launch
// (the grid), not each sequence: seq_lens are read on the device. workspace: flat fp32, at least
// workspace_floats(num_seqs * num_heads * parts, head); counters: zeroed int32, at least
// num_seqs * num_heads, used by one stream at a time (the kernels leave them zero).
void decode_variant(at::Tensor& out, const at::Tensor& query, at::Tensor& key_cache,
                    at::Tensor& value_cache, int64_t num_kv_heads, double scale,
                    const at::Tensor& block_tables, const at::Tensor& seq_lens, int64_t max_seq_len,
                    int64_t variant, const std::optional<at::Tensor>& workspace,
                    const std::optional<at::Tensor>& counters, bool per_seq_split,
                    const std::optional<at::Tensor>& schedule, const std::optional<at::Tensor>& k_new,
                    const std::optional<at::Tensor>& v_new, const std::optional<at::Tensor>& slot_mapping) {
  TORCH_CHECK(variant < kNumVariants, "no variant ", variant, " (the package has ", kNumVariants, ")");
  run(variant < 0 ? pick(query.size(0), max_seq_len) : (int)variant,
      Call{out, query, key_cache, value_cache, num_kv_heads, scale, block_tables, seq_lens, max_seq_len,
           workspace, counters, nullptr, nullptr, nullptr, per_seq_split, &schedule, &k_new, &v_new, &slot_mapping});
}

// The step's schedule for the captured decode launch of num_seqs sequences (the padded batch)
// bounded at max_seq_len with `variant` (graph_sched variants; a no-op for the others and where
// that launch is not scheduled), from the first seq_lens.numel() lengths. Before the graph replays.
// Whether the captured launch of num_seqs sequences bounded at max_seq_len with `variant` runs a
// schedule (so the builder plans only those steps).
bool is_scheduled(int64_t num_seqs, int64_t num_heads, int64_t num_kv_heads, int64_t max_seq_len, int64_t variant) {
  TORCH_CHECK(variant >= 0 && variant < kNumVariants, "no variant ", variant, " (the package has ", kNumVariants, ")");
  if (num_seqs < 1 || num_seqs > kMaxSeqs || num_kv_heads < 1 || num_heads % num_kv_heads || max_seq_len < 1 ||
      max_seq_len > INT_MAX)
    return false;
  WbArgs a{};                                     // no buffer: a scheduled launch answers WB_NEED_WORKSPACE
  a.num_seqs = (int)num_seqs;
  a.num_heads = (int)num_heads;
  a.num_kv_heads = (int)num_kv_heads;
  a.max_seq_len = (int)max_seq_len;
  a.smem_limit = smem_optin((int)c10::cuda::current_device());
  return kVariants[variant].plan(a) == WB_NEED_WORKSPACE;
}

void plan_schedule(at::Tensor& schedule, const at::Tensor& seq_lens, int64_t num_seqs, int64_t num_heads,
                   int64_t num_kv_heads, int64_t max_seq_len, int64_t variant) {
  TORCH_CHECK(variant >= 0 && variant < kNumVariants, "no variant ", variant, " (the package has ", kNumVariants, ")");
  TORCH_CHECK(seq_lens.is_cuda() && seq_lens.scalar_type() == at::kInt && seq_lens.dim() == 1 &&
              seq_lens.is_contiguous(), "seq_lens must be a contiguous int32 CUDA vector");
  TORCH_CHECK(num_seqs >= seq_lens.numel() && num_seqs <= kMaxSeqs, "num_seqs ", num_seqs, " must cover the ",
              seq_lens.numel(), " lengths (at most ", kMaxSeqs, ")");
  TORCH_CHECK(num_kv_heads > 0 && num_heads % num_kv_heads == 0, "num_heads must be a multiple of num_kv_heads");
  TORCH_CHECK(max_seq_len > 0 && max_seq_len <= INT_MAX, "max_seq_len out of range: ", max_seq_len);
  if (seq_lens.numel() == 0) return;
  const c10::cuda::CUDAGuard guard(seq_lens.device());
  const std::optional<at::Tensor> sch(schedule);
  WbArgs a{};
  std::tie(a.sched, a.sched_ints) = schedule_of(&sch, seq_lens);
  a.seq_lens = seq_lens.data_ptr<int>();
  a.num_seqs = (int)num_seqs;
  a.plan_seqs = (int)seq_lens.numel();
  a.num_heads = (int)num_heads;
  a.num_kv_heads = (int)num_kv_heads;
  a.max_seq_len = (int)max_seq_len;
  a.smem_limit = smem_optin(seq_lens);
  a.stream = c10::cuda::getCurrentCUDAStream(seq_lens.get_device()).stream();
  int err = 0;
  a.cuda_error = &err;
  const int st = kVariants[variant].plan(a);
  if (st == WB_NOT_SCHEDULED) return;            // that launch runs the plain grid: nothing to plan
  TORCH_CHECK(st != WB_NEED_WORKSPACE, "schedule holds ", a.sched_ints, " ints: too few for the launch of ", num_seqs,
              " sequences bounded at ", max_seq_len, " (size it with schedule_ints(rows, max_seq_len))");
  TORCH_CHECK(st == WB_OK, "plan of variant ", variant, " failed: ", err ? cudaGetErrorString((cudaError_t)err) : "unknown");
}

int64_t pick_variant(int64_t num_seqs, int64_t max_seq_len) { return pick(num_seqs, max_seq_len); }

// a captured launch (vLLM's full CUDA graphs) of num_seqs rows bounded at max_seq_len: its batch
// row's graph pick (`workbench refine`), else the table's pick at the bound (dispatch.py agrees)
int64_t pick_graph_variant(int64_t num_seqs, int64_t max_seq_len) {
  for (const auto& g : kGraphBuckets) {
    if (g.variant >= 0 && num_seqs >= g.batch_lo && (g.batch_hi == 0 || num_seqs < g.batch_hi)) return g.variant;
  }
  return pick(num_seqs, max_seq_len);
}

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
  // the caches are written when k_new / v_new / slot_mapping are given (the fused KV-cache write)
  m.def("decode_variant(Tensor(a!) out, Tensor query, Tensor(d!) key_cache, Tensor(e!) value_cache, int num_kv_heads, "
        "float scale, Tensor block_tables, Tensor seq_lens, int max_seq_len, int variant=-1, "
        "Tensor(b!)? workspace=None, Tensor(c!)? counters=None, bool per_seq_split=False, "
        "Tensor? schedule=None, Tensor? k_new=None, Tensor? v_new=None, Tensor? slot_mapping=None) -> ()");
  m.def("is_scheduled(int num_seqs, int num_heads, int num_kv_heads, int max_seq_len, int variant) -> bool",
        &is_scheduled);
  m.def("plan_schedule(Tensor(a!) schedule, Tensor seq_lens, int num_seqs, int num_heads, int num_kv_heads, "
        "int max_seq_len, int variant) -> ()");
  m.def("pick_variant(int num_seqs, int max_seq_len) -> int", &pick_variant);
  m.def("pick_graph_variant(int num_seqs, int max_seq_len) -> int", &pick_graph_variant);
}

TORCH_LIBRARY_IMPL(WB_PKG, CUDA, m) {
  m.impl("paged_attention_v1", &paged_attention_v1);
  m.impl("paged_attention_v2", &paged_attention_v2);
  m.impl("decode_variant", &decode_variant);
  m.impl("plan_schedule", &plan_schedule);
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {}
