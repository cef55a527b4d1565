#include "tools/bridge/bridge_stats.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace lockless::bridge {

int LatencyHistogram::BucketOf(uint64_t nanoseconds) {
  if (nanoseconds < kSubBuckets) return static_cast<int>(nanoseconds);
  const int power = 63 - __builtin_clzll(nanoseconds);  // >= 3
  // The 3 bits below the leading one pick the sub-bucket.
  const int sub = static_cast<int>((nanoseconds >> (power - 3)) & 7);
  const int bucket = (power - 2) * kSubBuckets + sub;
  return bucket < kBuckets ? bucket : kBuckets - 1;
}

int64_t LatencyHistogram::UpperBound(int bucket) {
  if (bucket < kSubBuckets) return bucket;
  const int power = bucket / kSubBuckets + 2;
  const int sub = bucket % kSubBuckets;
  return static_cast<int64_t>(
      (static_cast<uint64_t>(8 + sub + 1) << (power - 3)) - 1);
}

void LatencyHistogram::Add(int64_t nanoseconds) {
  // Clocks of two machines may disagree: a negative latency counts as 0.
  ++buckets_[BucketOf(nanoseconds < 0 ? 0
                                      : static_cast<uint64_t>(nanoseconds))];
  ++count_;
}

int64_t LatencyHistogram::Percentile(double p) const {
  if (count_ == 0) return 0;
  const double wanted = p / 100.0 * static_cast<double>(count_);
  uint64_t seen = 0;
  for (int bucket = 0; bucket < kBuckets; ++bucket) {
    seen += buckets_[bucket];
    if (seen > 0 && static_cast<double>(seen) >= wanted) {
      return UpperBound(bucket);
    }
  }
  return UpperBound(kBuckets - 1);
}

namespace {
std::string Micros(int64_t ns) {
  return absl::StrFormat("%.0fus", static_cast<double>(ns) / 1000.0);
}
}  // namespace

std::string FormatStats(const ChannelStats& s) {
  if (s.exported) {
    return absl::StrFormat(
        "export %s: forwarded %u, overwritten before forwarded %u, missed "
        "while bridge down %u, own imports not re-exported %u, errors %u",
        s.channel, s.forwarded, s.overwritten_before_forwarded,
        s.missed_while_down, s.not_reexported, s.errors);
  }
  return absl::StrFormat(
      "import %s: forwarded %u, lost in transport %u, lost at origin "
      "(overwritten) %u, duplicates dropped %u, malformed dropped %u, own "
      "dropped %u, errors %u, latency p50 %s p99 %s (n=%u)",
      s.channel, s.forwarded, s.lost_in_transport, s.lost_at_origin,
      s.duplicates_dropped, s.malformed_dropped, s.own_dropped, s.errors,
      Micros(s.latency.Percentile(50)), Micros(s.latency.Percentile(99)),
      s.latency.count());
}

}  // namespace lockless::bridge
