#include "ipc/internal/send_clock.h"

#include <chrono>
#include <cstdint>
#include <optional>

#include "gtest/gtest.h"
#include "ipc/lockless_queue.h"
#include "testing/queue_memory.h"

namespace lockless {
namespace {

using internal::BasicSendClock;
using internal::ClockNowNs;
using internal::SendTimes;

// The kernel's offset now, if one snapshot could be read.
std::optional<int64_t> KernelOffsetNs() {
  return internal::RealtimeOffsetNs<internal::SystemClocks>();
}

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
    const std::optional<int64_t> before_or = KernelOffsetNs();
    const int64_t monotonic_1 = ClockNowNs(CLOCK_MONOTONIC);
    const int64_t realtime = ClockNowNs(CLOCK_REALTIME);
    const int64_t monotonic_2 = ClockNowNs(CLOCK_MONOTONIC);
    const std::optional<int64_t> after = KernelOffsetNs();
    // The wall clock was stepped, or every coarse try straddled a tick
    // (the thread preempted each time): again.
    if (!before_or || before_or != after) continue;
    const int64_t before = *before_or;
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
    const std::optional<int64_t> offset_or = KernelOffsetNs();
    const int64_t realtime_before = ClockNowNs(CLOCK_REALTIME);
    MessageInfo info;
    ASSERT_EQ(sender.Send("12345678", 8, &info), SendResult::kOk);
    const int64_t realtime_after = ClockNowNs(CLOCK_REALTIME);
    // Stepped, or no snapshot read (as above): again.
    if (!offset_or || KernelOffsetNs() != offset_or) continue;
    const int64_t offset = *offset_or;
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

// A scripted timekeeper: one true monotonic time that every read advances by
// `advance_per_read_ns` (the time a read takes, or a preemption inside it),
// the kernel's offset (CLOCK_REALTIME - CLOCK_MONOTONIC, changed by a step),
// and coarse clocks that show the last tick.
struct ScriptedClocks {
  static inline int64_t now_ns = 0;
  static inline int64_t offset_ns = 0;
  static inline int64_t tick_ns = 1;
  static inline int64_t advance_per_read_ns = 0;

  static void Reset(int64_t tick, int64_t advance_per_read) {
    now_ns = 5'000'000'000;
    offset_ns = 1'700'000'000'000'000'000;
    tick_ns = tick;
    advance_per_read_ns = advance_per_read;
  }
  static int64_t NowNs(clockid_t clock) {
    const int64_t t = now_ns;
    now_ns += advance_per_read_ns;
    switch (clock) {
      case CLOCK_MONOTONIC:
        return t;
      case CLOCK_REALTIME:
        return t + offset_ns;
      case CLOCK_MONOTONIC_COARSE:
        return t - t % tick_ns;
      case CLOCK_REALTIME_COARSE:
        return t - t % tick_ns + offset_ns;
      default:
        ADD_FAILURE() << "unexpected clock " << clock;
        return 0;
    }
  }
};

using ScriptedSendClock = BasicSendClock<ScriptedClocks>;

// What the wall clock said at some instant during a Now() call: the stamp
// is a reading of CLOCK_REALTIME taken inside the send, as before Send read
// one clock only. (With no step, that keeps realtime stamps in ring order
// across senders: each is taken after the previous message was published.)
void ExpectRealtimeReadDuring(ScriptedSendClock& clock) {
  const int64_t entered_ns = ScriptedClocks::now_ns;
  const SendTimes times = clock.Now();
  const int64_t returned_ns = ScriptedClocks::now_ns;
  EXPECT_GE(times.monotonic_ns, entered_ns);
  EXPECT_GE(times.realtime_ns, entered_ns + ScriptedClocks::offset_ns);
  EXPECT_LE(times.realtime_ns, returned_ns + ScriptedClocks::offset_ns);
}

// A refresh whose every coarse try straddles a tick (here: a tick at every
// nanosecond, and 50 us spent in each read, as a thread preempted at each
// read) must not install an approximate offset: the fine pair's difference
// is off by the time between its two reads, and a sender keeping it stamps
// the future for the next 1 ms.
TEST(SendClockTest, StraddledRefreshNeverKeepsAnApproximateOffset) {
  ScriptedClocks::Reset(/*tick=*/1, /*advance_per_read=*/50'000);
  ScriptedSendClock clock;
  ExpectRealtimeReadDuring(clock);
  // The storm is over: a 4 ms tick, 20 ns per read.
  ScriptedClocks::tick_ns = 4'000'000;
  ScriptedClocks::advance_per_read_ns = 20;
  for (int i = 0; i < 100 && !::testing::Test::HasFailure(); ++i) {
    ExpectRealtimeReadDuring(clock);
  }
}

// The same, seen along the ring: sender A refreshed during the storm, sender
// B after it; B's send follows A's, so its realtime stamp must not be older.
// (The queue racer checks exactly this across its writers.)
TEST(SendClockTest, StraddledRefreshKeepsRealtimeOrderAcrossSenders) {
  ScriptedClocks::Reset(/*tick=*/1, /*advance_per_read=*/50'000);
  ScriptedSendClock a;
  ScriptedSendClock b;
  (void)a.Now();
  ScriptedClocks::tick_ns = 4'000'000;
  ScriptedClocks::advance_per_read_ns = 20;
  (void)b.Now();
  const SendTimes first = a.Now();
  const SendTimes second = b.Now();
  EXPECT_GT(second.monotonic_ns, first.monotonic_ns);
  EXPECT_GT(second.realtime_ns, first.realtime_ns);
}

// The documented staleness bound: after a wall-clock step, a sender's
// stamps carry the old offset for less than kOffsetRefreshNs of monotonic
// time, and the kernel's new one from then on.
TEST(SendClockTest, StepIsPickedUpWithinTheRefreshInterval) {
  ScriptedClocks::Reset(/*tick=*/4'000'000, /*advance_per_read=*/20);
  ScriptedSendClock clock;
  const int64_t old_offset_ns = ScriptedClocks::offset_ns;
  const SendTimes before_step = clock.Now();
  EXPECT_EQ(before_step.realtime_ns - before_step.monotonic_ns, old_offset_ns);
  ScriptedClocks::offset_ns += 3'600'000'000'000;  // An NTP step: +1 h.
  for (int i = 0; i < 200; ++i) {
    const SendTimes times = clock.Now();
    const int64_t since_refresh_ns =
        times.monotonic_ns - before_step.monotonic_ns;
    if (since_refresh_ns >= ScriptedSendClock::kOffsetRefreshNs) {
      EXPECT_EQ(times.realtime_ns - times.monotonic_ns,
                ScriptedClocks::offset_ns);
    } else {
      EXPECT_EQ(times.realtime_ns - times.monotonic_ns, old_offset_ns);
    }
    ScriptedClocks::now_ns += 10'000;
  }
}

}  // namespace
}  // namespace lockless
