// Latency percentiles for tools/benchmark. Google Benchmark reports means
// only; a real-time user cares about the tail, so every latency here is kept
// as raw samples and summarised by nearest-rank percentiles.
//
// Thread-safety: plain functions on caller-owned data.
#ifndef LOCKLESS_TOOLS_BENCHMARK_STATS_H_
#define LOCKLESS_TOOLS_BENCHMARK_STATS_H_

#include <cstddef>
#include <cstdint>
#include <vector>

namespace lockless {
namespace benchmark_tool {

struct LatencySummary {
  size_t count = 0;
  double mean_ns = 0;
  double p50_ns = 0;
  double p99_ns = 0;
  double p999_ns = 0;
  double max_ns = 0;
};

// Nearest-rank percentile of `sorted_ns` (ascending, non-empty): the smallest
// sample with at least `fraction` of all samples at or below it.
int64_t Percentile(const std::vector<int64_t>& sorted_ns, double fraction);

// Sorts `samples_ns` in place and summarises it, after subtracting
// `overhead_ns` from every sample (clamped at 0), e.g. the cost of the timer
// reads around a timed call. An empty input gives a zero summary.
LatencySummary Summarize(std::vector<int64_t>* samples_ns,
                         int64_t overhead_ns = 0);

}  // namespace benchmark_tool
}  // namespace lockless

#endif  // LOCKLESS_TOOLS_BENCHMARK_STATS_H_
