#include "tools/bridge/bridge_stats.h"

#include "gtest/gtest.h"

namespace lockless::bridge {
namespace {

TEST(LatencyHistogramTest, PercentilesWithinOneEighth) {
  LatencyHistogram histogram;
  EXPECT_EQ(histogram.Percentile(50), 0);
  for (int64_t us = 1; us <= 1000; ++us) histogram.Add(us * 1000);
  EXPECT_EQ(histogram.count(), 1000u);
  const int64_t p50 = histogram.Percentile(50);
  const int64_t p99 = histogram.Percentile(99);
  EXPECT_GE(p50, 500'000);
  EXPECT_LE(p50, 500'000 * 9 / 8);
  EXPECT_GE(p99, 990'000);
  EXPECT_LE(p99, 990'000 * 9 / 8);
}

TEST(LatencyHistogramTest, NegativeAndHugeValuesAreKept) {
  LatencyHistogram histogram;
  histogram.Add(-5);  // clocks of two machines disagree
  histogram.Add(INT64_MAX);
  EXPECT_EQ(histogram.count(), 2u);
  EXPECT_EQ(histogram.Percentile(50), 0);
  EXPECT_GT(histogram.Percentile(100), int64_t{1} << 62);
}

TEST(FormatStatsTest, NamesEveryLoss) {
  ChannelStats stats;
  stats.channel = "pose";
  stats.forwarded = 10;
  stats.lost_in_transport = 2;
  stats.malformed_dropped = 1;
  EXPECT_EQ(FormatStats(stats),
            "import pose: forwarded 10, lost in transport 2, lost at origin "
            "(overwritten) 0, duplicates dropped 0, malformed dropped 1, own "
            "dropped 0, errors 0, latency p50 0us p99 0us (n=0)");
  stats.exported = true;
  stats.overwritten_before_forwarded = 3;
  EXPECT_EQ(FormatStats(stats),
            "export pose: forwarded 10, overwritten before forwarded 3, "
            "missed while bridge down 0, own imports not re-exported 0, "
            "errors 0");
}

}  // namespace
}  // namespace lockless::bridge
