#include "ipc/internal/send_clock.h"

#include <chrono>
#include <cstdint>

#include "gtest/gtest.h"
#include "ipc/lockless_queue.h"
#include "testing/queue_memory.h"

namespace lockless {
namespace {

using internal::ClockNowNs;
using internal::RealtimeOffsetNs;

// A wall-clock step (e.g. NTP stepping a freshly booted machine) between two
// reads changes the offset; the checks below then look again. Bounded: two
// steps in a row within microseconds do not happen.
constexpr int kTriesAcrossClockSteps = 100;

int64_t ToNs(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             t.time_since_epoch())
      .count();
}
int64_t ToNs(std::chrono::system_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             t.time_since_epoch())
      .count();
}

// The offset lies between what the fine clocks say around it, and is the
// same every time: exact, not an estimate that varies with timing.
TEST(SendClockTest, OffsetIsTheKernelsExactOne) {
  int checked = 0;
  for (int i = 0; i < kTriesAcrossClockSteps && checked < 1000; ++i) {
    const int64_t before = RealtimeOffsetNs();
    const int64_t monotonic_1 = ClockNowNs(CLOCK_MONOTONIC);
    const int64_t realtime = ClockNowNs(CLOCK_REALTIME);
    const int64_t monotonic_2 = ClockNowNs(CLOCK_MONOTONIC);
    const int64_t after = RealtimeOffsetNs();
    if (before != after) continue;  // The wall clock was stepped: again.
    EXPECT_LE(realtime - monotonic_2, before);
    EXPECT_GE(realtime - monotonic_1, before);
    ++checked;
    i = 0;
  }
  EXPECT_EQ(checked, 1000);
}

// Send's realtime stamp is its monotonic stamp plus that offset, so it is
// what CLOCK_REALTIME said at the send.
TEST(SendClockTest, SendStampsRealtimeAtTheMonotonicInstant) {
  QueueConfig config;
  config.num_watchers = 0;
  config.num_senders = 1;
  config.queue_size = 4;
  config.message_data_size_bytes = 8;
  testing::QueueMemory region(config);
  LocklessQueue queue =
      *LocklessQueue::Attach(region.data(), region.size_bytes(), config);
  Sender sender = *queue.MakeSender();
  int checked = 0;
  for (int i = 0; i < kTriesAcrossClockSteps && checked < 1000; ++i) {
    const int64_t offset = RealtimeOffsetNs();
    const int64_t realtime_before = ClockNowNs(CLOCK_REALTIME);
    MessageInfo info;
    ASSERT_EQ(sender.Send("12345678", 8, &info), SendResult::kOk);
    const int64_t realtime_after = ClockNowNs(CLOCK_REALTIME);
    if (RealtimeOffsetNs() != offset) continue;  // Stepped: again.
    const int64_t monotonic_ns = ToNs(info.monotonic_sent_time);
    const int64_t realtime_ns = ToNs(info.realtime_sent_time);
    EXPECT_EQ(realtime_ns - monotonic_ns, offset);
    EXPECT_GE(realtime_ns, realtime_before);
    EXPECT_LE(realtime_ns, realtime_after);
    ++checked;
    i = 0;
  }
  EXPECT_EQ(checked, 1000);
}

}  // namespace
}  // namespace lockless
