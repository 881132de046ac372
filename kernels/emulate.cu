// Kernels of the emulation of a smaller Hopper on a bigger one (workbench/measure/greenctx.py).
//
// wb_emu_throttle: runs beside the measured work (on the SMs outside its green context, or on all
// SMs at low occupancy) and streams DRAM at a paced rate, so the measured work sees the attached
// GPU's read bandwidth less that rate. Loads carry L1::no_allocate and an L2 evict_first policy:
// the throttle's bytes pass through L2 (all DRAM traffic does) but are the first lines evicted, so
// the measured work keeps the L2. Pacing is per thread against %globaltimer with a running
// schedule (sched += period), so the ~1 µs timer granularity averages out instead of drifting.
// Every `hold_every` chunks a thread also reads its share of the L2 hold region; the stream's
// access policy window marks those lines persisting, which keeps that much L2 away from the
// measured work (the target's smaller L2). It stops when the host sets stop[0] (pinned memory,
// polled by one thread per CTA every 64 chunks, shared with the others) or after
// timeout_ns (then it sets stop[1]), so a host that dies or waits on the whole device (which waits
// for the throttle too) cannot leave the GPU busy for long.
//
// wb_emu_smid: which SM each CTA ran on, to check that a green context holds its SMs.
#include <stdint.h>

__device__ __forceinline__ unsigned long long wb_now() {
  unsigned long long t;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
  return t;
}

__device__ __forceinline__ uint4 wb_ld_stream(const uint4* p, uint64_t policy) {
  uint4 v;
  asm volatile("ld.global.L1::no_allocate.L2::cache_hint.v4.u32 {%0, %1, %2, %3}, [%4], %5;"
               : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
               : "l"(p), "l"(policy));
  return v;
}

extern "C" __global__ void __launch_bounds__(256) wb_emu_throttle(
    const uint4* __restrict__ buf, long long n16, volatile int* stop, double period_ns,
    const uint4* __restrict__ hold, long long hold16, int hold_every, unsigned long long timeout_ns,
    uint32_t* sink) {
  uint64_t policy;
  asm volatile("createpolicy.fractional.L2::evict_first.b64 %0, 1.0;" : "=l"(policy));
  const long long threads = (long long)gridDim.x * blockDim.x;
  const long long tid = (long long)blockIdx.x * blockDim.x + threadIdx.x;
  const long long span = threads * 4;  // uint4s one chunk of the whole grid reads
  long long base = 0;
  long long h = hold16 > 0 ? tid % hold16 : 0;
  uint32_t acc = 0;
  // the stop flag lives in pinned host memory: one thread per CTA reads it (a PCIe round trip) and
  // tells the others through shared memory. Every thread polling it (H200, 2026-11-28) made up to
  // ~10^8 host reads a second, and the measured work lost far more bandwidth than the throttle
  // asked for (110 GB/s asked: the read ceiling inside fell from 3940 to 2170 GB/s)
  __shared__ volatile int s_stop;
  if (threadIdx.x == 0) s_stop = 0;
  __syncthreads();
  const unsigned long long t0 = wb_now();
  double sched = (double)t0;  // when this thread's next chunk is due
  for (unsigned long long k = 1;; ++k) {
    if (base + span > n16) base = 0;
    const long long i = base + tid;
    const uint4 a = wb_ld_stream(buf + i, policy), b = wb_ld_stream(buf + i + threads, policy);
    const uint4 c = wb_ld_stream(buf + i + 2 * threads, policy), d = wb_ld_stream(buf + i + 3 * threads, policy);
    acc ^= a.x ^ a.y ^ a.z ^ a.w ^ b.x ^ b.y ^ b.z ^ b.w ^ c.x ^ c.y ^ c.z ^ c.w ^ d.x ^ d.y ^ d.z ^ d.w;
    base += span;
    if (hold16 > 0 && hold_every > 0 && k % hold_every == 0) {
      // plain loads: the access policy window (not a hint) decides these lines persist
      for (int j = 0; j < 4; ++j) {
        const uint4 x = hold[h];
        acc ^= x.x ^ x.w;
        h += threads;
        if (h >= hold16) h = tid % hold16;
      }
    }
    if (period_ns > 0.0) {
      sched += period_ns;
      unsigned long long t = wb_now();
      // behind by more than 20 µs (the measured work held HBM): forgive the debt rather than
      // burst to catch up, so the throttle asks a steady rate, never more
      if ((double)t > sched + 20000.0) sched = (double)t;
      while ((double)t < sched) {
        const double left = sched - (double)t;
        __nanosleep(left > 2000.0 ? 1000u : (unsigned)(left * 0.5) + 1u);
        t = wb_now();
      }
    }
    if ((k & 63ull) == 0) {
      if (threadIdx.x == 0) {
        if (stop[0]) {
          s_stop = 1;
        } else if (wb_now() - t0 > timeout_ns) {  // told the host: that region was not (fully) throttled
          stop[1] = 1;
          s_stop = 1;
        }
      }
      if (s_stop) break;
    }
  }
  if (acc == 0x9e3779b9u) sink[0] = acc;  // keeps the loads; practically never written
}

// Touches every line of the L2 hold region once (launched on the stream that carries the
// persisting access policy window): fills the set-aside before the first measurement.
extern "C" __global__ void __launch_bounds__(256) wb_emu_touch(const uint4* __restrict__ hold, long long hold16,
                                                               uint32_t* sink) {
  uint32_t acc = 0;
  for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < hold16;
       i += (long long)gridDim.x * blockDim.x) {
    const uint4 x = hold[i];
    acc ^= x.x ^ x.y ^ x.z ^ x.w;
  }
  if (acc == 0x9e3779b9u) sink[0] = acc;
}

// out[blockIdx.x] = the SM the CTA ran on; each CTA lingers `spin_ns` so the grid spreads over
// every SM it may use (a short grid could finish on a few SMs and prove nothing).
extern "C" __global__ void wb_emu_smid(int* out, unsigned long long spin_ns) {
  unsigned smid;
  asm volatile("mov.u32 %0, %%smid;" : "=r"(smid));
  if (threadIdx.x == 0) out[blockIdx.x] = (int)smid;
  const unsigned long long t0 = wb_now();
  while (wb_now() - t0 < spin_ns) __nanosleep(500);
}
