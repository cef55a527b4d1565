#include "tools/benchmark_stats.h"

#include <algorithm>
#include <cmath>

namespace lockless {
namespace benchmark_tool {

int64_t Percentile(const std::vector<int64_t>& sorted_ns, double fraction) {
  // Rank ceil(fraction * n) counted from 1, so p50 of {1, 2} is 1 and p100
  // is the maximum; clamp for fraction 0 and rounding above n.
  const size_t n = sorted_ns.size();
  size_t rank = static_cast<size_t>(std::ceil(fraction * n));
  rank = std::clamp<size_t>(rank, 1, n);
  return sorted_ns[rank - 1];
}

LatencySummary Summarize(std::vector<int64_t>* samples_ns,
                         int64_t overhead_ns) {
  LatencySummary summary;
  std::vector<int64_t>& samples = *samples_ns;
  if (samples.empty()) return summary;
  double sum = 0;
  for (int64_t& sample : samples) {
    sample = std::max<int64_t>(0, sample - overhead_ns);
    sum += static_cast<double>(sample);
  }
  std::sort(samples.begin(), samples.end());
  summary.count = samples.size();
  summary.mean_ns = sum / static_cast<double>(samples.size());
  summary.p50_ns = static_cast<double>(Percentile(samples, 0.50));
  summary.p99_ns = static_cast<double>(Percentile(samples, 0.99));
  summary.p999_ns = static_cast<double>(Percentile(samples, 0.999));
  summary.max_ns = static_cast<double>(samples.back());
  return summary;
}

}  // namespace benchmark_tool
}  // namespace lockless
