// Holds a stream until the host sets *flag (pinned host memory, read over PCIe), so every timed
// launch is queued before the first one starts: host launch gaps never land inside a timed
// region. Gives up after timeout_ns so a host that dies cannot wedge the GPU.
extern "C" __global__ void wb_block_until(const volatile int* flag, unsigned long long timeout_ns) {
  unsigned long long t0, t;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t0));
  while (*flag == 0) {
    __nanosleep(2000);
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
    if (t - t0 > timeout_ns) break;
  }
}
