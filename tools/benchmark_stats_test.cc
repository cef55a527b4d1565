#include "tools/benchmark_stats.h"

#include <vector>

#include "gtest/gtest.h"

namespace lockless {
namespace benchmark_tool {
namespace {

TEST(PercentileTest, NearestRank) {
  std::vector<int64_t> sorted;
  for (int i = 1; i <= 1000; ++i) sorted.push_back(i);
  EXPECT_EQ(Percentile(sorted, 0.50), 500);
  EXPECT_EQ(Percentile(sorted, 0.99), 990);
  EXPECT_EQ(Percentile(sorted, 0.999), 999);
  EXPECT_EQ(Percentile(sorted, 1.0), 1000);
  EXPECT_EQ(Percentile(sorted, 0.0), 1);
}

TEST(PercentileTest, SingleSample) { EXPECT_EQ(Percentile({7}, 0.999), 7); }

TEST(SummarizeTest, SubtractsOverheadAndClampsAtZero) {
  std::vector<int64_t> samples = {30, 10, 20, 5};
  const LatencySummary summary = Summarize(&samples, 8);
  EXPECT_EQ(summary.count, 4u);
  EXPECT_EQ(summary.p50_ns, 2);  // {0, 2, 12, 22}
  EXPECT_EQ(summary.max_ns, 22);
  EXPECT_DOUBLE_EQ(summary.mean_ns, 9);
}

TEST(SummarizeTest, EmptyIsZero) {
  std::vector<int64_t> samples;
  EXPECT_EQ(Summarize(&samples).count, 0u);
}

}  // namespace
}  // namespace benchmark_tool
}  // namespace lockless
