// Per-channel statistics of a bridge: what was forwarded, what was lost and
// why, and the end-to-end latency of forwarded messages.
//
// Thread-safety: ChannelStats is a plain value; StatsCell is written by one
// channel thread and read by anybody (a mutex: the bridge is not an RT path).
#ifndef LOCKLESS_TOOLS_BRIDGE_BRIDGE_STATS_H_
#define LOCKLESS_TOOLS_BRIDGE_BRIDGE_STATS_H_

#include <array>
#include <cstdint>
#include <mutex>
#include <string>

namespace lockless::bridge {

// Latencies in a log-linear histogram: 8 sub-buckets per power of two of
// nanoseconds, so a percentile is within 1/8 (12.5%) of the true value.
class LatencyHistogram {
 public:
  void Add(int64_t nanoseconds);
  uint64_t count() const { return count_; }
  // The upper bound of the bucket holding the p-th percentile (0 < p <= 100);
  // 0 when empty.
  int64_t Percentile(double p) const;

 private:
  static constexpr int kSubBuckets = 8;
  static constexpr int kBuckets = 64 * kSubBuckets;
  static int BucketOf(uint64_t nanoseconds);
  static int64_t UpperBound(int bucket);
  std::array<uint64_t, kBuckets> buckets_{};
  uint64_t count_ = 0;
};

struct ChannelStats {
  std::string channel;
  bool exported = false;  // else imported
  // Messages written to DDS (export) or sent into the local channel (import).
  uint64_t forwarded = 0;
  // Export: overwritten in the local ring before the bridge read them.
  uint64_t overwritten_before_forwarded = 0;
  // Export: sent on the local channel while this bridge was not running and
  // not forwarded (the ring had overwritten them, or the channel is also
  // imported, where replaying old messages could loop).
  uint64_t missed_while_down = 0;
  // Export: messages this bridge itself imported, not sent back out.
  uint64_t not_reexported = 0;
  // Import: sequence gaps (best effort, or a DDS history overflow).
  uint64_t lost_in_transport = 0;
  // Import: the exporters' overwritten_before_forwarded, as last reported.
  uint64_t lost_at_origin = 0;
  // Import: samples already delivered before a restart (or twice by DDS).
  uint64_t duplicates_dropped = 0;
  // Import: samples refused (oversized, bad configuration, empty origin,
  // or a configuration other than the local channel's).
  uint64_t malformed_dropped = 0;
  // Import: samples whose origin is this bridge (a loop), dropped.
  uint64_t own_dropped = 0;
  // Export: DDS write failures; import: local Send failures.
  uint64_t errors = 0;
  LatencyHistogram latency;  // import: realtime receive - realtime send
};

// One line: "import pose: forwarded 1000, lost in transport 0, ..., latency
// p50 85us p99 210us (n=1000)".
std::string FormatStats(const ChannelStats& stats);

// A channel's statistics shared between its thread and readers.
class StatsCell {
 public:
  template <typename F>
  void Update(F&& f) {
    std::lock_guard<std::mutex> lock(mutex_);
    f(stats_);
  }
  ChannelStats Snapshot() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return stats_;
  }

 private:
  mutable std::mutex mutex_;
  ChannelStats stats_;
};

}  // namespace lockless::bridge

#endif  // LOCKLESS_TOOLS_BRIDGE_BRIDGE_STATS_H_
