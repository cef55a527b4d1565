// The in-process part of tools/benchmark: what one Send and one Read cost,
// on a queue in anonymous shared memory, with no second process involved.
//
//   - Google Benchmark cases "Send/<bytes>", "SendContended/<bytes>/threads:N"
//     (N senders on one queue, one per thread), "Read/<bytes>" (a full
//     ring read round-robin) and "SendWakeup/<bytes>" (Send then
//     WakeUpper::Wakeup with one watcher thread). They give means only.
//   - MeasureSendCalls times single Send calls with CLOCK_MONOTONIC around
//     each call, for the tail (p99.9, max) a real-time sender cares about.
//
// Thread-safety: call from the main thread; both start their own threads.
#ifndef LOCKLESS_TOOLS_BENCHMARK_MICRO_H_
#define LOCKLESS_TOOLS_BENCHMARK_MICRO_H_

#include <cstddef>
#include <cstdint>
#include <vector>

#include "tools/benchmark_stats.h"

namespace lockless {
namespace benchmark_tool {

struct MicroOptions {
  std::vector<size_t> sizes;
  int contending_senders = 2;
  uint32_t queue_size = 1024;
};

// Registers the Google Benchmark cases above for every size. Run them with
// benchmark::RunSpecifiedBenchmarks.
void RegisterMicroBenchmarks(const MicroOptions& options);

// Times `calls` Send calls of `message_bytes` on each of `senders` threads
// (sender i pinned to CPU i, all on one queue) and summarises every call,
// minus `timer_overhead_ns`. Aborts with a message if the queue cannot be
// set up (a bug, not a user error).
LatencySummary MeasureSendCalls(size_t message_bytes, int senders, int calls,
                                uint32_t queue_size, int64_t timer_overhead_ns);

// The workload tools/benchmark runs under callgrind to count instructions
// (benchmark_instructions.h): `calls` Sends of `message_bytes` on a fresh
// queue (copying, or zero-copy: the payload written into data() and
// Send(length)), or `calls` GOOD Reads of a full ring (filled by Sends between
// rounds). Returns the number of calls of the counted kind that did not
// succeed (0 when all is well). Aborts if the queue cannot be set up.
// `pinning` (sends only): what pinning does around the counted Sends, on a
// channel with kPinnersCounted pinner slots unless kUnconfigured.
// kRateLimitedSend: copying Sends on a channel with min_message_age_ns 1,
// so the age check runs on every Send and never refuses.
enum class CountedCall { kSend, kZeroCopySend, kRateLimitedSend, kRead };
enum class CountedPinning {
  kUnconfigured,   // num_pinners 0 (the default channel).
  kNoPin,          // num_pinners 2, nothing pinned: each Send scans.
  kHeldPin,        // One message pinned all along (parked once).
  kSwapEverySend,  // Before each Send (uncounted), pin the message it
                   // replaces: each Send parks a pinned scratch.
};
inline constexpr uint32_t kPinnersCounted = 2;
int64_t RunCountedCalls(CountedCall call, size_t message_bytes, int calls,
                        uint32_t queue_size,
                        CountedPinning pinning = CountedPinning::kUnconfigured);

}  // namespace benchmark_tool
}  // namespace lockless

#endif  // LOCKLESS_TOOLS_BENCHMARK_MICRO_H_
