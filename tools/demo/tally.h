// What the consumer counted: per producer stream and overall, for the current
// report interval and for the whole run. Filled by the consumer's checks
// (consumer.cc), printed and judged by report.h.
//
// Contract: plain data owned by the consumer process; not shared, not
// thread-safe. The interval_* fields and StreamTally::interval cover the
// current report interval: report.h's PrintIntervalLine resets them.
#ifndef LOCKLESS_TOOLS_DEMO_TALLY_H_
#define LOCKLESS_TOOLS_DEMO_TALLY_H_

#include <cstdint>
#include <vector>

#include "tools/demo/options.h"

namespace lockless {
namespace demo {

// One producer's stream, as the consumer saw it.
struct StreamTally {
  uint64_t received = 0;
  uint64_t expected = 0;  // next sequence we expect
  uint64_t last = 0;      // last sequence seen (valid when received > 0)
  uint64_t gaps = 0;      // skipped sequences with no TOO_OLD to explain them
  uint64_t skipped_by_resync = 0;  // skipped sequences after a TOO_OLD
  bool resynced = false;
  uint64_t interval = 0;  // received in the current report interval
};

struct ConsumerTally {
  StreamTally streams[kMaxProducers];
  std::vector<uint32_t> interval_latency_us;  // send -> read, this interval
  std::vector<uint32_t> all_latency_us;       // send -> read, whole run
  uint64_t too_old = 0, interval_too_old = 0, skipped_indices = 0;
  uint64_t corrupted = 0, inconsistent = 0, order_violations = 0;
  uint64_t anomalies = 0, gap_events = 0;
  uint64_t signals = 0, interval_signals = 0, polls_woken = 0;
  uint64_t empty_wakeups = 0, timeouts = 0, timeout_messages = 0;
};

}  // namespace demo
}  // namespace lockless

#endif  // LOCKLESS_TOOLS_DEMO_TALLY_H_
