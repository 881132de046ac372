// Read-bandwidth probe: every byte of a buffer read once with 16-byte loads, four in flight per
// thread, grid-stride. The xor of everything is written only if it equals an impossible value,
// so the loads cannot be optimised away and almost nothing is written.
#include <stdint.h>

extern "C" __global__ void __launch_bounds__(512) wb_read_probe(const uint4* __restrict__ src,
                                                                 long long n16, uint32_t* sink) {
  const long long stride = (long long)gridDim.x * blockDim.x;
  long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
  uint32_t acc = 0;
  for (; i + 3 * stride < n16; i += 4 * stride) {
    const uint4 a = src[i], b = src[i + stride], c = src[i + 2 * stride], d = src[i + 3 * stride];
    acc ^= a.x ^ a.y ^ a.z ^ a.w ^ b.x ^ b.y ^ b.z ^ b.w ^ c.x ^ c.y ^ c.z ^ c.w ^ d.x ^ d.y ^ d.z ^ d.w;
  }
  for (; i < n16; i += stride) {
    const uint4 a = src[i];
    acc ^= a.x ^ a.y ^ a.z ^ a.w;
  }
  if (acc == 0x9e3779b9u) sink[0] = acc;
}
