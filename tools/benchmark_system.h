// Machine-level helpers for tools/benchmark: the clock every measurement
// uses, CPU pinning, and the machine facts printed above the results.
//
// Every latency in the benchmark is a difference of two CLOCK_MONOTONIC
// readings (a vDSO call, no syscall), never rdtsc: the clock is the same in
// every process, so a timestamp written by one process can be subtracted from
// a reading taken in another.
//
// Thread-safety: every function may be called from any thread. Pinning acts
// on the calling thread only.
#ifndef LOCKLESS_TOOLS_BENCHMARK_SYSTEM_H_
#define LOCKLESS_TOOLS_BENCHMARK_SYSTEM_H_

#include <sched.h>
#include <time.h>

#include <cstdint>
#include <string>

namespace lockless {
namespace benchmark_tool {

// CLOCK_MONOTONIC in nanoseconds.
inline int64_t MonotonicNowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

// Tells the CPU we are spinning (frees pipeline resources for the sibling
// hyperthread and avoids a memory-order mis-speculation flush on exit).
inline void CpuRelax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

// Median cost of one MonotonicNowNs() reading, measured as back-to-back pairs.
// Subtracted from per-call timings so they estimate the call alone.
int64_t MeasureTimerOverheadNs();

// Pins the calling thread to `cpu` (modulo the CPUs online). Returns false if
// the kernel refused (e.g. a cpuset forbids it); the caller runs unpinned.
bool PinCurrentThreadToCpu(int cpu);

// The calling thread's affinity, to restore after pinning.
cpu_set_t CurrentAffinity();
void RestoreAffinity(const cpu_set_t& mask);

int OnlineCpus();

// /proc/loadavg's 1, 5 and 15 minute averages: whether other work shared the
// CPUs during the run.
std::string LoadAverage();

// "nproc=2, kernel=Linux 6.1.0 x86_64, cpu=AMD EPYC, load average=0.1 ...":
// what a reader needs to judge the numbers.
std::string MachineFacts();

}  // namespace benchmark_tool
}  // namespace lockless

#endif  // LOCKLESS_TOOLS_BENCHMARK_SYSTEM_H_
