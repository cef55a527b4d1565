// Cross-process measurements for tools/benchmark, identical for every
// Transport: the parent process sends, a forked child receives.
//
// Latency (one-way): the sender writes CLOCK_MONOTONIC into the payload just
// before Send; the receiver subtracts it from its own reading right after
// Receive returns. Messages are sent one at a time: the sender waits until
// the receiver has acknowledged the previous one (through a shared-memory
// counter, not the transport) and then another `gap_ns`, so every sample is
// one wake-up of an idle receiver, never queueing behind earlier messages -
// and a blocking receiver has really gone back to sleep. Sampling stops at
// `iterations` or after `latency_budget_ms`, whichever comes first (a loaded
// machine can make every wake-up take milliseconds); summary.count says how
// many samples were taken.
//
// Throughput: the sender streams sequence-numbered messages as fast as the
// transport accepts them for `duration_ms`, then an end marker. The receiver
// counts what it received (and any sequence number going backwards); lost =
// sent - received (only our queue can lose: it overwrites instead of
// blocking the sender). Throughput is messages received divided by the
// receiver's time from the first message to the end marker.
//
// Each message repeats its stamp in its last 8 bytes (when it has 16 or
// more), and the receiver counts mismatches as torn: a correct transport
// reports 0.
//
// With `pin`, the sender runs on CPU sender_cpu and the receiver on
// receiver_cpu, so the two never share a core. Not thread-safe: forks the
// calling process; call from a single-threaded phase of the program.
#ifndef LOCKLESS_TOOLS_BENCHMARK_DRIVER_H_
#define LOCKLESS_TOOLS_BENCHMARK_DRIVER_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "tools/benchmark_stats.h"
#include "tools/benchmark_transport.h"

namespace lockless {
namespace benchmark_tool {

struct CrossProcessOptions {
  int iterations = 10'000;  // latency samples per measurement, at most
  // Latency sending stops after this long even if fewer samples were taken.
  int latency_budget_ms = 1'500;
  int warmup = 1'000;       // latency messages sent before sampling starts
  int64_t gap_ns = 10'000;  // idle time before each latency message
  int duration_ms = 200;    // sending time per throughput measurement
  bool pin = true;
  int sender_cpu = 0;
  int receiver_cpu = 1;
  int watchdog_s = 30;  // a measurement stuck this long aborts the run
};

struct LatencyResult {
  LatencySummary summary;
  uint64_t torn = 0;
  std::string settings;  // Transport::settings()
};

struct ThroughputResult {
  uint64_t sent = 0;
  uint64_t received = 0;
  uint64_t lost = 0;            // sent - received
  uint64_t too_old_events = 0;  // Transport::too_old_events()
  uint64_t torn = 0;
  uint64_t reordered = 0;
  double seconds = 0;  // receiver: first message to end marker
  std::string settings;

  double messages_per_second() const {
    return seconds > 0 ? static_cast<double>(received) / seconds : 0;
  }
};

// Unavailable if the transport cannot carry `message_bytes` here; Internal
// with the transport's error if a side failed mid-way.
absl::StatusOr<LatencyResult> MeasureLatency(
    const TransportFactory& factory, size_t message_bytes,
    const CrossProcessOptions& options);

absl::StatusOr<ThroughputResult> MeasureThroughput(
    const TransportFactory& factory, size_t message_bytes,
    const CrossProcessOptions& options);

}  // namespace benchmark_tool
}  // namespace lockless

#endif  // LOCKLESS_TOOLS_BENCHMARK_DRIVER_H_
