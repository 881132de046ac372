// Paged-attention decode kernel family for workbench.
//
// One source, many variants: every knob is a preprocessor constant (WB_*), so each variant is
// its own cubin and the compiler sees constant trip counts everywhere.
//
// Layout (vLLM's paged cache):
//   query  [num_seqs, num_heads, HEAD]            (seq stride passed in; heads contiguous)
//   keys   [num_blocks, num_kv_heads, HEAD/X, BLOCK, X]   X = 16 / sizeof(elem)
//   values [num_blocks, num_kv_heads, HEAD, BLOCK]
//   out    [num_seqs, num_heads, HEAD]            (contiguous)
// so the K (or V) tile of one (block, kv head) is one contiguous run of HEAD*BLOCK elements:
// exactly one bulk L2 prefetch.
//
// Algorithm "twopass" (the shape of vLLM's kernel, written here from the idea):
//   one CTA = (group of WB_QPC query heads sharing one KV head, sequence, partition);
//   pass 1: warps take KV blocks round-robin, compute q.k for all WB_QPC heads from one load of
//           the K tile, store logits in shared memory and track the running max;
//   softmax: exponentiate in shared memory, block-reduce the sums;
//   pass 2: warps take KV blocks again, accumulate p*v for all heads from one load of the V
//           tile, reduce across warps in shared memory.
//   With split-K (WB_PARTITION > 0) each partition writes a normalised partial output plus its
//   max and exp-sum, and wb_reduce combines them.
//
// Stages (WB_STAGES >= 2, twopass): each warp keeps S-1 of its next tiles in flight with
// cp.async into a per-warp ring in shared memory, so loads no longer wait on the dot products and
// cost no registers; every lane copies exactly the 16-byte chunks it later reads (no warp sync).
// The first V tiles are issued before the softmax, hiding the pass switch. The CTA's block-table
// entries are staged in shared memory once.
//
// Tensor cores (WB_MMA, twopass with stages, block 16): per staged tile, the warp computes
// S^T (16 tokens x 8 heads) = K_tile . Q^T with mma.sync m16n8k16 (K rows straight from the ring by
// ldmatrix: a tile's K layout [HEAD/8][16][8] is the A operand, Q the B operand held in registers,
// the GQA group padded to 8 heads), and O^T (16 dims x 8 heads) += V_tile . P^T (the V tile
// [HEAD][16] is the A operand, probabilities from the logits rounded to the 16-bit type). Fewer
// than a tenth of the CUDA-core path's instructions per tile, so the cp.async ring stays full.
//
// Prefetch: lane 0 of a warp issues cp.async.bulk.prefetch.L2.global for the tile that warp
// will read WB_PF_DIST iterations later (K in pass 1, V in pass 2); pre-Hopper targets can use
// per-line prefetch.global.L2 spread over the warp instead.

#include <stdint.h>   // no cuda_fp16.h / cuda_bf16.h: they dominate compile time

#ifndef WB_HEAD
#error "WB_HEAD must be defined"
#endif
#ifndef WB_BLOCK
#error "WB_BLOCK must be defined"
#endif
#ifndef WB_DTYPE            // 0 = fp16, 1 = bf16
#error "WB_DTYPE must be defined"
#endif
#ifndef WB_THREADS
#error "WB_THREADS must be defined"
#endif
#ifndef WB_QPC              // query heads per CTA
#error "WB_QPC must be defined"
#endif
#ifndef WB_PARTITION        // 0 = no split-K, >0 = tokens per partition, -1 = vLLM's v1/v2 rule,
                            // -2 = auto: tokens per partition chosen per launch (Params.part_tokens)
#error "WB_PARTITION must be defined"
#endif
#ifndef WB_PF_DIST          // prefetch distance in warp iterations, 0 = off
#define WB_PF_DIST 0
#endif
#ifndef WB_PF_K
#define WB_PF_K 0
#endif
#ifndef WB_PF_V
#define WB_PF_V 0
#endif
#ifndef WB_PF_OP            // 0 = cp.async.bulk.prefetch.L2 (sm_90+), 1 = prefetch.global.L2 lines
#define WB_PF_OP 0
#endif
#ifndef WB_PF_HINT          // 0 = none, 1 = evict_first, 2 = evict_last
#define WB_PF_HINT 0
#endif
#ifndef WB_KLOAD8           // 1 = K read as vLLM does: 8-byte vectors, two lanes per token (block 16)
#define WB_KLOAD8 0
#endif
#ifndef WB_SERIAL           // 1 = one KV block in flight per warp (no unrolling of the block loops)
#define WB_SERIAL 0
#endif
#ifndef WB_VLLM_MATH        // 1 = vLLM's operand precision: q kept 16-bit (converted at each use,
#define WB_VLLM_MATH 0      //     k_load 8 path), probabilities rounded to 16-bit before p.V
#endif
#ifndef WB_ALGO             // 0 = twopass (logits in shared memory), 1 = onepass (online softmax)
#define WB_ALGO 0
#endif
#ifndef WB_FUSED_REDUCE     // 1 = split-K partials combined by the last CTA of each (seq, head group)
#define WB_FUSED_REDUCE 0
#endif
#ifndef WB_STAGES           // 0 = K/V read into registers; S >= 2 = each warp streams its tiles through
#define WB_STAGES 0         //     an S-deep ring in shared memory with cp.async (S-1 tiles in flight)
#endif
#ifndef WB_UNIFIED          // 1 = one cp.async ring for both passes (stages): V tiles in flight before K ends
#define WB_UNIFIED 0
#endif
#ifndef WB_GRAPH_WALK       // 1 = the split kernel walks a long sequence's partitions (Params.grid_parts);
#define WB_GRAPH_WALK 0     //     compiled in only when asked: a default build stays v6's kernel
#endif
#ifndef WB_GRAPH_SCHED      // 1 = graph-bound launches take their (sequence, partition) items from a schedule
#define WB_GRAPH_SCHED 0    //     planned per step on the device (wb_plan, Params.sched); only when asked
#endif
#if WB_GRAPH_SCHED && WB_GRAPH_WALK
#error "WB_GRAPH_SCHED and WB_GRAPH_WALK are two answers to one problem: build one"
#endif
#ifndef WB_MMA              // 1 = QK and PV on tensor cores (mma.sync m16n8k16, twopass with stages, block 16)
#define WB_MMA 0
#endif
// Where a CTA has a cp.async ring (twopass with stages, onepass on tensor cores) and a warp's slice of
// it holds the warp's fp32 accumulators (16-bit elements: stages x block (x 2 onepass) >= 2 x heads),
// its warps' accumulators are merged through their ring slices (free once the loop is done), not by
// atomicAdd into shared memory (decode_body's merge)
#if ((WB_STAGES > 0 && WB_ALGO == 0 && WB_STAGES * WB_BLOCK >= 2 * WB_QPC) || \
     (WB_ALGO == 1 && WB_MMA && WB_STAGES * WB_BLOCK >= WB_QPC))
#define WB_RING_MERGE 1
#else
#define WB_RING_MERGE 0
#endif
#ifndef WB_FAULT            // test-only: 0 none, 1 write out of bounds, 2 wrong values, 3 hang
#define WB_FAULT 0
#endif

// Several variants can live in one binary (the exported torch extension): each translation unit
// then defines WB_NS (namespace of its device code) and WB_SYM (suffix of its entry points).
#ifndef WB_NS
#define WB_NS wb
#endif
#ifndef WB_SYM
#define WB_SYM(name) name
#endif

// Elements are raw 16-bit words; conversions are single PTX instructions (sm_80+).
typedef uint16_t elem_t;

static __device__ __forceinline__ float2 to_float2(uint32_t packed) {
#if WB_DTYPE == 0
  float lo, hi;
  asm("{.reg .b16 l, h;\n mov.b32 {l, h}, %2;\n cvt.f32.f16 %0, l;\n cvt.f32.f16 %1, h;\n}"
      : "=f"(lo), "=f"(hi) : "r"(packed));
  return make_float2(lo, hi);
#else
  return make_float2(__uint_as_float(packed << 16), __uint_as_float(packed & 0xffff0000u));
#endif
}
static __device__ __forceinline__ float to_float(elem_t v) {
  return to_float2((uint32_t)v).x;
}
static __device__ __forceinline__ elem_t from_float(float v) {
  uint16_t r;
#if WB_DTYPE == 0
  asm("cvt.rn.f16.f32 %0, %1;" : "=h"(r) : "f"(v));
#else
  asm("cvt.rn.bf16.f32 %0, %1;" : "=h"(r) : "f"(v));
#endif
  return r;
}

// WB_TRACE (scripts/probe_chain.py only, never a variant knob): thread 0 of each CTA stamps the
// global timer at points of its life (WB_T; WB_TW: every warp's lane 0), the reduce's CTAs at theirs (WB_TR), so a probe can see
// which dependent round trip a small launch waits on. Expands to nothing otherwise.
#if WB_TRACE
#define WB_TRACE_CTAS 4096
extern "C" {
__device__ unsigned long long wb_trace[WB_TRACE_CTAS * 24];
__device__ unsigned long long wb_trace_red[WB_TRACE_CTAS * 4];
}
static __device__ __forceinline__ unsigned long long wb_now() {
  unsigned long long t;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
  return t;
}
static __device__ __forceinline__ unsigned wb_smid() {
  unsigned s;
  asm volatile("mov.u32 %0, %%smid;" : "=r"(s));
  return s;
}
// the stamping thread (who) writes `value` to slot `slot` of this CTA's row of n in buf
#define WB_PUT(who, buf, n, slot, value)                                                        \
  do {                                                                                          \
    if (who) {                                                                                  \
      const unsigned c_ = blockIdx.x + gridDim.x * (blockIdx.y + gridDim.y * blockIdx.z);       \
      if (c_ < WB_TRACE_CTAS) buf[c_ * n + (slot)] = (value);                                   \
    }                                                                                           \
  } while (0)
#define WB_STAMP(who, buf, n, slot) WB_PUT(who, buf, n, slot, wb_now())
#define WB_T(i) WB_STAMP(threadIdx.x == 0, wb_trace, 24, i)
#define WB_TW(i) WB_STAMP(threadIdx.x % 32 == 0, wb_trace, 24, (i) + threadIdx.x / 32)   // slots i .. i + 7
#define WB_TR(i) WB_STAMP(threadIdx.x == 0, wb_trace_red, 4, i)
// slot 18: the SM the CTA ran on, + 1 (a value, not a time: whether late CTAs share SMs)
#define WB_TSM() WB_PUT(threadIdx.x == 0, wb_trace, 24, 18, wb_smid() + 1)
#else
#define WB_TSM() do {} while (0)
#define WB_T(i) do {} while (0)
#define WB_TW(i) do {} while (0)
#define WB_TR(i) do {} while (0)
#endif

namespace WB_NS {

constexpr int HEAD = WB_HEAD;
constexpr int BLOCK = WB_BLOCK;
constexpr int NT = WB_THREADS;
constexpr int NW = NT / 32;
constexpr int QPC = WB_QPC;
// per-warp softmax stats, padded to an even count so the logits after them stay 16-byte
// aligned for float4 reads (odd warps x odd heads per CTA would misalign them)
constexpr int NWQ = (NW * QPC + 1) & ~1;
constexpr int X = 16 / sizeof(elem_t);        // elements per 16-byte chunk
constexpr int NCH = HEAD / X;                 // 16-byte chunks per key row (one token)
constexpr int TG = 32 / BLOCK;                // lanes that share one token in pass 1
constexpr int CPT = NCH / TG;                 // K chunks per lane per block
constexpr int CR = BLOCK / X;                 // 16-byte chunks per value row (one head dim)
constexpr int RPL = HEAD * CR / 32;           // V chunks (= rows) per lane per block
constexpr int ROW_STEP = 32 / CR;             // row distance between a lane's chunks
constexpr int TILE_BYTES = HEAD * BLOCK * (int)sizeof(elem_t);

static_assert(NT % 32 == 0 && NT >= 64 && NT <= 1024, "threads per CTA");
static_assert(32 % BLOCK == 0 || BLOCK == 32, "block size must divide a warp");
static_assert(NCH % TG == 0, "head size vs block size");
static_assert((HEAD * CR) % 32 == 0, "head size vs block size (pass 2)");
static_assert(TILE_BYTES % 16 == 0, "bulk prefetch needs a multiple of 16 bytes");

struct Chunk8 { float v[8]; };

__device__ __forceinline__ Chunk8 unpack(const uint4 raw) {
  Chunk8 c;
  const uint32_t w[4] = {raw.x, raw.y, raw.z, raw.w};
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    float2 f = to_float2(w[i]);
    c.v[2 * i] = f.x;
    c.v[2 * i + 1] = f.y;
  }
  return c;
}

__device__ __forceinline__ uint4 load16(const elem_t* p) {
  return *reinterpret_cast<const uint4*>(p);
}

__device__ __forceinline__ void cp_async16(void* smem_dst, const void* gmem_src) {
  const uint32_t d = (uint32_t)__cvta_generic_to_shared(smem_dst);
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;" ::"r"(d), "l"(gmem_src) : "memory");
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;" ::: "memory"); }
template <int N>
__device__ __forceinline__ void cp_async_wait() { asm volatile("cp.async.wait_group %0;" ::"n"(N) : "memory"); }

#if WB_MMA
static_assert(WB_BLOCK == 16, "tensor-core path: block size 16");
static_assert(WB_QPC <= 8, "tensor-core path: at most 8 query heads per CTA (the n = 8 of m16n8k16)");
static_assert(WB_HEAD % 16 == 0, "tensor-core path: head size a multiple of 16");
static_assert(WB_STAGES >= 2 && !WB_KLOAD8 && !WB_VLLM_MATH,
              "tensor-core path: a cp.async ring, 16-byte K loads, full-precision q");
static_assert(WB_ALGO == 0 || (!WB_UNIFIED && WB_PF_DIST == 0 && !WB_FUSED_REDUCE),
              "onepass tensor-core path: its ring holds K and V together, no L2 prefetch, the reduce kernel");
// four 8x8 16-bit matrices from shared memory; lane l gives the address of row l % 8 of matrix l / 8
__device__ __forceinline__ void ldsm_x4(uint32_t (&r)[4], uint32_t addr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(addr));
}
// c += a . b, 16x16 (row) times 16x8 (col), fp32 accumulators
__device__ __forceinline__ void mma16816(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
#if WB_DTYPE == 0
  asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};"
#else
  asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};"
#endif
               : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}
// two floats as one 16-bit pair, lo in the low half (the lower k index of an mma operand)
__device__ __forceinline__ uint32_t pack2(float lo, float hi) {
  uint32_t r;
#if WB_DTYPE == 0
  asm("cvt.rn.f16x2.f32 %0, %1, %2;" : "=r"(r) : "f"(hi), "f"(lo));
#else
  asm("cvt.rn.bf16x2.f32 %0, %1, %2;" : "=r"(r) : "f"(hi), "f"(lo));
#endif
  return r;
}
// keep the 16-bit halves of a token pair (t, t + 1) that are below `valid` tokens
__device__ __forceinline__ uint32_t keep_tokens(uint32_t x, int t, int valid) {
  return t + 1 < valid ? x : (t < valid ? (x & 0xffffu) : 0u);
}
// the queries as an mma fragment for each 16-dim step: lane (g, c) holds head g's dims 2c, 2c+1
// and 2c+8, 2c+9 (zeros for heads past the CTA's). The B operand of S^T = K . Q^T (twopass) and
// the A operand's rows of S = Q . K^T (onepass) take the same registers.
template <int QPC_, int HEAD_>
__device__ __forceinline__ void q_fragments(const float* q_s, int mg, int mc, uint32_t (&qf)[HEAD_ / 16][2]) {
#pragma unroll
  for (int ks = 0; ks < HEAD_ / 16; ++ks) {
    qf[ks][0] = qf[ks][1] = 0u;
    if (mg < QPC_) {
      const float* qr = q_s + mg * HEAD_ + ks * 16 + 2 * mc;
      qf[ks][0] = pack2(qr[0], qr[1]);
      qf[ks][1] = pack2(qr[8], qr[9]);
    }
  }
}
// O^T (HEAD dims x 8 heads) += V^T . P^T for one staged V tile [HEAD][16] at shared address vaddr
// (this lane's ldmatrix row), pb0/pb1 = P^T's fragment (head g, tokens 2c, 2c+1 / 2c+8, 2c+9);
// vt = valid tokens of the tile: padding may hold NaN, and 0 * NaN is NaN
// RESCALE (onepass): O^T's columns (heads 2c, 2c+1) scaled by ca, cb first, in the same loop
template <int HEAD_, int BLOCK_, bool RESCALE = false>
__device__ __forceinline__ void pv_mma(float (&o_acc)[HEAD_ / 16][4], uint32_t vaddr, int vt, int mc,
                                       uint32_t pb0, uint32_t pb1, float ca = 1.f, float cb = 1.f) {
#pragma unroll
  for (int m = 0; m < HEAD_ / 16; ++m) {
    uint32_t a[4];
    ldsm_x4(a, vaddr + m * 16 * BLOCK_ * 2);
    if (vt < BLOCK_) {
      a[0] = keep_tokens(a[0], 2 * mc, vt);
      a[1] = keep_tokens(a[1], 2 * mc, vt);
      a[2] = keep_tokens(a[2], 2 * mc + 8, vt);
      a[3] = keep_tokens(a[3], 2 * mc + 8, vt);
    }
    if (RESCALE) { o_acc[m][0] *= ca; o_acc[m][1] *= cb; o_acc[m][2] *= ca; o_acc[m][3] *= cb; }
    mma16816(o_acc[m], a, pb0, pb1);
  }
}
#endif

// ---- L2 prefetch of one contiguous tile --------------------------------------------------
__device__ __forceinline__ void prefetch_tile(const elem_t* tile, int lane) {
#if WB_PF_DIST > 0
#if WB_PF_OP == 0
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 900
#error "cp.async.bulk.prefetch.L2 needs sm_90 or newer"
#endif
  if (lane == 0) {
#if WB_PF_HINT == 0
    asm volatile("cp.async.bulk.prefetch.L2.global [%0], %1;" ::"l"(tile), "r"(TILE_BYTES) : "memory");
#else
    uint64_t policy;
#if WB_PF_HINT == 1
    asm volatile("createpolicy.fractional.L2::evict_first.b64 %0, 1.0;" : "=l"(policy));
#else
    asm volatile("createpolicy.fractional.L2::evict_last.b64 %0, 1.0;" : "=l"(policy));
#endif
    asm volatile("cp.async.bulk.prefetch.L2.global.L2::cache_hint [%0], %1, %2;" ::"l"(tile),
                 "r"(TILE_BYTES), "l"(policy) : "memory");
#endif
  }
#else
  // one 128-byte line per lane per step
  const char* base = reinterpret_cast<const char*>(tile);
#pragma unroll
  for (int off = lane * 128; off < TILE_BYTES; off += 32 * 128) {
#if WB_PF_HINT == 0
    asm volatile("prefetch.global.L2 [%0];" ::"l"(base + off));
#elif WB_PF_HINT == 2
    asm volatile("prefetch.global.L2::evict_last [%0];" ::"l"(base + off));
#else
#error "prefetch.global.L2 has no evict_first form"
#endif
  }
#endif
#endif
}

struct Params {
  elem_t* out;                 // [num_seqs, num_heads, HEAD]
  float* exp_sums;             // [num_seqs, num_heads, max_parts]      (split-K only)
  float* max_logits;           // [num_seqs, num_heads, max_parts]      (split-K only)
  float* tmp_out;              // [num_seqs, num_heads, max_parts, HEAD] (split-K only)
  const elem_t* q;
  const elem_t* k_cache;
  const elem_t* v_cache;
  const int* block_tables;     // [num_seqs, max_blocks_per_seq]
  const int* seq_lens;         // [num_seqs]
  long long q_seq_stride;      // elements
  long long kv_block_stride;   // elements
  long long kv_head_stride;    // elements
  int num_heads;
  int num_kv_heads;
  int max_blocks_per_seq;
  int max_parts;
  int logits_len;              // tokens of logits room in shared memory (multiple of BLOCK)
  float scale;
  int* counters;               // [num_seqs, gridDim.x], zero, self-resetting (fused reduce only)
  int part_tokens;             // tokens per partition when WB_PARTITION == -2 (auto), else unused
  int seq_fill;                // auto only; 0: every sequence splits in part_tokens tokens. > 0: per
                               // sequence (seq_part_tokens), for launches bounded far above the real
                               // lengths (a CUDA graph captured for the model's longest sequence)
  int grid_parts;              // seq_fill > 0 only; 0: the split grid has a CTA per partition of the
                               // launch bound. Z > 0: gridDim.z = Z < that, and a sequence needing
                               // more than Z partitions takes a multiple of Z, each CTA walking its
                               // share (seq_part_tokens, wb_decode_split)
  const int* sched;            // WB_GRAPH_SCHED graph-bound launches: the step's schedule (wb_plan), else null
  int sched_key;               // the launch shape the schedule must have been planned for (else: fallback)
  int sched_seqs;              // sequences of the launch (its grid's y is the schedule's slots)
  // The step's KV-cache write, fused (vLLM's forward_includes_kv_cache_update): each sequence's new
  // token, K and V [num_seqs, num_kv_heads, HEAD] (strides in elements), written at slot_mapping[seq]
  // (block * BLOCK + offset; < 0: a padded row, nothing written) by the CTAs whose range ends at the
  // sequence's last token, before they read that block. Null slot_mapping: the cache is written elsewhere.
  const elem_t* k_new;
  const elem_t* v_new;
  const long long* slot_mapping;
  long long new_seq_stride;    // k_new's
  long long new_head_stride;
  long long new_v_seq_stride;  // v_new's (vLLM's value is a view of the qkv projection, its key a
  long long new_v_head_stride; // rotated copy: their strides differ)
};

// Whether the step's schedule was planned for this launch (wb_decode_sched and wb_reduce_sched
// must agree): its key, and a partition within the launch's shared memory. Otherwise neither
// trusts it and both fall back to the launch's own partition size.
__device__ __forceinline__ bool sched_trusted(const Params& P) {
  return P.sched[2] == P.sched_key && P.sched[1] <= P.logits_len;
}

#if WB_GRAPH_SCHED
// One work item of a scheduled graph-bound launch: a sequence's partition, with its length and
// partition size, so a CTA knows its token range from one 16-byte load (wb_plan writes them).
// len < 0: read seq_lens; ptok <= 0: seq_part_tokens (the non-graph launches).
struct Item { int seq, part, len, ptok; };
#define WB_SCHED_HDR 4             // ints before the items: n_items, part tokens, key, longest length
// what wb_plan needs to know of the launch it plans for (LoadedVariant.sched_shape / wb_sched_shape)
struct PlanParams {
  const int* seq_lens;         // [num_seqs], the step's (padded slots 0)
  int* sched;                  // header + items + one slot's worth of sentinels
  int num_seqs;
  int pt_cap;                  // the launch's partition size: its shared memory (Params.logits_len)
  int slots;                   // CTAs of the split kernel resident at once at that shared memory
  int grid_x;                  // CTAs per item (kv-head groups)
  int cap;                     // the grid's item slots (gridDim.y)
  int max_parts;               // workspace partitions per sequence
  int key;                     // Params.sched_key of that launch
  int wave_tokens;             // the plan's fixed cost of a wave of CTAs, in tokens (SCHED_WAVE_TOKENS)
  int whole_max;               // an about-uniform batch runs whole only up to this longest length (0: any)
};
#if WB_PARTITION != -2 || WB_FUSED_REDUCE
#error "WB_GRAPH_SCHED: auto partitions and the reduce kernel only (Variant.graph_forms_apply)"
#endif
#endif

// Tokens per partition of one sequence. seq_fill = 0: the launch's part_tokens. seq_fill = F > 0:
// the sequence takes min(F, ceil(len / 256)) partitions (F = partitions per sequence that fill one
// wave of the GPU, chosen by the host for this grid), 64-token multiples, never more than
// part_tokens (the shared memory the launch sized): so a 1k-token batch replayed in a graph
// captured for 32k tokens splits as finely as a launch for 1k would. A sequence too long for F
// partitions of part_tokens takes partitions of part_tokens; on a walking grid (grid_parts = Z > 0,
// fewer partitions than the bound needs) it takes n = ceil(len / part_tokens) equal ones, or when
// n > Z, Z * ceil(n / Z) (at most max_parts, the workspace's), so the Z CTAs walk equal shares. The
// reduce kernels recompute the same number from the same length.
__device__ __forceinline__ int seq_part_tokens(const Params& P, int seq_len) {
  if (P.seq_fill <= 0 || seq_len <= 0) return P.part_tokens;
  int parts = max(1, min(P.seq_fill, (seq_len + 255) / 256));
#if WB_GRAPH_WALK
  if (P.grid_parts > 0 && seq_len > parts * P.part_tokens) {     // a walking grid
    parts = (seq_len + P.part_tokens - 1) / P.part_tokens;
    const int z = P.grid_parts;
    if (parts > z) parts = min(P.max_parts, (parts + z - 1) / z * z);
  }
#endif
  const int t = ((seq_len + parts - 1) / parts + 63) / 64 * 64;
  return min(t, P.part_tokens);
}

// dot[h] += q[h] . k over this lane's CPT 16-byte chunks of one key row (both algorithms)
__device__ __forceinline__ void qk_dot(const uint4 (&raw)[CPT], const float* q_s, int grp, float (&dot)[QPC]) {
#pragma unroll
  for (int i = 0; i < CPT; ++i) {
    const Chunk8 k = unpack(raw[i]);
    const int d0 = (grp + TG * i) * X;
#pragma unroll
    for (int h = 0; h < QPC; ++h) {
      const float4 qa = *reinterpret_cast<const float4*>(q_s + h * HEAD + d0);
      const float4 qb = *reinterpret_cast<const float4*>(q_s + h * HEAD + d0 + 4);
      dot[h] += qa.x * k.v[0] + qa.y * k.v[1] + qa.z * k.v[2] + qa.w * k.v[3] +
                qb.x * k.v[4] + qb.y * k.v[5] + qb.z * k.v[6] + qb.w * k.v[7];
    }
  }
}

// the CTA's sum for head h of every warp's figure in shared memory ([NW][QPC])
__device__ __forceinline__ float warps_sum(const float* per_warp, int h) {
  float s = 0.f;
  for (int w = 0; w < NW; ++w) s += per_warp[w * QPC + h];
  return s;
}

// acc[h][row] += p[h][:8] . v over this lane's RPL value rows (8 tokens from `slot` on).
// Padding slots of a cache block may hold anything (NaN included), and 0 * NaN is NaN: zero them.
__device__ __forceinline__ void pv_acc(const uint4 (&raw)[RPL], const float (&p)[QPC][8], int slot, int valid_tok,
                                       float (&acc)[QPC][RPL]) {
  const bool tail = slot + X > valid_tok;
#pragma unroll
  for (int i = 0; i < RPL; ++i) {
    Chunk8 v = unpack(raw[i]);
    if (tail) {
#pragma unroll
      for (int j = 0; j < 8; ++j) v.v[j] = slot + j < valid_tok ? v.v[j] : 0.f;
    }
#pragma unroll
    for (int h = 0; h < QPC; ++h) {
      float a = acc[h][i];
#pragma unroll
      for (int j = 0; j < 8; ++j) a += p[h][j] * v.v[j];
      acc[h][i] = a;
    }
  }
}

// Shared memory: q[QPC][HEAD] | acc[QPC][HEAD] | stats[2][NW][QPC] | logits[QPC][logits_len]
//                [| ring[NW][STAGES][HEAD*BLOCK] elems | block table[logits_len / BLOCK] ints]
// The CTA's kv-head group and sequence are blockIdx.x and .y; bz its partition: blockIdx.z, or the
// one a walking graph-bound CTA is on next (wb_decode_split with Params.grid_parts)
template <int PARTITION>
#if WB_GRAPH_SCHED
__device__ __forceinline__ void decode_body(const Params& P, int bz, const Item it) {
#else
__device__ __forceinline__ void decode_body(const Params& P, int bz) {
#endif
  WB_T(0);
  WB_TSM();
  extern __shared__ float4 smem_raw[];
  float* q_s = reinterpret_cast<float*>(smem_raw);
  float* acc_s = q_s + QPC * HEAD;
  float* warp_max = acc_s + QPC * HEAD;
  float* warp_sum = warp_max + NWQ;
  float* logits = warp_sum + NWQ;

  const int tid = threadIdx.x;
  const int warp = tid / 32;
  const int lane = tid % 32;
  const int group = P.num_heads / P.num_kv_heads;
  const int chunks_per_group = (group + QPC - 1) / QPC;
  const int kvh = blockIdx.x / chunks_per_group;
  const int head0 = kvh * group + (blockIdx.x % chunks_per_group) * QPC;
  const int nheads = min(QPC, kvh * group + group - head0);   // valid heads in this CTA
#if WB_GRAPH_SCHED
  const int seq = it.seq;
  const int part = it.part;
  const int seq_len = it.len >= 0 ? it.len : P.seq_lens[seq];
#else
  const int seq = blockIdx.y;
  const int part = bz;
  const int seq_len = P.seq_lens[seq];
#endif
  // PARTITION: 0 whole sequence, > 0 compile-time split, < 0 split of P.part_tokens tokens
  constexpr bool kSplit = PARTITION != 0;

  // Loads that do not need the sequence's length are issued before it arrives: the queries, and
  // the CTA's slice of the block table when its token range is known without the length (every
  // launch but a graph-bound one, whose partition size follows the length). The first K tile then
  // waits two dependent DRAM round trips (length | table -> tile), not four (length -> table ->
  // queries -> tile): at b1 x 1k a CTA's whole life is ~10 of them.
  constexpr int QPT = (QPC * HEAD + NT - 1) / NT;
  float q_early[QPT];
#pragma unroll
  for (int j = 0; j < QPT; ++j) {
    const int i = tid + j * NT, h = i / HEAD;
    q_early[j] = i < QPC * HEAD && h < nheads
                     ? to_float(P.q[(long long)seq * P.q_seq_stride + (long long)head0 * HEAD + i]) : 0.f;
  }
  // the fused KV write's slot and values, read early too (they need only seq and kvh): read after
  // the length, as first written, they were two more dependent round trips before this CTA's first
  // tile (probe_fused_write.py: +2.8 / +4.8 us at b32 / b64 x 1k)
  constexpr int NWT = (HEAD + NT - 1) / NT;           // new-token elements per thread
  long long new_slot = -1;
  elem_t new_k[NWT], new_v[NWT];
  if (P.slot_mapping != nullptr) {
    new_slot = P.slot_mapping[seq];
    const long long ks = (long long)seq * P.new_seq_stride + (long long)kvh * P.new_head_stride;
    const long long vs = (long long)seq * P.new_v_seq_stride + (long long)kvh * P.new_v_head_stride;
#pragma unroll
    for (int j = 0; j < NWT; ++j) {
      const int d = tid + j * NT;
      if (d < HEAD) { new_k[j] = P.k_new[ks + d]; new_v[j] = P.v_new[vs + d]; }
    }
  }
#if WB_STAGES > 0 && WB_ALGO == 0
  constexpr int BTS = 2;                              // table entries per thread read early
#if WB_GRAPH_SCHED
  const bool bt_early = PARTITION > 0 || PARTITION == 0 || P.seq_fill <= 0 || it.ptok > 0;
  const int bt_blk0 = !kSplit ? 0 : part * (PARTITION > 0 ? PARTITION : it.ptok > 0 ? it.ptok : P.part_tokens) / BLOCK;
#else
  const bool bt_early = PARTITION > 0 || PARTITION == 0 || P.seq_fill <= 0;
  const int bt_blk0 = !kSplit ? 0 : part * (PARTITION > 0 ? PARTITION : P.part_tokens) / BLOCK;
#endif
  int bt_reg[BTS];
#pragma unroll
  for (int j = 0; j < BTS; ++j) {
    const int b = bt_blk0 + tid + j * NT;
    bt_reg[j] = bt_early && b < P.max_blocks_per_seq ? P.block_tables[(long long)seq * P.max_blocks_per_seq + b] : 0;
  }
#endif
#if WB_GRAPH_SCHED
  const int ptok = PARTITION > 0 ? PARTITION : it.ptok > 0 ? it.ptok : seq_part_tokens(P, seq_len);
#else
  const int ptok = PARTITION > 0 ? PARTITION : seq_part_tokens(P, seq_len);
#endif

  if (seq_len <= 0) {
    // an empty sequence (vLLM pads CUDA-graph batches with them): zeros, no block-table read.
    // Split launches leave it to the reduce, unless this kernel reduces itself (fused).
    if (!kSplit || (WB_FUSED_REDUCE && part == 0)) {
      for (int i = threadIdx.x; i < nheads * HEAD; i += NT)
        P.out[((long long)seq * P.num_heads + head0) * HEAD + i] = from_float(0.f);
    }
    return;
  }
  int tok_begin = 0, tok_end = seq_len;
  if (kSplit) {
    tok_begin = part * ptok;
    if (tok_begin >= seq_len) return;            // nothing of this sequence here
    tok_end = min(seq_len, tok_begin + ptok);
  }
  const int blk_begin = tok_begin / BLOCK;
  const int blk_end = (tok_end + BLOCK - 1) / BLOCK;
  const int ntok = (blk_end - blk_begin) * BLOCK;    // logits slots used (whole blocks)
  const int* bt = P.block_tables + (long long)seq * P.max_blocks_per_seq;
  if (P.slot_mapping != nullptr && tok_end == seq_len) {
    // the new token, written where this CTA will read it; CTAs of one KV head write the same values.
    // The condition is the same for the whole CTA, so is the barrier.
    if (new_slot >= 0) {
      const long long blk = new_slot / BLOCK, off = new_slot % BLOCK;
      const long long base = blk * P.kv_block_stride + (long long)kvh * P.kv_head_stride;
      elem_t* kc = const_cast<elem_t*>(P.k_cache);
      elem_t* vc = const_cast<elem_t*>(P.v_cache);
#pragma unroll
      for (int j = 0; j < NWT; ++j) {
        const int d = tid + j * NT;
        if (d < HEAD) {
          kc[base + (d / X) * BLOCK * X + off * X + d % X] = new_k[j];   // K [.., HEAD/X, BLOCK, X]
          vc[base + (long long)d * BLOCK + off] = new_v[j];             // V [.., HEAD, BLOCK]
        }
      }
    }
    __threadfence_block();
    __syncthreads();
  }
#if WB_STAGES > 0 && WB_ALGO == 0
  constexpr int TILE = HEAD * BLOCK;                  // elements of one K or V tile
  elem_t* ring = reinterpret_cast<elem_t*>(logits + QPC * P.logits_len) + warp * WB_STAGES * TILE;
  int* bt_s = reinterpret_cast<int*>(reinterpret_cast<elem_t*>(logits + QPC * P.logits_len) + NW * WB_STAGES * TILE);
  {
    const int nblk = blk_end - blk_begin;
    const bool have = bt_early && blk_begin == bt_blk0;   // equal whenever bt_early; checked anyway
#pragma unroll
    for (int j = 0; j < BTS; ++j)
      if (have && tid + j * NT < nblk) bt_s[tid + j * NT] = bt_reg[j];
    for (int i = tid + (have ? BTS * NT : 0); i < nblk; i += NT) bt_s[i] = bt[blk_begin + i];
  }
  bt = bt_s - blk_begin;                              // same indexing as the global table
  const int nmine = (blk_end - blk_begin - warp + NW - 1) / NW;   // blocks this warp takes
#endif

  // load queries (zeros for heads past the group), clear accumulators
#pragma unroll
  for (int j = 0; j < QPT; ++j) {
    const int i = tid + j * NT;
    if (i >= QPC * HEAD) break;
    const float v = q_early[j];
#if WB_VLLM_MATH
    reinterpret_cast<elem_t*>(q_s)[i] = from_float(v);   // 16-bit, as vLLM keeps it
#else
    q_s[i] = v;
#endif
    acc_s[i] = 0.f;
  }
  __syncthreads();
  WB_T(1);

  const elem_t* k_head = P.k_cache + (long long)kvh * P.kv_head_stride;
  const elem_t* v_head = P.v_cache + (long long)kvh * P.kv_head_stride;

#if WB_ALGO == 0
  // ---- pass 1: logits --------------------------------------------------------------------
  const int tok_in_blk = lane % BLOCK;
  const int grp = lane / BLOCK;
  float run_max[QPC];
#pragma unroll
  for (int h = 0; h < QPC; ++h) run_max[h] = -INFINITY;

#if WB_MMA
  // B operand of S^T = K . Q^T for each 16-dim step: lane (g = lane / 4, c = lane % 4) holds head g's
  // dims 2c, 2c+1 and 2c+8, 2c+9 (zeros for heads past the CTA's); logits land for heads 2c, 2c+1
  const int mg = lane >> 2, mc = lane & 3;
  uint32_t qf[HEAD / 16][2];
  q_fragments<QPC, HEAD>(q_s, mg, mc, qf);
  float rmax0 = -INFINITY, rmax1 = -INFINITY;         // heads 2c, 2c+1
#endif
#if WB_STAGES > 0
  // this lane's chunks of a K tile (the same offsets are copied and read)
  auto k_off = [&](int i) { return ((grp + TG * i) * BLOCK + tok_in_blk) * X; };
#if WB_UNIFIED
  // one ring for both passes: ring tile g < nmine is K block g, g >= nmine is V block g - nmine,
  // so the first V tiles are in flight while the warp still works on its last K tiles and the
  // V pass starts without waiting a DRAM round trip after the softmax
  const int vpart_ = lane % CR, row0_ = lane / CR;
  auto v_off = [&](int i) { return (row0_ + ROW_STEP * i) * BLOCK + vpart_ * X; };
  auto issue_k = [&](int g) {
    elem_t* dst = ring + (g % WB_STAGES) * TILE;
    if (g < nmine) {
      const elem_t* src = k_head + (long long)bt[blk_begin + warp + g * NW] * P.kv_block_stride;
#pragma unroll
      for (int i = 0; i < CPT; ++i) cp_async16(dst + k_off(i), src + k_off(i));
    } else if (g < 2 * nmine) {
      const elem_t* src = v_head + (long long)bt[blk_begin + warp + (g - nmine) * NW] * P.kv_block_stride;
#pragma unroll
      for (int i = 0; i < RPL; ++i) cp_async16(dst + v_off(i), src + v_off(i));
    }
    cp_async_commit();                 // empty groups keep the count uniform
  };
  auto issue_v = [&](int j) { issue_k(nmine + j); };
  const int vslot0 = nmine;            // ring index of V block 0
#else
  auto issue_k = [&](int j) {
    if (j < nmine) {
      const elem_t* src = k_head + (long long)bt[blk_begin + warp + j * NW] * P.kv_block_stride;
      elem_t* dst = ring + (j % WB_STAGES) * TILE;
#pragma unroll
      for (int i = 0; i < CPT; ++i) cp_async16(dst + k_off(i), src + k_off(i));
    }
    cp_async_commit();                 // empty groups keep the count uniform
  };
#endif
#pragma unroll
  for (int j = 0; j < WB_STAGES - 1; ++j) issue_k(j);
#endif
#if WB_SERIAL
#pragma unroll 1
#endif
  for (int b = blk_begin + warp; b < blk_end; b += NW) {
#if WB_PF_DIST > 0 && WB_PF_K
    {
      const int pb = b + WB_PF_DIST * NW;
      if (pb < blk_end) prefetch_tile(k_head + (long long)bt[pb] * P.kv_block_stride, lane);
    }
#endif
#if WB_STAGES > 0
    const int jj = (b - blk_begin - warp) / NW;
#if WB_MMA || WB_UNIFIED
    __syncwarp();                      // every lane is done reading the slot about to be refilled
#endif
    issue_k(jj + WB_STAGES - 1);
    cp_async_wait<WB_STAGES - 1>();
    if (jj == 0) WB_T(2);
#if WB_MMA
    __syncwarp();                      // ldmatrix reads rows other lanes copied
#endif
    const elem_t* kp = ring + (jj % WB_STAGES) * TILE;   // the staged tile (shared memory)
#else
    const elem_t* kp = k_head + (long long)bt[b] * P.kv_block_stride;
#endif
#if WB_MMA
    {
      // rows of step ks: chunks 2ks, 2ks+1 x 16 tokens, 512 contiguous bytes; lane l's row at l * 16 B
      float c[4] = {0.f, 0.f, 0.f, 0.f};
      const uint32_t kaddr = (uint32_t)__cvta_generic_to_shared(kp) + lane * 16;
#pragma unroll
      for (int ks = 0; ks < HEAD / 16; ++ks) {
        uint32_t a[4];
        ldsm_x4(a, kaddr + ks * 512);
        mma16816(c, a, qf[ks][0], qf[ks][1]);
      }
      // c[0], c[1]: token g, heads 2c, 2c+1; c[2], c[3]: token g + 8
      if (2 * mc < QPC) {
        const int t0 = b * BLOCK + mg;
#pragma unroll
        for (int r = 0; r < 4; ++r) {
          const int h = 2 * mc + (r & 1);
          const int tok = t0 + 8 * (r >> 1);
          const float l = tok < tok_end ? c[r] * P.scale : -INFINITY;
          if (h < QPC) {
            logits[h * P.logits_len + (tok - blk_begin * BLOCK)] = l;
            if (r & 1) rmax1 = fmaxf(rmax1, l); else rmax0 = fmaxf(rmax0, l);
          }
        }
      }
    }
#else
    float dot[QPC];
#pragma unroll
    for (int h = 0; h < QPC; ++h) dot[h] = 0.f;
#if WB_KLOAD8 && WB_BLOCK == 16
    // vLLM's thread-group read: each of a token's two lanes takes one 8-byte half of every chunk
    uint2 raw8[NCH];
#pragma unroll
    for (int j = 0; j < NCH; ++j)
      raw8[j] = *reinterpret_cast<const uint2*>(kp + (j * BLOCK + tok_in_blk) * X + grp * (X / 2));
#pragma unroll
    for (int j = 0; j < NCH; ++j) {
      const float2 a = to_float2(raw8[j].x), c = to_float2(raw8[j].y);
      const int d0 = j * X + grp * (X / 2);
#pragma unroll
      for (int h = 0; h < QPC; ++h) {
#if WB_VLLM_MATH
        const uint2 q4 = *reinterpret_cast<const uint2*>(reinterpret_cast<const elem_t*>(q_s) + h * HEAD + d0);
        const float2 q0 = to_float2(q4.x), q1 = to_float2(q4.y);
        dot[h] += q0.x * a.x + q0.y * a.y + q1.x * c.x + q1.y * c.y;
#else
        const float4 qa = *reinterpret_cast<const float4*>(q_s + h * HEAD + d0);
        dot[h] += qa.x * a.x + qa.y * a.y + qa.z * c.x + qa.w * c.y;
#endif
      }
    }
#else
    uint4 raw[CPT];
#pragma unroll
    for (int i = 0; i < CPT; ++i) raw[i] = load16(kp + ((grp + TG * i) * BLOCK + tok_in_blk) * X);
    qk_dot(raw, q_s, grp, dot);
#endif
#pragma unroll
    for (int m = BLOCK; m < 32; m *= 2) {
#pragma unroll
      for (int h = 0; h < QPC; ++h) dot[h] += __shfl_xor_sync(0xffffffffu, dot[h], m);
    }
    if (grp == 0) {
      const int tok = b * BLOCK + tok_in_blk;
      const bool valid = tok < tok_end;
#pragma unroll
      for (int h = 0; h < QPC; ++h) {
        const float l = valid ? dot[h] * P.scale : -INFINITY;
        logits[h * P.logits_len + (tok - blk_begin * BLOCK)] = l;
        run_max[h] = fmaxf(run_max[h], l);
      }
    }
#endif
  }
#if WB_MMA
#pragma unroll
  for (int h = 0; h < QPC; ++h) run_max[h] = h == 2 * mc ? rmax0 : (h == 2 * mc + 1 ? rmax1 : -INFINITY);
#endif

  WB_T(3);
#if WB_STAGES > 0 && !WB_UNIFIED
  // drain the K ring (only empty groups can remain), then start the first V tiles now so they
  // land during the softmax
  const int vslot0 = 0;
  cp_async_wait<0>();
  __syncwarp();                        // V chunks of a lane overwrite K chunks other lanes read
  const int vpart_ = lane % CR, row0_ = lane / CR;
  auto v_off = [&](int i) { return (row0_ + ROW_STEP * i) * BLOCK + vpart_ * X; };
  auto issue_v = [&](int j) {
    if (j < nmine) {
      const elem_t* src = v_head + (long long)bt[blk_begin + warp + j * NW] * P.kv_block_stride;
      elem_t* dst = ring + (j % WB_STAGES) * TILE;
#pragma unroll
      for (int i = 0; i < RPL; ++i) cp_async16(dst + v_off(i), src + v_off(i));
    }
    cp_async_commit();
  };
#pragma unroll
  for (int j = 0; j < WB_STAGES - 1; ++j) issue_v(j);
#endif

  // ---- softmax ---------------------------------------------------------------------------
#pragma unroll
  for (int h = 0; h < QPC; ++h) {
    float m = run_max[h];
#pragma unroll
    for (int o = 16; o > 0; o /= 2) m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, o));
    if (lane == 0) warp_max[warp * QPC + h] = m;
  }
  __syncthreads();
  WB_T(17);
  float head_max[QPC];
#pragma unroll
  for (int h = 0; h < QPC; ++h) {
    float m = -INFINITY;
    for (int w = 0; w < NW; ++w) m = fmaxf(m, warp_max[w * QPC + h]);
    head_max[h] = m;
  }
  const int valid_tok = tok_end - blk_begin * BLOCK;   // slots at or past this are padding
#pragma unroll
  for (int h = 0; h < QPC; ++h) {
    float s = 0.f;
    for (int t = tid; t < ntok; t += NT) {
      const float e = t < valid_tok ? __expf(logits[h * P.logits_len + t] - head_max[h]) : 0.f;
      logits[h * P.logits_len + t] = e;
      s += e;
    }
#pragma unroll
    for (int o = 16; o > 0; o /= 2) s += __shfl_xor_sync(0xffffffffu, s, o);
    if (lane == 0) warp_sum[warp * QPC + h] = s;
  }
  __syncthreads();
  float head_sum[QPC];
#pragma unroll
  for (int h = 0; h < QPC; ++h) {
    float s = 0.f;
    for (int w = 0; w < NW; ++w) s += warp_sum[w * QPC + h];
    head_sum[h] = s;
  }

  WB_T(4);
  // ---- pass 2: p @ V ---------------------------------------------------------------------
#if WB_MMA
  float o_acc[HEAD / 16][4];           // O^T: dims 16m + g (+8) x heads 2c, 2c+1
#pragma unroll
  for (int m = 0; m < HEAD / 16; ++m) o_acc[m][0] = o_acc[m][1] = o_acc[m][2] = o_acc[m][3] = 0.f;
#else
  const int vpart = lane % CR;          // which 16-byte slice of a value row
  const int row0 = lane / CR;
  float acc[QPC][RPL];
#pragma unroll
  for (int h = 0; h < QPC; ++h)
#pragma unroll
    for (int i = 0; i < RPL; ++i) acc[h][i] = 0.f;
#endif

#if WB_SERIAL
#pragma unroll 1
#endif
  for (int b = blk_begin + warp; b < blk_end; b += NW) {
#if WB_PF_DIST > 0 && WB_PF_V
    {
      const int pb = b + WB_PF_DIST * NW;
      if (pb < blk_end) prefetch_tile(v_head + (long long)bt[pb] * P.kv_block_stride, lane);
    }
#endif
#if WB_STAGES > 0
    const int jj = (b - blk_begin - warp) / NW;
#if WB_MMA || WB_UNIFIED
    __syncwarp();                      // unified: the slot refilled may have held a K tile other lanes read
#endif
    issue_v(jj + WB_STAGES - 1);
    cp_async_wait<WB_STAGES - 1>();
    if (jj == 0) WB_T(5);
#if WB_MMA
    __syncwarp();
#endif
    const elem_t* vp = ring + ((vslot0 + jj) % WB_STAGES) * TILE;
#else
    const elem_t* vp = v_head + (long long)bt[b] * P.kv_block_stride;
#endif
#if WB_MMA
    {
      // B = P^T: lane holds head g's probabilities of tokens 2c, 2c+1 and 2c+8, 2c+9 of this block
      const int tb = (b - blk_begin) * BLOCK;
      uint32_t pb0 = 0u, pb1 = 0u;
      if (mg < QPC) {
        const float* pr = logits + mg * P.logits_len + tb + 2 * mc;
        const float2 x = *reinterpret_cast<const float2*>(pr);
        const float2 y = *reinterpret_cast<const float2*>(pr + 8);
        pb0 = pack2(x.x, x.y);
        pb1 = pack2(y.x, y.y);
      }
      // A = V^T rows: dims 16m + (l % 16), tokens 8 * (l / 16) onwards (16 B each)
      const uint32_t vaddr = (uint32_t)__cvta_generic_to_shared(vp) + ((lane & 15) * 16 + (lane >> 4) * 8) * 2;
      pv_mma<HEAD, BLOCK>(o_acc, vaddr, valid_tok - tb, mc, pb0, pb1);
    }
#else
    uint4 raw[RPL];
#pragma unroll
    for (int i = 0; i < RPL; ++i) raw[i] = load16(vp + (row0 + ROW_STEP * i) * BLOCK + vpart * X);
    const int slot = (b - blk_begin) * BLOCK + vpart * X;     // first of this lane's 8 tokens
    float p[QPC][8];
#pragma unroll
    for (int h = 0; h < QPC; ++h) {
      const float4 pa = *reinterpret_cast<const float4*>(logits + h * P.logits_len + slot);
      const float4 pb = *reinterpret_cast<const float4*>(logits + h * P.logits_len + slot + 4);
      p[h][0] = pa.x; p[h][1] = pa.y; p[h][2] = pa.z; p[h][3] = pa.w;
      p[h][4] = pb.x; p[h][5] = pb.y; p[h][6] = pb.z; p[h][7] = pb.w;
#if WB_VLLM_MATH
#pragma unroll
      for (int j = 0; j < 8; ++j) p[h][j] = to_float(from_float(p[h][j]));   // vLLM's 16-bit probabilities
#endif
    }
    pv_acc(raw, p, slot, valid_tok, acc);
#endif
  }
  WB_T(6);
  WB_TW(8);
#elif WB_MMA
  // ---- onepass on tensor cores: each warp streams its blocks once through a cp.async ring whose
  // slots hold a block's K and V tiles, with a running max / sum per head (online softmax). No
  // logits in shared memory, so a CTA's footprint is its ring whatever the partition: the twopass
  // logits (4 B x heads x tokens) held GQA-7/8 CTAs to 1-2 per SM. S = Q . K^T puts Q in the A
  // operand (rows: heads, padded to 16) and leaves each lane head g's logits at tokens 2c, 2c+1
  // (+8): exactly the B operand (P^T) of O^T += V^T . P^T, so probabilities never leave registers.
  const int valid_tok = tok_end - blk_begin * BLOCK;   // slots at or past this are padding
  const int mg = lane >> 2, mc = lane & 3;
  constexpr int TILE = HEAD * BLOCK;                  // elements of one K or V tile
  elem_t* ring = reinterpret_cast<elem_t*>(warp_sum + NWQ) + warp * WB_STAGES * 2 * TILE;
  const int nmine = (blk_end - blk_begin - warp + NW - 1) / NW;   // blocks this warp takes
  // A operand (row-major 16 x 16 per 16-dim step): lane (g, c) holds head g's dims 2c, 2c+1 (a0) and
  // 2c+8, 2c+9 (a2); rows g + 8 are padding heads (a1 = a3 = 0)
  uint32_t qa[HEAD / 16][2];
  q_fragments<QPC, HEAD>(q_s, mg, mc, qa);
  float o_acc[HEAD / 16][4];           // O^T: dims 16m + g (+8) x heads 2c, 2c+1
#pragma unroll
  for (int m = 0; m < HEAD / 16; ++m) o_acc[m][0] = o_acc[m][1] = o_acc[m][2] = o_acc[m][3] = 0.f;
  float m_run = -INFINITY, l_run = 0.f;  // head g's running max, and this lane's share of its sum
  // the warp's block-table entries, a window of 32 per register (lane l: the warp's block base + l),
  // the next window loaded 32 tiles ahead so a tile's copy never waits on a table read
  auto table_window = [&](int base) {
    return base + lane < nmine ? bt[blk_begin + warp + (base + lane) * NW] : 0;
  };
  int bt_cur = table_window(0), bt_nxt = table_window(32);
  auto issue = [&](int j) {            // warp-uniform j, strictly increasing from 0
    if (j < nmine) {
      if ((j & 31) == 0 && j > 0) { bt_cur = bt_nxt; bt_nxt = table_window(j + 32); }
      const long long boff = (long long)__shfl_sync(0xffffffffu, bt_cur, j & 31) * P.kv_block_stride;
      elem_t* dst = ring + (j % WB_STAGES) * 2 * TILE;
#pragma unroll
      for (int i = 0; i < TILE / X / 32; ++i) {
        const int o = (i * 32 + lane) * X;
        cp_async16(dst + o, k_head + boff + o);
        cp_async16(dst + TILE + o, v_head + boff + o);
      }
    }
    cp_async_commit();
  };
#pragma unroll
  for (int j = 0; j < WB_STAGES - 1; ++j) issue(j);
  // ldmatrix rows of S's B operand (K[token][dims]): matrix i = lane / 8 is chunk 2ks + (i & 1),
  // tokens 8 (i >> 1) + lane % 8; a chunk is 16 tokens x 8 dims, 16 B per token
  const uint32_t k_lane = ((((lane >> 3) & 1) * 16 + (lane >> 4) * 8 + (lane & 7)) * 16);
  const uint32_t v_lane = ((lane & 15) * 16 + (lane >> 4) * 8) * 2;
#if WB_SERIAL
#pragma unroll 1
#endif
  for (int jj = 0; jj < nmine; ++jj) {
    const int b = blk_begin + warp + jj * NW;
    __syncwarp();                      // every lane is done reading the slot about to be refilled
    issue(jj + WB_STAGES - 1);
    cp_async_wait<WB_STAGES - 1>();
    if (jj == 0) WB_T(2);
    __syncwarp();                      // ldmatrix reads rows other lanes copied
    const uint32_t kaddr = (uint32_t)__cvta_generic_to_shared(ring + (jj % WB_STAGES) * 2 * TILE);
    float s0[4] = {0.f, 0.f, 0.f, 0.f}, s1[4] = {0.f, 0.f, 0.f, 0.f};   // tokens 0-7, 8-15
#pragma unroll
    for (int ks = 0; ks < HEAD / 16; ++ks) {
      uint32_t r[4];
      ldsm_x4(r, kaddr + ks * 512 + k_lane);
      const uint32_t a[4] = {qa[ks][0], 0u, qa[ks][1], 0u};
      mma16816(s0, a, r[0], r[1]);
      mma16816(s1, a, r[2], r[3]);
    }
    // head g's logits at tokens 2c, 2c+1, 2c+8, 2c+9 of this block
    const int tb = (b - blk_begin) * BLOCK;
    const int vt = valid_tok - tb;     // valid tokens of this block
    const float l0 = 2 * mc < vt ? s0[0] * P.scale : -INFINITY;
    const float l1 = 2 * mc + 1 < vt ? s0[1] * P.scale : -INFINITY;
    const float l2 = 2 * mc + 8 < vt ? s1[0] * P.scale : -INFINITY;
    const float l3 = 2 * mc + 9 < vt ? s1[1] * P.scale : -INFINITY;
    float tmax = fmaxf(fmaxf(l0, l1), fmaxf(l2, l3));  // token 0 of a block is always valid: finite
    tmax = fmaxf(tmax, __shfl_xor_sync(0xffffffffu, tmax, 1));
    tmax = fmaxf(tmax, __shfl_xor_sync(0xffffffffu, tmax, 2));
    const float m_new = fmaxf(m_run, tmax);
    const float corr = __expf(m_run - m_new);          // 0 on the first block (m_run = -inf)
    const float p0 = __expf(l0 - m_new), p1 = __expf(l1 - m_new), p2 = __expf(l2 - m_new), p3 = __expf(l3 - m_new);
    l_run = l_run * corr + (p0 + p1) + (p2 + p3);
    m_run = m_new;
    // O^T's columns are heads 2c, 2c+1: their corrections live on the lanes of those heads
    const float ca = __shfl_sync(0xffffffffu, corr, 8 * mc), cb = __shfl_sync(0xffffffffu, corr, 8 * mc + 4);
    const uint32_t pb0 = pack2(p0, p1), pb1 = pack2(p2, p3);
    pv_mma<HEAD, BLOCK, true>(o_acc, kaddr + TILE * 2 + v_lane, vt, mc, pb0, pb1, ca, cb);
  }
  cp_async_wait<0>();                  // only empty groups remain
  WB_T(6);
  WB_TW(8);
  // merge warps: common max per head, each warp's sum and O^T columns rescaled to it
  l_run += __shfl_xor_sync(0xffffffffu, l_run, 1);
  l_run += __shfl_xor_sync(0xffffffffu, l_run, 2);
  if (mc == 0 && mg < QPC) warp_max[warp * QPC + mg] = m_run;
  __syncthreads();
  WB_T(17);
  float head_max[QPC], head_sum[QPC];
  float fg = 0.f;                      // exp(this warp's max - the CTA's) for head g
#pragma unroll
  for (int h = 0; h < QPC; ++h) {
    float mx = -INFINITY;
    for (int w = 0; w < NW; ++w) mx = fmaxf(mx, warp_max[w * QPC + h]);
    head_max[h] = mx;
    if (h == mg) fg = m_run == -INFINITY ? 0.f : __expf(m_run - mx);
  }
  if (mc == 0 && mg < QPC) warp_sum[warp * QPC + mg] = l_run * fg;
  {
    const float fa = __shfl_sync(0xffffffffu, fg, 8 * mc), fb = __shfl_sync(0xffffffffu, fg, 8 * mc + 4);
#pragma unroll
    for (int m = 0; m < HEAD / 16; ++m) { o_acc[m][0] *= fa; o_acc[m][1] *= fb; o_acc[m][2] *= fa; o_acc[m][3] *= fb; }
  }
  __syncthreads();
#pragma unroll
  for (int h = 0; h < QPC; ++h) head_sum[h] = warps_sum(warp_sum, h);
#else
  // ---- onepass: each warp streams its blocks once, K and V of a block loaded together, with a
  // running max / sum per head (online softmax); warps are merged at the end. No logits array:
  // shared memory does not grow with the context.
  const int valid_tok = tok_end - blk_begin * BLOCK;   // slots at or past this are padding
  const int tok_in_blk = lane % BLOCK;
  const int grp = lane / BLOCK;
  const int vpart = lane % CR;          // which 16-byte slice of a value row (8 tokens)
  const int row0 = lane / CR;
  float acc[QPC][RPL], m_w[QPC], s_w[QPC];
#pragma unroll
  for (int h = 0; h < QPC; ++h) {
    m_w[h] = -INFINITY;
    s_w[h] = 0.f;
#pragma unroll
    for (int i = 0; i < RPL; ++i) acc[h][i] = 0.f;
  }
#if WB_SERIAL
#pragma unroll 1
#endif
  for (int b = blk_begin + warp; b < blk_end; b += NW) {
#if WB_PF_DIST > 0
    {
      const int pb = b + WB_PF_DIST * NW;
      if (pb < blk_end) {
#if WB_PF_K
        prefetch_tile(k_head + (long long)bt[pb] * P.kv_block_stride, lane);
#endif
#if WB_PF_V
        prefetch_tile(v_head + (long long)bt[pb] * P.kv_block_stride, lane);
#endif
      }
    }
#endif
    const long long boff = (long long)bt[b] * P.kv_block_stride;
    const elem_t* kp = k_head + boff;
    const elem_t* vp = v_head + boff;
    uint4 kraw[CPT], vraw[RPL];
#pragma unroll
    for (int i = 0; i < CPT; ++i) kraw[i] = load16(kp + ((grp + TG * i) * BLOCK + tok_in_blk) * X);
#pragma unroll
    for (int i = 0; i < RPL; ++i) vraw[i] = load16(vp + (row0 + ROW_STEP * i) * BLOCK + vpart * X);
    float dot[QPC];
#pragma unroll
    for (int h = 0; h < QPC; ++h) dot[h] = 0.f;
    qk_dot(kraw, q_s, grp, dot);
#pragma unroll
    for (int m = BLOCK; m < 32; m *= 2) {
#pragma unroll
      for (int h = 0; h < QPC; ++h) dot[h] += __shfl_xor_sync(0xffffffffu, dot[h], m);
    }
    // every lane now holds the logit of token tok_in_blk (the lanes of a token agree)
    const bool valid = b * BLOCK + tok_in_blk < tok_end;
    float pt[QPC], corr[QPC];
#pragma unroll
    for (int h = 0; h < QPC; ++h) {
      const float l = valid ? dot[h] * P.scale : -INFINITY;
      float bm = l;
#pragma unroll
      for (int o = 1; o < BLOCK; o *= 2) bm = fmaxf(bm, __shfl_xor_sync(0xffffffffu, bm, o));
      const float m_new = fmaxf(m_w[h], bm);
      corr[h] = m_w[h] == -INFINITY ? 0.f : __expf(m_w[h] - m_new);
      pt[h] = valid ? __expf(l - m_new) : 0.f;
      float bs = pt[h];
#pragma unroll
      for (int o = 1; o < BLOCK; o *= 2) bs += __shfl_xor_sync(0xffffffffu, bs, o);
      s_w[h] = s_w[h] * corr[h] + bs;
      m_w[h] = m_new;
    }
    const int slot = (b - blk_begin) * BLOCK + vpart * X;     // first of this lane's 8 tokens
    float p[QPC][8];
#pragma unroll
    for (int j = 0; j < 8; ++j)
#pragma unroll
      for (int h = 0; h < QPC; ++h) p[h][j] = __shfl_sync(0xffffffffu, pt[h], vpart * X + j);
#pragma unroll
    for (int h = 0; h < QPC; ++h)
#pragma unroll
      for (int i = 0; i < RPL; ++i) acc[h][i] *= corr[h];   // the running max moved
    pv_acc(vraw, p, slot, valid_tok, acc);
  }
  // merge warps: common max, rescale each warp's sum and accumulators to it
  float head_max[QPC], head_sum[QPC];
#pragma unroll
  for (int h = 0; h < QPC; ++h)
    if (lane == 0) warp_max[warp * QPC + h] = m_w[h];
  __syncthreads();
#pragma unroll
  for (int h = 0; h < QPC; ++h) {
    float mx = -INFINITY;
    for (int w = 0; w < NW; ++w) mx = fmaxf(mx, warp_max[w * QPC + h]);
    head_max[h] = mx;
    const float f = m_w[h] == -INFINITY ? 0.f : __expf(m_w[h] - mx);
#pragma unroll
    for (int i = 0; i < RPL; ++i) acc[h][i] *= f;
    if (lane == 0) warp_sum[warp * QPC + h] = s_w[h] * f;
  }
  __syncthreads();
#pragma unroll
  for (int h = 0; h < QPC; ++h) head_sum[h] = warps_sum(warp_sum, h);
#endif

#if WB_RING_MERGE
  // Every warp's accumulators go to its own ring slice, and after one barrier each output is the sum
  // of the warps' slices, in warp order. The shared-memory float atomicAdd this replaced is a
  // compare-and-swap loop per element, a dependent chain per lane: 1.2 us (twopass t256 q2) to 4 us
  // (onepass t128 q4) between a CTA's last warp ending its loop and its output, at every shape
  // (scripts/probe_chain.py, H200, b1 x 1k: 7.3 us in all). The slice is free: the warp's copies
  // have all landed (only empty groups can be pending) and its lanes are past their last read.
  constexpr int RING_STRIDE = WB_ALGO == 0 ? WB_STAGES * TILE : WB_STAGES * 2 * TILE;   // elements per warp
  static_assert(RING_STRIDE * (int)sizeof(elem_t) >= QPC * HEAD * (int)sizeof(float),
                "a warp's ring slice holds its accumulators");
  cp_async_wait<0>();
  __syncwarp();
  float* red_w = reinterpret_cast<float*>(ring);
  const elem_t* ring0 = ring - warp * RING_STRIDE;
#endif
#if WB_MMA
  // every warp's O^T fragment into the CTA's accumulators (heads past the CTA's are zero columns)
  if (2 * mc < QPC) {
#pragma unroll
    for (int m = 0; m < HEAD / 16; ++m)
#pragma unroll
      for (int r = 0; r < 4; ++r) {
        const int h = 2 * mc + (r & 1), d = 16 * m + mg + 8 * (r >> 1);
        if (h < QPC) {
#if WB_RING_MERGE
          red_w[h * HEAD + d] = o_acc[m][r];
#else
          if (NW == 1) acc_s[h * HEAD + d] = o_acc[m][r];
          else atomicAdd(acc_s + h * HEAD + d, o_acc[m][r]);
#endif
        }
      }
  }
#else
  // lanes that share a row hold different tokens: add them, then add across warps
#pragma unroll
  for (int m = 1; m < CR; m *= 2) {
#pragma unroll
    for (int h = 0; h < QPC; ++h)
#pragma unroll
      for (int i = 0; i < RPL; ++i) acc[h][i] += __shfl_xor_sync(0xffffffffu, acc[h][i], m);
  }
  if (vpart == 0) {
#pragma unroll
    for (int h = 0; h < QPC; ++h)
#pragma unroll
      for (int i = 0; i < RPL; ++i) {
#if WB_RING_MERGE
        red_w[h * HEAD + row0 + ROW_STEP * i] = acc[h][i];
#else
        if (NW == 1) acc_s[h * HEAD + row0 + ROW_STEP * i] = acc[h][i];
        else atomicAdd(acc_s + h * HEAD + row0 + ROW_STEP * i, acc[h][i]);
#endif
      }
  }
#endif
  __syncthreads();
  WB_T(16);

  // ---- write -----------------------------------------------------------------------------
  // A sequence of one partition is already whole: its output goes straight to `out` and the reduce
  // skips its rows (same length, same partition size there). In a graph captured for a long bound a
  // short uniform batch is all such sequences, and the split kernel + reduce lost to the whole-
  // sequence kernel (llama-3.1-8b b32 x 1k on the H200: 46.6 vs 40.6 us).
  const bool one_part = kSplit && !WB_FUSED_REDUCE && seq_len <= ptok;
  for (int i = tid; i < QPC * HEAD; i += NT) {
    const int h = i / HEAD, d = i % HEAD;
    if (h >= nheads) continue;
    float inv = 0.f;
#pragma unroll
    for (int hh = 0; hh < QPC; ++hh) if (hh == h) inv = 1.f / head_sum[hh];
#if WB_RING_MERGE
    float a = 0.f;
#pragma unroll
    for (int w = 0; w < NW; ++w) a += reinterpret_cast<const float*>(ring0 + w * RING_STRIDE)[i];
#else
    const float a = acc_s[i];
#endif
    const float o = a * inv;
    const long long row = (long long)seq * P.num_heads + head0 + h;
    if (kSplit && !one_part) {
      P.tmp_out[(row * P.max_parts + part) * HEAD + d] = o;
      if (d == 0) {
        float mx = 0.f, sm = 0.f;
#pragma unroll
        for (int hh = 0; hh < QPC; ++hh) if (hh == h) { mx = head_max[hh]; sm = head_sum[hh]; }
        P.max_logits[row * P.max_parts + part] = mx;
        P.exp_sums[row * P.max_parts + part] = sm;
      }
    } else {
      P.out[row * HEAD + d] = from_float(WB_FAULT == 2 ? o + 0.25f : o);
    }
  }
  WB_T(7);
#if WB_FUSED_REDUCE
  if (kSplit) {
    // the last partition of this (seq, head group) to finish combines all of them: no second
    // kernel, no launch gap (threadfence-reduction pattern: publish, count, last one reads)
    __shared__ int is_last;
    __threadfence();
    __syncthreads();
    if (tid == 0) {
      const int nparts = (seq_len + ptok - 1) / ptok;
      int* ctr = P.counters + (long long)seq * gridDim.x + blockIdx.x;   // fused: one partition per CTA
      is_last = atomicAdd(ctr, 1) == nparts - 1;
      if (is_last) *ctr = 0;                       // ready for the next launch
    }
    __syncthreads();
    if (!is_last) return;
    __threadfence();
    const int nparts = (seq_len + ptok - 1) / ptok;
    // each thread walks the partitions for G of its outputs at once with running maxima, U
    // partitions' loads in flight per step: a few L2 round trips, where a walk per output was
    // 2 x nparts dependent ones (the fused reduce ran 30-60% behind the reduce kernel at small
    // batch on the H200, 2026-11-28)
    constexpr int EPT = (QPC * HEAD + NT - 1) / NT;
    constexpr int G = EPT < 8 ? EPT : 8;               // outputs walked together (registers)
    constexpr int U = 4;
#pragma unroll 1
    for (int e0 = 0; e0 < EPT; e0 += G) {
      float fm[G], fs[G], fo[G];
#pragma unroll
      for (int e = 0; e < G; ++e) { fm[e] = -INFINITY; fs[e] = 0.f; fo[e] = 0.f; }
      for (int i0 = 0; i0 < nparts; i0 += U) {
#pragma unroll
        for (int e = 0; e < G; ++e) {
          const int i = tid + (e0 + e) * NT, h = i / HEAD, d = i % HEAD;
          if (i >= QPC * HEAD || h >= nheads) continue;
          const long long row = (long long)seq * P.num_heads + head0 + h;
          float mi[U], ei[U], ti[U];
#pragma unroll
          for (int u = 0; u < U; ++u) {
            const bool in = i0 + u < nparts;
            mi[u] = in ? __ldcg(P.max_logits + row * P.max_parts + i0 + u) : -INFINITY;
            ei[u] = in ? __ldcg(P.exp_sums + row * P.max_parts + i0 + u) : 0.f;
            ti[u] = in ? __ldcg(P.tmp_out + (row * P.max_parts + i0 + u) * HEAD + d) : 0.f;
          }
          float mn = fm[e];
#pragma unroll
          for (int u = 0; u < U; ++u) mn = fmaxf(mn, mi[u]);
          const float c = fm[e] == -INFINITY ? 0.f : __expf(fm[e] - mn);
          fs[e] *= c;
          fo[e] *= c;
#pragma unroll
          for (int u = 0; u < U; ++u) {
            const float w = mi[u] == -INFINITY ? 0.f : ei[u] * __expf(mi[u] - mn);
            fs[e] += w;
            fo[e] += w * ti[u];
          }
          fm[e] = mn;
        }
      }
#pragma unroll
      for (int e = 0; e < G; ++e) {
        const int i = tid + (e0 + e) * NT, h = i / HEAD, d = i % HEAD;
        if (i >= QPC * HEAD || h >= nheads) continue;
        const long long row = (long long)seq * P.num_heads + head0 + h;
        const float o = fo[e] / fs[e];
        P.out[row * HEAD + d] = from_float(WB_FAULT == 2 ? o + 0.25f : o);
      }
    }
  }
#endif
}

}  // namespace WB_NS

// ---- entry points ----------------------------------------------------------------------------
// The Python launcher passes one Params struct by value.

// Test-only faults, so the tuner's isolation can be tested on a real GPU: a write 4 TB past the
// output (illegal address: the CUDA context is lost), or a spin that never ends (the watchdog).
static __device__ __forceinline__ void wb_fault(const WB_NS::Params& p) {
#if WB_FAULT == 1
  if (threadIdx.x == 0 && blockIdx.x == 0) reinterpret_cast<volatile char*>(p.out)[1ll << 42] = 1;
#elif WB_FAULT == 3
  if (threadIdx.x == 0) { const volatile int* f = p.seq_lens; while (f[0] >= 0) __nanosleep(1000); }
#endif
}
#if WB_PARTITION == 0 || WB_PARTITION < 0
extern "C" __global__ void __launch_bounds__(WB_THREADS) WB_SYM(wb_decode_full)(const WB_NS::Params p) {
  wb_fault(p);
#if WB_GRAPH_SCHED
  WB_NS::decode_body<0>(p, blockIdx.z, WB_NS::Item{(int)blockIdx.y, (int)blockIdx.z, -1, 0});
#else
  WB_NS::decode_body<0>(p, blockIdx.z);
#endif
}
#endif

#if WB_PARTITION != 0
#if WB_PARTITION == -1
#define WB_SPLIT_TOKENS 512
#elif WB_PARTITION == -2
#define WB_SPLIT_TOKENS (-2)        // auto: decode_body reads Params.part_tokens
#else
#define WB_SPLIT_TOKENS WB_PARTITION
#endif
static_assert(WB_SPLIT_TOKENS < 0 || WB_SPLIT_TOKENS % WB_BLOCK == 0, "partition must be a multiple of the block size");

extern "C" __global__ void __launch_bounds__(WB_THREADS) WB_SYM(wb_decode_split)(const WB_NS::Params p) {
#if __CUDA_ARCH__ >= 900 && !WB_FUSED_REDUCE
  // programmatic dependent launch: once every CTA of this grid has started, the reduce grid may
  // be scheduled into SMs as they free up (it waits for our results in griddepcontrol.wait), so
  // its launch latency hides behind our tail. A no-op when the reduce is launched normally.
  asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
  wb_fault(p);
  WB_T(19);                            // the kernel's entry (probe_chain E): before the item or length loads
#if WB_GRAPH_SCHED
  WB_NS::decode_body<WB_SPLIT_TOKENS>(p, blockIdx.z, WB_NS::Item{(int)blockIdx.y, (int)blockIdx.z, -1, 0});
#else
  WB_NS::decode_body<WB_SPLIT_TOKENS>(p, blockIdx.z);
#endif
#if WB_PARTITION == -2 && !WB_FUSED_REDUCE && WB_GRAPH_WALK
  // A graph-bound grid of fewer partitions than the launch bound needs (Params.grid_parts): a
  // grid sized for max_model_len is mostly CTAs past every real length, each scheduled only to
  // read a length and leave (+7 us at b64 x 1k of 84 on the H200 with 26 grid partitions, +24 us
  // with 9 at one CTA per SM). Here a long sequence's partitions are a multiple of the grid's
  // (seq_part_tokens) and each CTA walks its share: the length is an L1 hit by now.
  if (p.grid_parts > 0) {
    const int len = p.seq_lens[blockIdx.y];
    const int t = WB_NS::seq_part_tokens(p, len);
    const int n = len > 0 ? (len + t - 1) / t : 0;
    for (int z = blockIdx.z + gridDim.z; z < n; z += gridDim.z) {
      __syncthreads();                 // the next partition reuses the shared memory
      WB_NS::decode_body<WB_SPLIT_TOKENS>(p, z);
    }
  }
#endif
}

#if WB_GRAPH_SCHED
// The scheduled graph-bound launch (LoadedVariant / launch.cuh pick it where Variant.schedules):
// its own entry, so that wb_decode_split stays the plain kernel, instruction for instruction (the
// walk over items inlines decode_body twice more: 150-156 registers where the plain t128 kernels
// have 80-96). Grid: (kv-head groups, the schedule's item slots, 1).
extern "C" __global__ void __launch_bounds__(WB_THREADS) WB_SYM(wb_decode_sched)(const WB_NS::Params p) {
#if __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;" ::: "memory");   // as wb_decode_split (PDL reduce)
#endif
  wb_fault(p);
  WB_T(19);                            // the kernel's entry (probe_chain E): before the item or length loads
  // A scheduled graph-bound launch (wb_plan): the grid's y is the schedule's slots, not the
  // sequences. Slot y runs items y, y + slots, ... until a sentinel (the plan writes one slot's
  // worth after the last item), so the grid is sized for a few waves, not for every partition
  // of max_model_len, and a long sequence's partitions spread over all the slots. A schedule
  // planned for another launch shape (key) is not trusted: every (sequence, partition) of the
  // bound is walked instead, slow but right.
  const int4* items = reinterpret_cast<const int4*>(p.sched + WB_SCHED_HDR);
  int4 t = items[blockIdx.y];
  if (WB_NS::sched_trusted(p)) {
    for (int i = blockIdx.y; t.x >= 0; ) {
      if (t.x >= p.sched_seqs || t.y >= p.max_parts) break;      // not this launch's: never trusted
      if (i != (int)blockIdx.y) __syncthreads();                 // the next item reuses the shared memory
      WB_NS::decode_body<WB_SPLIT_TOKENS>(p, 0, WB_NS::Item{t.x, t.y, t.z, t.w});
      i += gridDim.y;
      t = items[i];
    }
  } else {
    const int n = p.sched_seqs * p.max_parts;
    for (int f = blockIdx.y; f < n; f += gridDim.y) {
      const int seq = f % p.sched_seqs, part = f / p.sched_seqs;
      const int len = p.seq_lens[seq];
      if (part * p.part_tokens >= len) continue;
      if (f != (int)blockIdx.y) __syncthreads();
      WB_NS::decode_body<WB_SPLIT_TOKENS>(p, 0, WB_NS::Item{seq, part, len, p.part_tokens});
    }
  }
}
#endif

// Combine partitions: grid (num_heads, num_seqs), 128 threads, each owning HEAD / 128 dims (rounded
// up). Every thread walks the partitions itself with a running max (no shared memory, no
// barriers), eight partitions' max, sum and partial output loaded at once: the reduce is a short
// chain of L2 round trips, which is most of what it costs at small batches.
template <bool kSched>
static __device__ __forceinline__ void WB_SYM(wb_reduce_body)(const WB_NS::Params& p) {
  constexpr int DPT = (WB_HEAD + 127) / 128;          // dims per thread
  constexpr int U = 8;                                // partitions in flight per step
  WB_TR(0);
  const int head = blockIdx.x, seq = blockIdx.y, tid = threadIdx.x;
  const int len = max(p.seq_lens[seq], 0);
  int ptok, nparts;
  if (kSched) {
    // a scheduled launch (wb_decode_sched): the plan's partition size if the plan was for this
    // launch; a row the schedule gave no items (vLLM's padding, should its length not be 0) must
    // not read past its workspace row: its output is garbage nobody reads, never a fault
    ptok = WB_NS::sched_trusted(p) ? p.sched[1] : p.part_tokens;
    nparts = min((len + ptok - 1) / ptok, p.max_parts);
  } else {
    ptok = WB_SPLIT_TOKENS > 0 ? WB_SPLIT_TOKENS : WB_NS::seq_part_tokens(p, len);
    nparts = (len + ptok - 1) / ptok;
  }
  const long long row = (long long)seq * p.num_heads + head;
  if (nparts == 0) {                   // empty sequence: zeros (the split grid wrote nothing)
    for (int d = tid; d < WB_HEAD; d += 128) p.out[row * WB_HEAD + d] = from_float(0.f);
    return;
  }
  if (nparts == 1) return;             // one partition: decode_body wrote `out` itself (one_part)
#if __CUDA_ARCH__ >= 900
  // PDL: the split grid's partials are complete and visible after this (a no-op without PDL)
  asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
  WB_TR(1);
  const float* ml = p.max_logits + row * p.max_parts;
  const float* es = p.exp_sums + row * p.max_parts;
  const float* to = p.tmp_out + row * p.max_parts * WB_HEAD;
  float m = -INFINITY, s = 0.f, o[DPT];
#pragma unroll
  for (int k = 0; k < DPT; ++k) o[k] = 0.f;
  for (int i0 = 0; i0 < nparts; i0 += U) {
    float mi[U], ei[U], ti[U][DPT];
#pragma unroll
    for (int u = 0; u < U; ++u) {
      const bool in = i0 + u < nparts;
      mi[u] = in ? __ldcg(ml + i0 + u) : -INFINITY;
      ei[u] = in ? __ldcg(es + i0 + u) : 0.f;
#pragma unroll
      for (int k = 0; k < DPT; ++k) {
        const int d = tid + 128 * k;
        ti[u][k] = in && d < WB_HEAD ? __ldcg(to + (long long)(i0 + u) * WB_HEAD + d) : 0.f;
      }
    }
    float mn = m;
#pragma unroll
    for (int u = 0; u < U; ++u) mn = fmaxf(mn, mi[u]);
    const float c = m == -INFINITY ? 0.f : __expf(m - mn);
    s *= c;
#pragma unroll
    for (int k = 0; k < DPT; ++k) o[k] *= c;
#pragma unroll
    for (int u = 0; u < U; ++u) {
      const float w = mi[u] == -INFINITY ? 0.f : ei[u] * __expf(mi[u] - mn);
      s += w;
#pragma unroll
      for (int k = 0; k < DPT; ++k) o[k] += w * ti[u][k];
    }
    m = mn;
  }
  const float inv = 1.f / s;
#pragma unroll
  for (int k = 0; k < DPT; ++k) {
    const int d = tid + 128 * k;
    if (d < WB_HEAD) p.out[row * WB_HEAD + d] = from_float(WB_FAULT == 2 ? o[k] * inv + 0.25f : o[k] * inv);
  }
  WB_TR(2);
}

extern "C" __global__ void __launch_bounds__(128) WB_SYM(wb_reduce)(const WB_NS::Params p) {
  WB_SYM(wb_reduce_body)<false>(p);
}
#if WB_GRAPH_SCHED
extern "C" __global__ void __launch_bounds__(128) WB_SYM(wb_reduce_sched)(const WB_NS::Params p) {
  WB_SYM(wb_reduce_body)<true>(p);
}
#endif

#if WB_GRAPH_SCHED
// The step's schedule for scheduled graph-bound launches, one CTA, launched before the graph
// replays (vLLM's metadata builder, once per step for every layer). The partition size minimises
// waves x (tokens + a wave's fixed cost) as Variant.auto_tokens plans a launch, but over the batch's
// real lengths (a 30k sequence among 1k ones splits finely, the 1k ones do not) and this launch's
// slots; then the items: every full partition first, so the longest work starts first, then the
// shorter last partitions, then one slot's worth of sentinels.
extern "C" __global__ void __launch_bounds__(512) WB_SYM(wb_plan)(const WB_NS::PlanParams a) {
  constexpr int NT = 512, NW = NT / 32;
  __shared__ int s_max, s_min, s_cnt;
  __shared__ unsigned long long s_best;
  __shared__ long long s_scan[NT];
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  if (tid == 0) { s_max = 0; s_min = 0x7FFFFFFF; s_cnt = 0; s_best = ~0ull; }
  __syncthreads();
  int mx = 0, mn = 0x7FFFFFFF, cnt = 0;                 // longest, shortest non-empty, non-empty sequences
  for (int s = tid; s < a.num_seqs; s += NT) {
    const int l = a.seq_lens[s];
    mx = max(mx, l);
    if (l > 0) { mn = min(mn, l); ++cnt; }
  }
  for (int o = 16; o; o >>= 1) {
    mx = max(mx, __shfl_xor_sync(~0u, mx, o));
    mn = min(mn, __shfl_xor_sync(~0u, mn, o));
    cnt += __shfl_xor_sync(~0u, cnt, o);
  }
  if (lane == 0) { atomicMax(&s_max, mx); atomicMin(&s_min, mn); atomicAdd(&s_cnt, cnt); }
  __syncthreads();
  mx = s_max;
  mn = s_min;
  cnt = s_cnt;
  const int mx64 = (mx + 63) / 64 * 64;
  const int hi = max(1, a.pt_cap / 64);
  const int lo = min(hi, max(4, ((mx + a.max_parts - 1) / a.max_parts + 63) / 64));
  for (int c = lo + warp; c <= hi; c += NW) {
    const int pt = c * 64;
    int items = 0;
    for (int s = lane; s < a.num_seqs; s += 32) {
      const int l = a.seq_lens[s];
      if (l > 0) items += (l + pt - 1) / pt;
    }
    for (int o = 16; o; o >>= 1) items += __shfl_xor_sync(~0u, items, o);
    if (lane == 0) {
      // waves of CTAs, or the walk where the grid has fewer item slots than items (a slot runs
      // items y, y + cap, ...: one slot per sequence for a batch filling one wave, sched_shape)
      const long long fill = ((long long)items * a.grid_x + a.slots - 1) / max(a.slots, 1);
      const long long walk = (items + a.cap - 1) / max(a.cap, 1);
      const long long waves = max(fill, walk);
      const unsigned long long cost = (unsigned long long)(waves * (min(pt, mx64) + a.wave_tokens));
      atomicMin(&s_best, cost << 20 | (unsigned long long)(0xFFFFF - c));   // ties: the longer partition
    }
  }
  __syncthreads();
  int pt = s_best == ~0ull ? a.pt_cap : min(a.pt_cap, (int)(0xFFFFF - (s_best & 0xFFFFF)) * 64);
  // Sequences of about one length (within 1/8) whose whole-sequence CTAs fill half to all of one
  // wave run whole: balanced and bandwidth-bound already, so a split only adds partial writes,
  // CTAs and a reduce, which the wave count above does not see (b32 x 4k: 131 us whole, 138 split
  // in 3; H200 2026-11-30). Only in a grid of at most one wave of item slots (sched_shape gives
  // such batches one): empty slots beside whole-sequence CTAs cost them 11% at 8 waves. Ragged
  // batches keep the cost above: their whole CTAs end unevenly.
  const long long whole = (long long)cnt * a.grid_x;
  // Up to a.whole_max tokens (SCHED_WHOLE_MAX): longer whole CTAs filling 2/3 of the slots lose to a split
  // that fills them (qwen2.5-7b b64 x 32k: 1094 us whole, 967 split in 3; H200 2026-11-30).
  if (cnt > 0 && 8ll * mn >= 7ll * mx && mx <= a.pt_cap && 2 * whole >= a.slots && whole <= a.slots &&
      (long long)a.cap * a.grid_x <= a.slots && (a.whole_max <= 0 || mx <= a.whole_max))
    pt = min(a.pt_cap, mx64);
  int4* items = reinterpret_cast<int4*>(a.sched + WB_SCHED_HDR);
  // two passes of an exclusive scan over (full partitions, last partial ones) per sequence: the
  // first finds the total of full ones (where the partial ones start), the second writes
  long long total = 0;
  for (int pass = 0; pass < 2; ++pass) {
    const long long full_total = total;
    long long carry = 0;
    for (int base = 0; base < a.num_seqs; base += NT) {
      const int s = base + tid;
      const int len = s < a.num_seqs ? max(a.seq_lens[s], 0) : 0;
      const int f = len / pt, r = len % pt != 0;
      const long long v = (long long)f << 32 | r;
      s_scan[tid] = v;
      __syncthreads();
      for (int o = 1; o < NT; o <<= 1) {
        const long long add = tid >= o ? s_scan[tid - o] : 0;
        __syncthreads();
        s_scan[tid] += add;
        __syncthreads();
      }
      const long long excl = carry + s_scan[tid] - v;
      if (pass == 1 && len > 0) {
        const int f0 = (int)(excl >> 32), r0 = (int)(excl & 0xFFFFFFFF);
        for (int q = 0; q < f; ++q) items[f0 + q] = make_int4(s, q, len, pt);
        if (r) items[(int)(full_total >> 32) + r0] = make_int4(s, f, len, pt);
      }
      carry += s_scan[NT - 1];
      __syncthreads();
    }
    total = carry;
  }
  const int n = (int)(total >> 32) + (int)(total & 0xFFFFFFFF);
  for (int i = n + tid; i < n + a.cap; i += NT) items[i] = make_int4(-1, -1, -1, -1);
  if (tid == 0) {
    a.sched[0] = n;
    a.sched[1] = pt;
    a.sched[2] = a.key;
    a.sched[3] = mx;
  }
}
#endif
#endif
