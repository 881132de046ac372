// Host side of one kernel variant, for the exported torch extension. A variant's translation
// unit defines the WB_* knobs, WB_NS and WB_SYM, includes decode.cu, then this file; it gets
// WB_SYM(wb_run), which mirrors workbench/launch.py (grid, shared memory, split-K + reduce).
#include <cuda_runtime.h>
#include "wb_args.h"

static inline bool WB_SYM(wb_uses_split_impl)(int num_seqs, int num_heads, int max_seq_len) {
#if WB_PARTITION == 0
  return false;
#elif WB_PARTITION > 0 || WB_PARTITION == -2
  return true;          // auto: wb_run may still take the whole-sequence path (wb_auto_tokens)
#else
  // vLLM's v1/v2 rule: whole sequence up to 8192 tokens when one partition suffices or the
  // batch has enough (sequence, head) pairs; split-K 512 otherwise
  const int parts = (max_seq_len + 511) / 512;
  const bool v1 = max_seq_len <= 8192 && (parts == 1 || num_seqs * num_heads > 512);
  return !v1;
#endif
}

// CTAs per (sequence, partition): the kv heads times the query-head groups of each (LoadedVariant.grid_x)
static inline int WB_SYM(wb_grid_x)(const WbArgs& a) {
  const int group = a.num_heads / a.num_kv_heads;
  return a.num_kv_heads * ((group + WB_QPC - 1) / WB_QPC);
}

static inline int WB_SYM(wb_smem_bytes)(int logits_tokens) {
  const int warps = WB_THREADS / 32;
#if WB_ALGO == 1
  logits_tokens = 0;   // onepass keeps no logits in shared memory
#endif
  const int stats = (warps * WB_QPC + 1) & ~1;   // padded even, as in decode.cu
  int bytes = 4 * (2 * WB_QPC * WB_HEAD + 2 * stats + WB_QPC * logits_tokens);
#if WB_STAGES > 0 && WB_ALGO == 1
  // onepass (tensor cores): a ring whose slots hold a block's K and V tiles, no staged table
  bytes += 2 * warps * WB_STAGES * WB_HEAD * WB_BLOCK * (int)sizeof(elem_t);
#elif WB_STAGES > 0
  // the per-warp cp.async ring of K/V tiles, then the CTA's slice of the block table
  bytes += warps * WB_STAGES * WB_HEAD * WB_BLOCK * (int)sizeof(elem_t) + 4 * ((logits_tokens + WB_BLOCK - 1) / WB_BLOCK);
#endif
  return bytes;
}

extern "C" int WB_SYM(wb_split_parts)(int num_seqs, int num_heads, int max_seq_len) {
  if (!WB_SYM(wb_uses_split_impl)(num_seqs, num_heads, max_seq_len)) return 0;
#if WB_PARTITION > 0
  const int tokens = WB_PARTITION;
#elif WB_PARTITION == -2
  const int tokens = 64;    // auto: the most partitions it can pick (workspace sizing)
#else
  const int tokens = 512;
#endif
  return (max_seq_len + tokens - 1) / tokens;
}

#if WB_PARTITION != 0
#define WB_SPLIT_TOKENS_OR_0 WB_SPLIT_TOKENS
#else
#define WB_SPLIT_TOKENS_OR_0 0
#endif

// auto partitions (WB_PARTITION == -2): Variant.auto_tokens's rule (workbench/kernel/variant.py).
// Pick the partition count p minimising waves(p) x (tokens(p) + 128) (+64 tokens for the reduce
// when split): partitions multiples of 64 tokens, none under 256, at most 128, within shared memory;
// waves from the SM slots that threads, registers (occupancy API, no dynamic smem) and each
// partition's shared memory allow. 0 = whole sequence. Device numbers are read once per device.
#if WB_PARTITION == -2
struct WB_SYM(WbOcc) { int sms, smem_sm, reserved, split_blocks, whole_blocks, sched_blocks; };
static inline const WB_SYM(WbOcc)* WB_SYM(wb_occ)() {
  static WB_SYM(WbOcc) occ[64];
  static bool ready[64] = {false};
  int dev = 0;
  if (cudaGetDevice(&dev) != cudaSuccess || dev < 0 || dev >= 64) return nullptr;
  if (!ready[dev]) {
    WB_SYM(WbOcc) o{};
    if (cudaDeviceGetAttribute(&o.sms, cudaDevAttrMultiProcessorCount, dev) != cudaSuccess ||
        cudaDeviceGetAttribute(&o.smem_sm, cudaDevAttrMaxSharedMemoryPerMultiprocessor, dev) != cudaSuccess ||
        cudaDeviceGetAttribute(&o.reserved, cudaDevAttrReservedSharedMemoryPerBlock, dev) != cudaSuccess ||
        cudaOccupancyMaxActiveBlocksPerMultiprocessor(&o.split_blocks, WB_SYM(wb_decode_split), WB_THREADS, 0) != cudaSuccess ||
        cudaOccupancyMaxActiveBlocksPerMultiprocessor(&o.whole_blocks, WB_SYM(wb_decode_full), WB_THREADS, 0) != cudaSuccess
#if WB_GRAPH_SCHED
        || cudaOccupancyMaxActiveBlocksPerMultiprocessor(&o.sched_blocks, WB_SYM(wb_decode_sched), WB_THREADS, 0) != cudaSuccess
#endif
        ) {
      (void)cudaGetLastError();
      return nullptr;
    }
    occ[dev] = o;
    ready[dev] = true;
  }
  return &occ[dev];
}

static inline int WB_SYM(wb_auto_tokens_occ)(const WB_SYM(WbOcc)* o, int ctas, int max_seq_len, int smem_limit) {
  const int fixed = WB_SYM(wb_smem_bytes)(0);
#if WB_ALGO == 1
  // onepass holds no logits: any length fits (Variant.max_context_unsplit's 1 << 30)
  int fit = fixed <= smem_limit ? (1 << 30) : 0;
#else
#if WB_STAGES > 0
  const double per_token = 4.0 * WB_QPC + 4.0 / WB_BLOCK;
#else
  const double per_token = 4.0 * WB_QPC;
#endif
  int fit = (int)((smem_limit - fixed) / per_token) / WB_BLOCK * WB_BLOCK;
#endif
  fit = fit / 64 * 64;
  if (!o) return fit < 64 ? 64 : fit;
  if (ctas < 1) ctas = 1;
  int cap = (max_seq_len + 255) / 256;
  cap = cap < 1 ? 1 : (cap > 128 ? 128 : cap);
  long long best_cost = -1;
  int best_tokens = fit < 64 ? 64 : fit;
  for (int p = 1; p <= cap; ++p) {
    int tokens = (max_seq_len + p - 1) / p;
    const bool whole = p == 1 && max_seq_len <= fit;
    if (!whole) {
      tokens = (tokens + 63) / 64 * 64;
      if (tokens > fit) tokens = fit;
      if (tokens < 64) continue;
    }
    const int parts = whole ? 1 : (max_seq_len + tokens - 1) / tokens;
    const int smem = WB_SYM(wb_smem_bytes)(tokens);
    if (smem > smem_limit) continue;
    int per_sm = o->smem_sm / (smem + o->reserved);
    const int by_threads = whole ? o->whole_blocks : o->split_blocks;
    if (by_threads < per_sm) per_sm = by_threads;
    const long long slots = (long long)o->sms * per_sm;
    if (slots < 1) continue;
    const long long waves = ((long long)parts * ctas + slots - 1) / slots;
    const long long cost = waves * (tokens + 128) + (whole ? 0 : 64);
    if (best_cost < 0 || cost < best_cost) { best_cost = cost; best_tokens = whole ? 0 : tokens; }
  }
  return best_tokens;
}

static inline int WB_SYM(wb_auto_tokens)(int ctas, int max_seq_len, int smem_limit) {
  return WB_SYM(wb_auto_tokens_occ)(WB_SYM(wb_occ)(), ctas, max_seq_len, smem_limit);
}

// CTAs of the split kernel the GPU runs at once with ptok-token partitions, at least one per SM
// (Variant.split_slots).
static inline long long WB_SYM(wb_split_slots)(const WB_SYM(WbOcc)* o, int ptok) {
  int per_sm = o->smem_sm / (WB_SYM(wb_smem_bytes)(ptok) + o->reserved);
  if (o->split_blocks < per_sm) per_sm = o->split_blocks;
  return (long long)o->sms * (per_sm < 1 ? 1 : per_sm);
}

// Params.seq_fill (Variant.seq_fill): partitions per sequence that fill one wave of SM slots at
// this launch's shared memory, at most the grid's partitions.
static inline int WB_SYM(wb_seq_fill)(int ctas, int parts, int ptok) {
  const WB_SYM(WbOcc)* o = WB_SYM(wb_occ)();
  if (!o || ptok <= 0) return 0;
  const long long slots = WB_SYM(wb_split_slots)(o, ptok);
  const long long fill = slots / (ctas < 1 ? 1 : ctas);   // at most one wave (Variant.seq_fill)
  return (int)(fill < 1 ? 1 : (fill > parts ? parts : fill));
}

// The walk exists only in variants built with it (Variant.graph_walk, `workbench export
// --graph-walk`): on the H200 it makes uniform short batches 2-9% faster and ragged ones with a
// few long sequences 5-40% slower (the long sequence's CTAs walk;
// results/h200-2026-11-28-graph-walk), and served batches are ragged.
//
// gridDim.z of a graph-bound launch (Variant.graph_parts): when a grid for the bound is more than
// 8 waves of CTAs (mostly past every real length on a short batch), the fewest partition slots,
// at least fill and half the bound's, whose waves per slot ceil(ctas z / slots) / z are within 5%
// of the best; a sequence needing more walks its partitions (Params.grid_parts), at most two.
static inline int WB_SYM(wb_graph_parts)(int ctas, int parts, int ptok, int fill) {
  const WB_SYM(WbOcc)* o = WB_SYM(wb_occ)();
  if (!o || ptok <= 0 || parts < 1) return parts;
  const long long slots = WB_SYM(wb_split_slots)(o, ptok);
  const long long c = ctas < 1 ? 1 : ctas;
  if (c * parts <= 8 * slots) return parts;
  int lo = fill < 1 ? 1 : (fill > parts ? parts : fill);
  if (lo < (parts + 1) / 2) lo = (parts + 1) / 2;
  double best = 1e30;
  for (int z = lo; z <= parts; ++z) {
    const double r = (double)((c * z + slots - 1) / slots) / z;
    if (r < best) best = r;
  }
  for (int z = lo; z <= parts; ++z)
    if ((double)((c * z + slots - 1) / slots) / z <= best * 1.05) return z;
  return parts;
}
#endif

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

// A failed CUDA call: report it to the caller (a.cuda_error) and clear it, so that it is not
// blamed on the next launch.
static inline int WB_SYM(wb_failed)(const WbArgs& a, cudaError_t e) {
  (void)cudaGetLastError();
  if (a.cuda_error) *a.cuda_error = (int)e;
  return WB_LAUNCH_FAILED;
}

#if WB_PARTITION == -2 && WB_GRAPH_SCHED
// Scheduled graph-bound launches (Variant.graph_sched, `workbench export --graph-sched`): where the
// grid for the bound is more than 8 waves of CTAs, or the batch has 2+ sequences of at most 4 CTAs
// each, or its whole sequences fill half to one wave (onepass, any CTAs each), or less than half a wave, the split
// grid has item slots for 8 waves (4 for the second and fourth rules: fewer empty CTAs; one for the
// third) and
// runs the step's schedule that wb_plan_run planned on the device from the real lengths (a long sequence among short ones spreads over every slot). Variant.sched_shape,
// Variant.schedules: the partition is the auto plan's for the bound, lengthened while the SM slots
// stay the same; the key ties a schedule to this shape (another one is not trusted: decode.cu).
struct WB_SYM(WbSched) { int pt_cap, parts, cap, key; long long slots, ints; };
// plain: this variant's occupancy on the device (wb_occ; a test passes its own, host code only)
static inline bool WB_SYM(wb_sched_shape_occ)(const WB_SYM(WbOcc)* plain, int grid_x, int num_seqs, int bound,
                                              int smem_limit, WB_SYM(WbSched)* s) {
  if (!plain || grid_x < 1 || num_seqs < 1 || bound < 1) return false;
  const long long ctas = (long long)grid_x * num_seqs;
  const int own = WB_SYM(wb_auto_tokens_occ)(plain, (int)ctas, bound, smem_limit);
  // Variant.schedules: a grid of many waves, or a batch that may be ragged (2+ sequences) with few
  // CTAs per sequence (at most 4 kv-head groups), or one that fits one wave (below)
  const bool few = num_seqs >= 2 && grid_x <= 4;
  const bool many = own > 0 && ctas * ((bound + own - 1) / own) > 8 * WB_SYM(wb_split_slots)(plain, own);
  // Variant.sched_partition: the auto plan's partition at wb_decode_sched's occupancy, lengthened
  // while the SM slots stay the same
  WB_SYM(WbOcc) occ = *plain;                       // wb_decode_sched's registers (Occupancy.scheduled)
  if (occ.sched_blocks > 0) occ.split_blocks = occ.sched_blocks;
  const WB_SYM(WbOcc)* o = &occ;
  int ptok = WB_SYM(wb_auto_tokens_occ)(o, (int)ctas, bound, smem_limit);
  if (ptok <= 0) ptok = 256;                        // the bound's plan is whole sequences: split from the finest up
  const long long slots = WB_SYM(wb_split_slots)(o, ptok);
  // Variant.fits_one_wave: whole sequences fill half to all of one wave, at any CTAs per sequence
  // (SCHED_FIT_FEW; the lengthening below keeps the slots, so only its "one item each" half waits
  // for it); nothing scheduled: no lengthening
  const bool may_fit = num_seqs >= 2 && 2 * ctas >= slots && ctas <= slots;
  // Variant.sparse (SCHED_SPARSE): whole sequences fill less than half a wave, so under the plain grid
  // a long sequence among short ones would run on its own 1/num_seqs of the GPU
  const bool sparse = num_seqs >= 2 && grid_x > 4 && 2 * ctas < slots;
  if (!(few || many || may_fit || sparse)) return false;      // the plain grid is fine
#if WB_ALGO == 1
  int top = 1 << 30;                                // onepass: no logits, any length fits
#else
  const int fixed = WB_SYM(wb_smem_bytes)(0);
  const double per_token = 4.0 * WB_QPC + 4.0 / WB_BLOCK;
  int top = (int)((smem_limit - fixed) / per_token) / WB_BLOCK * WB_BLOCK;   // Variant.max_context_unsplit
#endif
  const int b64 = (bound + 63) / 64 * 64;
  if (top > b64) top = b64;
  while (ptok + 64 <= top && WB_SYM(wb_smem_bytes)(ptok + 64) <= smem_limit &&
         WB_SYM(wb_split_slots)(o, ptok + 64) == slots)
    ptok += 64;
  const bool fit = may_fit && ptok >= bound;         // ... and a sequence of the bound is one item (onepass)
  if (!(few || many || fit || sparse)) return false;
  const long long waves = many ? 8 : 4;            // GRAPH_SCHED_WAVES, SCHED_FEW_WAVES
  const int parts = (bound + 255) / 256;             // the plan's finest split (Variant.sched_shape)
  long long cap = (waves * slots + grid_x - 1) / grid_x;
  if (cap > (long long)num_seqs * parts) cap = (long long)num_seqs * parts;
  if (cap < num_seqs) cap = num_seqs;
  // one wave of item slots, so that wb_plan may run an about-uniform batch whole without empty CTAs
  // beside it (Variant.sched_shape, SCHED_FIT_FILL)
  if (fit) cap = slots / grid_x > num_seqs ? slots / grid_x : num_seqs;
  unsigned h = 0x2545F491u;                         // variant.sched_key
  const unsigned xs[5] = {(unsigned)num_seqs, (unsigned)bound, (unsigned)ptok, (unsigned)cap, (unsigned)slots};
  for (unsigned x : xs) h = (h ^ x) * 0x01000193u;
  s->pt_cap = ptok;
  s->parts = parts;
  s->cap = (int)cap;
  s->key = (int)(h & 0x7FFFFFFFu);
  s->slots = slots;
  s->ints = 4 + 4 * ((long long)num_seqs * parts + cap);
  return true;
}
static inline bool WB_SYM(wb_sched_shape)(int grid_x, int num_seqs, int bound, int smem_limit, WB_SYM(WbSched)* s) {
  return WB_SYM(wb_sched_shape_occ)(WB_SYM(wb_occ)(), grid_x, num_seqs, bound, smem_limit, s);
}

// The step's schedule for this variant's captured launch of a.num_seqs sequences bounded at
// a.max_seq_len, from the first a.plan_seqs lengths (the rest are padding: no items). One small
// kernel on a.stream. WB_NOT_SCHEDULED where that launch runs the plain grid; WB_NEED_WORKSPACE
// where it is scheduled but a.sched cannot hold the schedule (or is null: "is it scheduled?").
extern "C" int WB_SYM(wb_plan_run)(const WbArgs& a) {
  if (a.num_heads < 1 || a.num_kv_heads < 1) return WB_NOT_SCHEDULED;
  const int grid_x = WB_SYM(wb_grid_x)(a);
  WB_SYM(WbSched) s;
  if (!WB_SYM(wb_sched_shape)(grid_x, a.num_seqs, a.max_seq_len, a.smem_limit, &s)) return WB_NOT_SCHEDULED;
  if (!a.sched || a.sched_ints < s.ints) return WB_NEED_WORKSPACE;
  WB_NS::PlanParams pp{};
  pp.seq_lens = a.seq_lens;
  pp.sched = a.sched;
  pp.num_seqs = a.plan_seqs < a.num_seqs ? a.plan_seqs : a.num_seqs;
  pp.pt_cap = s.pt_cap;
  pp.slots = (int)s.slots;
  pp.grid_x = grid_x;
  pp.cap = s.cap;
  pp.max_parts = s.parts;
  pp.key = s.key;
  pp.wave_tokens = 384;                              // variant.SCHED_WAVE_TOKENS
  pp.whole_max = 4096;                               // variant.SCHED_WHOLE_MAX
  WB_SYM(wb_plan)<<<1, 512, 0, a.stream>>>(pp);
  const cudaError_t e = cudaGetLastError();
  return e == cudaSuccess ? WB_OK : WB_SYM(wb_failed)(a, e);
}
#else
extern "C" int WB_SYM(wb_plan_run)(const WbArgs& a) { (void)a; return WB_NOT_SCHEDULED; }
#endif

// 0 = launched; otherwise a WbStatus code (the caller turns it into a message). The grid covers
// a.max_seq_len tokens per sequence (split-K: ceil(max_seq_len / partition) partitions; whole
// sequence: logits room for max_seq_len tokens); each sequence's real length is read on the device
// from seq_lens, so a launch captured in a CUDA graph with max_seq_len = the model's maximum
// serves every shorter batch of the same size at replay.
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
  p.k_new = reinterpret_cast<const elem_t*>(a.k_new);
  p.v_new = reinterpret_cast<const elem_t*>(a.v_new);
  p.slot_mapping = a.slot_mapping;
  p.new_seq_stride = a.new_seq_stride;
  p.new_head_stride = a.new_head_stride;
  p.new_v_seq_stride = a.new_v_seq_stride;
  p.new_v_head_stride = a.new_v_head_stride;
  const dim3 block(WB_THREADS);
  const int grid_x = WB_SYM(wb_grid_x)(a);
#if WB_PARTITION == -2
  int ptok = WB_SYM(wb_auto_tokens)(grid_x * a.num_seqs, a.max_seq_len, a.smem_limit);
  int parts = ptok == 0 ? 0 : (a.max_seq_len + ptok - 1) / ptok;
#if WB_GRAPH_SCHED
  WB_SYM(WbSched) sch;
  const bool scheduled = a.per_seq_split && a.sched &&
                         WB_SYM(wb_sched_shape)(grid_x, a.num_seqs, a.max_seq_len, a.smem_limit, &sch) &&
                         a.sched_ints >= sch.ints;
  if (scheduled) {
    ptok = sch.pt_cap;
    parts = sch.parts;
  }
#endif
#else
  const int ptok = WB_PARTITION == 0 ? 0 : WB_SPLIT_TOKENS_OR_0;
  (void)ptok;
  const int parts = WB_SYM(wb_split_parts)(a.num_seqs, a.num_heads, a.max_seq_len);
#endif
  if (parts == 0) {
#if WB_PARTITION == 0 || WB_PARTITION < 0
    p.logits_len = (a.max_seq_len + WB_BLOCK - 1) / WB_BLOCK * WB_BLOCK;
    p.max_parts = 1;
    const int smem = WB_SYM(wb_smem_bytes)(p.logits_len);
    if (smem > a.smem_limit) return WB_TOO_LONG;
    if (smem > 48 * 1024) {
      const cudaError_t e = cudaFuncSetAttribute(WB_SYM(wb_decode_full), cudaFuncAttributeMaxDynamicSharedMemorySize, smem);
      if (e != cudaSuccess) return WB_SYM(wb_failed)(a, e);
    }
    WB_SYM(wb_decode_full)<<<dim3(grid_x, a.num_seqs, 1), block, smem, a.stream>>>(p);
#endif
  } else {
#if WB_PARTITION != 0
    if (a.parts_needed) *a.parts_needed = parts;
    if (!a.exp_sums || !a.max_logits || !a.tmp_out || a.max_parts < parts) return WB_NEED_WORKSPACE;
#if WB_FUSED_REDUCE
    if (!a.counters) return WB_NEED_WORKSPACE;
#endif
    p.counters = a.counters;
    p.exp_sums = a.exp_sums;
    p.max_logits = a.max_logits;
    p.tmp_out = a.tmp_out;
    p.max_parts = a.max_parts;
    p.logits_len = ptok;
    p.part_tokens = ptok;
    int grid_y = a.num_seqs, grid_z = parts;
#if WB_PARTITION == -2 && WB_GRAPH_SCHED
    if (scheduled) {                       // item slots (decode.cu wb_decode_split)
      p.sched = a.sched;
      p.sched_key = sch.key;
      p.sched_seqs = a.num_seqs;
      grid_y = sch.cap;
      grid_z = 1;
    } else
#endif
#if WB_PARTITION == -2
    if (a.per_seq_split) p.seq_fill = WB_SYM(wb_seq_fill)(grid_x * a.num_seqs, parts, ptok);
#if !WB_FUSED_REDUCE && WB_GRAPH_WALK
    if (p.seq_fill > 0) {
      grid_z = WB_SYM(wb_graph_parts)(grid_x * a.num_seqs, parts, ptok, p.seq_fill);
      p.grid_parts = grid_z < parts ? grid_z : 0;
    }
#endif
#endif
    const int smem = WB_SYM(wb_smem_bytes)(p.logits_len);
    // a scheduled launch has kernels of its own (decode.cu: the plain ones stay as they were)
    void (*split_k)(const WB_NS::Params) = WB_SYM(wb_decode_split);
#if !WB_FUSED_REDUCE
    void (*reduce_k)(const WB_NS::Params) = WB_SYM(wb_reduce);
#endif
#if WB_PARTITION == -2 && WB_GRAPH_SCHED
    if (scheduled) {
      split_k = WB_SYM(wb_decode_sched);
      reduce_k = WB_SYM(wb_reduce_sched);
    }
#endif
    if (smem > 48 * 1024) {
      const cudaError_t e = cudaFuncSetAttribute(split_k, cudaFuncAttributeMaxDynamicSharedMemorySize, smem);
      if (e != cudaSuccess) return WB_SYM(wb_failed)(a, e);
    }
    split_k<<<dim3(grid_x, grid_y, grid_z), block, smem, a.stream>>>(p);
#if !WB_FUSED_REDUCE
    if (WB_SYM(wb_pdl_ok)()) {
      cudaLaunchConfig_t cfg = {};
      cfg.gridDim = dim3(a.num_heads, a.num_seqs, 1);
      cfg.blockDim = dim3(128);
      cfg.dynamicSmemBytes = 0;            // the reduce keeps its running sums in registers
      cfg.stream = a.stream;
      cudaLaunchAttribute attr[1];
      attr[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
      attr[0].val.programmaticStreamSerializationAllowed = 1;
      cfg.attrs = attr;
      cfg.numAttrs = 1;
      const cudaError_t e = cudaLaunchKernelEx(&cfg, reduce_k, p);
      if (e != cudaSuccess) return WB_SYM(wb_failed)(a, e);
    } else {
      reduce_k<<<dim3(a.num_heads, a.num_seqs, 1), 128, 0, a.stream>>>(p);
    }
#endif
#endif
  }
  const cudaError_t e = cudaGetLastError();
  return e == cudaSuccess ? WB_OK : WB_SYM(wb_failed)(a, e);
}
