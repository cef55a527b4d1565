#include "ipc/internal/send_clock.h"

namespace lockless {
namespace internal {

int64_t RealtimeOffsetNs() {
  // A tick lasts 1-10 ms and the three reads take tens of ns: two ticks in
  // a row inside them need the thread preempted at just those points.
  constexpr int kCoarseTries = 3;
  for (int i = 0; i < kCoarseTries; ++i) {
    const int64_t monotonic_before_ns = ClockNowNs(CLOCK_MONOTONIC_COARSE);
    const int64_t realtime_ns = ClockNowNs(CLOCK_REALTIME_COARSE);
    const int64_t monotonic_after_ns = ClockNowNs(CLOCK_MONOTONIC_COARSE);
    if (monotonic_before_ns == monotonic_after_ns) {
      return realtime_ns - monotonic_before_ns;
    }
  }
  const int64_t monotonic_ns = ClockNowNs(CLOCK_MONOTONIC);
  return ClockNowNs(CLOCK_REALTIME) - monotonic_ns;
}

}  // namespace internal
}  // namespace lockless
