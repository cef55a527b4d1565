// Adversarial review of the wake-up change (issue 11): failing cases.
#include <signal.h>
#include <time.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <thread>

#include "gtest/gtest.h"
#include "ipc/lockless_queue.h"
#include "sync/futex.h"
#include "testing/queue_memory.h"

namespace lockless {
namespace {

using ::lockless::testing::QueueMemory;

QueueConfig ReviewConfig() {
  QueueConfig config;
  config.num_watchers = 4;
  config.num_senders = 2;
  config.queue_size = 16;
  config.message_data_size_bytes = 16;
  return config;
}

// A sender that dies after step 6 (its seq_cst CAS advanced
// next_queue_index) and before step 7 (waiter_bits load + FUTEX_WAKE) leaves
// a Waiter asleep on a value that is no longer current: LatestQueueIndex()
// is past next_to_read, yet a Wait with no deadline never returns. Emulated
// by making exactly step 6's write with no step 7.
TEST(WaiterReviewTest, SenderDeathBetweenAdvanceAndWakeLosesNoWakeup) {
  QueueMemory memory(ReviewConfig());
  LocklessQueue queue = *LocklessQueue::Attach(memory.data(),
                                               memory.size_bytes(),
                                               ReviewConfig());
  absl::StatusOr<Sender> sender = queue.MakeSender();
  ASSERT_TRUE(sender.ok());
  ASSERT_EQ(sender->Send("a", 1), SendResult::kOk);  // index 0
  internal::RegionHeader* header = queue.region().header();
  std::atomic<int> result{-1};
  std::thread waiter_thread([&] {
    absl::StatusOr<Waiter> waiter = queue.MakeWaiter();
    ASSERT_TRUE(waiter.ok());
    // Generous deadline so the test ends; the contract is "until published".
    result.store(static_cast<int>(waiter->Wait(
        queue.MakeQueueIndex(1), MonotonicNowNs() + int64_t{8} * 1000000000)));
  });
  while (header->waiter_bits.load() == 0) std::this_thread::yield();
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // asleep
  // The dying sender's step 6 (after its step 5 published index 1).
  QueueIndex current = header->next_queue_index.Load(queue.config().queue_size);
  ASSERT_TRUE(header->next_queue_index.SeqCstCompareAndExchangeStrong(
      &current, current.Increment()));
  ASSERT_EQ(queue.LatestQueueIndex(), queue.MakeQueueIndex(1));
  const auto start = std::chrono::steady_clock::now();
  waiter_thread.join();
  const double waited =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
          .count();
  EXPECT_EQ(result.load(), static_cast<int>(WaitResult::kReady));
  // Published index 1 must end the wait in bounded time (the fix bounds it by
  // the pending re-arm period, like the signal path), not at the deadline.
  EXPECT_LT(waited, 2.5) << "Wait slept on although LatestQueueIndex() had "
                            "passed next_to_read";
}

// waiter_bits scribbled with bits of slots that do not exist (>=
// num_watchers): no registration ever clears them, so every Send makes a
// FUTEX_WAKE system call forever.
TEST(WaiterReviewTest, OutOfRangeWaiterBitsAreClearedByRegistration) {
  QueueMemory memory(ReviewConfig());
  LocklessQueue queue = *LocklessQueue::Attach(memory.data(),
                                               memory.size_bytes(),
                                               ReviewConfig());
  auto& bits = queue.region().header()->waiter_bits;
  bits.store((uint64_t{1} << 63) | (uint64_t{1} << 4));  // slots 63 and 4
  absl::StatusOr<Waiter> waiter = queue.MakeWaiter();
  ASSERT_TRUE(waiter.ok());
  EXPECT_EQ(bits.load(), 0u) << "Send will call FUTEX_WAKE on every message";
}

// A waker that dies right after claiming a watcher's pending flag (0 ->
// stamp, before signalling) - the death suite's WakerDiesMidWakeup - makes
// every other waker within the next second report already_pending and queue
// nothing. The documented bound ("delays that watcher's wake-ups by at most
// 1 s") holds only if yet another Wakeup comes after the second: the message
// published now is never signalled. Emulated by writing the stamp the dead
// waker leaves.
TEST(WakeupReviewTest, WakerDeathAfterClaimLosesAnotherWakersWakeup) {
  QueueMemory memory(ReviewConfig());
  LocklessQueue queue = *LocklessQueue::Attach(memory.data(),
                                               memory.size_bytes(),
                                               ReviewConfig());
  sigset_t block, previous;
  sigemptyset(&block);
  sigaddset(&block, WakeupSignal());
  pthread_sigmask(SIG_BLOCK, &block, &previous);
  absl::StatusOr<Watcher> watcher = queue.MakeWatcher(0);
  ASSERT_TRUE(watcher.ok());
  timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  const uint32_t stamp =
      static_cast<uint32_t>((int64_t{now.tv_sec} * 1000 + now.tv_nsec / 1000000)) |
      1u;
  queue.region().watcher(watcher->slot())->pending.store(stamp);  // dead waker
  absl::StatusOr<Sender> sender = queue.MakeSender();
  ASSERT_TRUE(sender.ok());
  ASSERT_EQ(sender->Send("a", 1), SendResult::kOk);
  WakeUpper wake_upper(queue);
  WakeupReport report;
  wake_upper.Wakeup(0, &report);  // the live waker of this message
  EXPECT_EQ(report.signalled + report.already_pending, 1);
  // No further sends. The watcher (epoll on its signalfd, no timeout) must be
  // woken for this message within the documented bound.
  const timespec wait{2, 0};
  const int got = sigtimedwait(&block, nullptr, &wait);
  EXPECT_EQ(got, WakeupSignal())
      << "the watcher is never woken for a message it has not read";
  const timespec zero{0, 0};
  while (sigtimedwait(&block, nullptr, &zero) > 0) {
  }
  pthread_sigmask(SIG_SETMASK, &previous, nullptr);
}

}  // namespace
}  // namespace lockless
