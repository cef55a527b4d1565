#include "ipc/lockless_queue.h"

#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "ipc/signalfd.h"
#include "sync/futex.h"
#include "testing/queue_memory.h"
#include "testing/sender_thread.h"

namespace lockless {
namespace {

// A zero-filled shared mapping, like a fresh /dev/shm file.
using SharedRegion = ::lockless::testing::QueueMemory;

using ::lockless::testing::AbandonLikeADeadThread;

QueueConfig SmallConfig() {
  QueueConfig config;
  config.num_watchers = 3;
  config.num_senders = 3;
  config.queue_size = 10;
  config.message_data_size_bytes = 64;
  return config;
}

std::string ReadString(const LocklessQueue& queue, QueueIndex index,
                       ReadResult* result) {
  char buffer[256];
  MessageInfo info;
  *result = queue.Read(index, &info, buffer, sizeof(buffer));
  if (*result != ReadResult::kGood) return "";
  return std::string(buffer, info.length);
}

TEST(LocklessQueueTest, EmptyQueue) {
  SharedRegion region(SmallConfig());
  absl::StatusOr<LocklessQueue> queue =
      LocklessQueue::Attach(region.data(), region.size_bytes(), SmallConfig());
  ASSERT_TRUE(queue.ok()) << queue.status();
  EXPECT_FALSE(queue->LatestQueueIndex().valid());
  ReadResult result;
  ReadString(*queue, queue->MakeQueueIndex(0), &result);
  EXPECT_EQ(result, ReadResult::kNothingNew);
}

TEST(LocklessQueueTest, SendAndReadBack) {
  SharedRegion region(SmallConfig());
  LocklessQueue queue =
      *LocklessQueue::Attach(region.data(), region.size_bytes(), SmallConfig());
  absl::StatusOr<Sender> sender = queue.MakeSender();
  ASSERT_TRUE(sender.ok()) << sender.status();
  MessageInfo sent;
  ASSERT_EQ(sender->Send("hello", 5, &sent), SendResult::kOk);
  EXPECT_EQ(sent.queue_index.index(), 0u);
  EXPECT_EQ(queue.LatestQueueIndex().index(), 0u);

  char buffer[64];
  MessageInfo info;
  ASSERT_EQ(queue.Read(queue.MakeQueueIndex(0), &info, buffer, sizeof(buffer)),
            ReadResult::kGood);
  EXPECT_EQ(std::string(buffer, info.length), "hello");
  EXPECT_EQ(info.monotonic_sent_time, sent.monotonic_sent_time);
  EXPECT_EQ(info.realtime_sent_time, sent.realtime_sent_time);
  ReadResult result;
  ReadString(queue, queue.MakeQueueIndex(1), &result);
  EXPECT_EQ(result, ReadResult::kNothingNew);
}

// 20,000 sends with reads five behind: every read is GOOD (the ring holds
// ten) and LatestQueueIndex is exact after every send.
TEST(LocklessQueueTest, ManySendsWithReadsBehind) {
  const QueueConfig config = SmallConfig();
  SharedRegion region(config);
  LocklessQueue queue =
      *LocklessQueue::Attach(region.data(), region.size_bytes(), config);
  Sender sender = *queue.MakeSender();
  std::chrono::steady_clock::time_point previous_time;
  for (uint32_t i = 0; i < 20000; ++i) {
    const std::string payload = "message " + std::to_string(i);
    ASSERT_EQ(sender.Send(payload.data(), payload.size()), SendResult::kOk);
    ASSERT_EQ(queue.LatestQueueIndex().index(), i);
    if (i >= 5) {
      ReadResult result;
      const std::string read =
          ReadString(queue, queue.MakeQueueIndex(i - 5), &result);
      ASSERT_EQ(result, ReadResult::kGood) << "at " << i;
      ASSERT_EQ(read, "message " + std::to_string(i - 5));
    }
    if (i >= 10) {
      ReadResult result;
      ReadString(queue, queue.MakeQueueIndex(i - 10), &result);
      ASSERT_EQ(result, ReadResult::kTooOld) << "at " << i;
    }
    MessageInfo info;
    ASSERT_EQ(queue.Read(queue.MakeQueueIndex(i), &info, nullptr, 0),
              ReadResult::kGood);
    ASSERT_GT(info.monotonic_sent_time, previous_time);
    previous_time = info.monotonic_sent_time;
  }
}

TEST(LocklessQueueTest, ZeroCopySend) {
  SharedRegion region(SmallConfig());
  LocklessQueue queue =
      *LocklessQueue::Attach(region.data(), region.size_bytes(), SmallConfig());
  Sender sender = *queue.MakeSender();
  for (int i = 0; i < 25; ++i) {
    void* buffer = sender.data();
    ASSERT_EQ(sender.max_size(), 64u);
    const int length = std::snprintf(static_cast<char*>(buffer), 64,
                                     "zero copy %d", i);
    ASSERT_EQ(sender.Send(length), SendResult::kOk);
    ReadResult result;
    EXPECT_EQ(ReadString(queue, queue.MakeQueueIndex(i), &result),
              "zero copy " + std::to_string(i));
    // A new scratch buffer after each send: the old one is in the ring.
    EXPECT_NE(sender.data(), buffer);
  }
}

TEST(LocklessQueueTest, OversizedSendIsRejectedAndQueueUntouched) {
  SharedRegion region(SmallConfig());
  LocklessQueue queue =
      *LocklessQueue::Attach(region.data(), region.size_bytes(), SmallConfig());
  Sender sender = *queue.MakeSender();
  ASSERT_EQ(sender.Send("a", 1), SendResult::kOk);
  std::vector<char> big(65, 'x');
  EXPECT_EQ(sender.Send(big.data(), big.size()),
            SendResult::kMessageTooLarge);
  EXPECT_EQ(sender.Send(65), SendResult::kMessageTooLarge);
  EXPECT_EQ(queue.LatestQueueIndex().index(), 0u);
  ReadResult result;
  EXPECT_EQ(ReadString(queue, queue.MakeQueueIndex(0), &result), "a");
  EXPECT_EQ(sender.Send(big.data(), 64), SendResult::kOk);
  EXPECT_EQ(queue.LatestQueueIndex().index(), 1u);
}

TEST(LocklessQueueTest, BadConfigurationsRejected) {
  const auto rejected = [](QueueConfig config, const std::string& needle) {
    const absl::StatusOr<uint64_t> size = QueueMemorySize(config);
    EXPECT_FALSE(size.ok());
    EXPECT_EQ(size.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(size.status().message().find(needle), std::string::npos)
        << size.status();
  };
  QueueConfig config = SmallConfig();
  config.queue_size = 0;
  rejected(config, "queue_size");
  config = SmallConfig();
  config.num_senders = 0;
  rejected(config, "num_senders");
  config = SmallConfig();
  config.message_data_size_bytes = 0;
  rejected(config, "message_data_size_bytes");
  config = SmallConfig();
  config.message_data_size_bytes = uint64_t{1} << 40;
  rejected(config, "message_data_size_bytes");
  config = SmallConfig();
  config.queue_size = 0x7fffffff;
  config.num_senders = 0xffffffff;  // More messages than any Index holds.
  rejected(config, "messages");
  config = SmallConfig();
  config.queue_size = 0xfffffff0;
  rejected(config, "queue_size");
  if (sizeof(Index) == 4) {
    // With 16 queue-index bits, 32768 makes the laps around the wrap point
    // alias (see ValidateConfig).
    config = SmallConfig();
    config.queue_size = 32768;
    rejected(config, "aliases");
  }
  config = SmallConfig();
  config.queue_size = 60000;  // Addressable by both entry widths.
  config.message_data_size_bytes = 1 << 30;
  rejected(config, "maximum region size");
}

TEST(LocklessQueueTest, AttachValidatesExistingRegion) {
  const QueueConfig config = SmallConfig();
  SharedRegion region(config);
  ASSERT_TRUE(
      LocklessQueue::Attach(region.data(), region.size_bytes(), config).ok());
  QueueConfig other = config;
  other.num_watchers = 2;
  absl::StatusOr<LocklessQueue> mismatch =
      LocklessQueue::Attach(region.data(), region.size_bytes(), other);
  ASSERT_FALSE(mismatch.ok());
  EXPECT_EQ(mismatch.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(mismatch.status().message().find("created with configuration"),
            std::string::npos)
      << mismatch.status();
  EXPECT_FALSE(
      LocklessQueue::Attach(region.data(), region.size_bytes() - 1, config).ok());
}

TEST(LocklessQueueTest, ForeignRegionRejectedAndUntouched) {
  const QueueConfig config = SmallConfig();
  SharedRegion region(config);
  std::memset(region.data(), 0x5a, region.size_bytes());
  absl::StatusOr<LocklessQueue> queue =
      LocklessQueue::Attach(region.data(), region.size_bytes(), config);
  ASSERT_FALSE(queue.ok());
  EXPECT_NE(queue.status().message().find("bad magic"), std::string::npos);
  const unsigned char* bytes =
      static_cast<const unsigned char*>(region.data());
  for (size_t i = 0; i < region.size_bytes(); ++i) ASSERT_EQ(bytes[i], 0x5a) << i;
}

TEST(LocklessQueueTest, TooManySendersIsReportedAndRecovers) {
  SharedRegion region(SmallConfig());
  LocklessQueue queue =
      *LocklessQueue::Attach(region.data(), region.size_bytes(), SmallConfig());
  std::vector<Sender> senders;
  for (int i = 0; i < 3; ++i) {
    absl::StatusOr<Sender> sender = queue.MakeSender();
    ASSERT_TRUE(sender.ok()) << sender.status();
    senders.push_back(*std::move(sender));
  }
  absl::StatusOr<Sender> extra = queue.MakeSender();
  ASSERT_FALSE(extra.ok());
  EXPECT_EQ(extra.status().code(), absl::StatusCode::kResourceExhausted);
  senders.pop_back();
  EXPECT_TRUE(queue.MakeSender().ok());
}

// A sender whose thread exits holding its slot is recovered by the next
// MakeSender: the slot is reusable and every message still has one owner.
TEST(LocklessQueueTest, DeadSenderThreadIsRecovered) {
  QueueConfig config = SmallConfig();
  config.num_senders = 1;
  SharedRegion region(config);
  LocklessQueue queue =
      *LocklessQueue::Attach(region.data(), region.size_bytes(), config);
  std::thread([&] {
    Sender sender = *queue.MakeSender();
    ASSERT_EQ(sender.Send("before death", 12), SendResult::kOk);
    AbandonLikeADeadThread(std::move(sender));
  }).join();
  absl::StatusOr<Sender> sender = queue.MakeSender();
  ASSERT_TRUE(sender.ok()) << sender.status();
  for (int i = 0; i < 30; ++i) {
    ASSERT_EQ(sender->Send("after", 5), SendResult::kOk);
  }
  EXPECT_EQ(queue.LatestQueueIndex().index(), 30u);
}

// A reader that fell many laps behind gets TOO_OLD, never NOTHING_NEW. With
// 16-bit entries (--config=index32) slot 0 then holds index 65536, whose low
// bits alias index 0 = "one lap before 16384": the ring slot alone would say
// "not sent yet".
TEST(LocklessQueueTest, ReaderLapsBehindGetsTooOldEvenWhenEntryBitsAlias) {
  QueueConfig config;
  config.num_watchers = 0;
  config.num_senders = 1;
  config.queue_size = 16384;
  config.message_data_size_bytes = 8;
  SharedRegion region(config);
  LocklessQueue queue =
      *LocklessQueue::Attach(region.data(), region.size_bytes(), config);
  Sender sender = *queue.MakeSender();
  for (uint64_t i = 0; i < 5 * config.queue_size; ++i) {
    ASSERT_EQ(sender.Send(&i, sizeof(i)), SendResult::kOk);
  }
  for (uint32_t stale : {16384u, 1u, 16385u, 49151u}) {
    uint64_t out = 0;
    MessageInfo info;
    EXPECT_EQ(queue.Read(queue.MakeQueueIndex(stale), &info, &out, sizeof(out)),
              ReadResult::kTooOld)
        << "index " << stale;
  }
  // The boundaries: the oldest message still in the ring, and the next one.
  uint64_t out = 0;
  MessageInfo info;
  EXPECT_EQ(queue.Read(queue.MakeQueueIndex(4 * 16384), &info, &out,
                       sizeof(out)),
            ReadResult::kGood);
  EXPECT_EQ(out, 4u * 16384u);
  EXPECT_EQ(queue.Read(queue.MakeQueueIndex(5 * 16384), &info, &out,
                       sizeof(out)),
            ReadResult::kNothingNew);
}

// Values no protocol step writes, as a foreign process scribbling on the
// channel would leave: errors, never a crash or a sender spinning forever.
TEST(LocklessQueueTest, CorruptedFreeSenderSlotIsReportedByMakeSender) {
  SharedRegion region(SmallConfig());
  LocklessQueue queue =
      *LocklessQueue::Attach(region.data(), region.size_bytes(), SmallConfig());
  for (uint32_t s = 0; s < SmallConfig().num_senders; ++s) {
    queue.region().sender(s)->scratch_index.RelaxedStore(
        Index(0u, Index::MaxMessages() - 1));
  }
  absl::StatusOr<Sender> sender = queue.MakeSender();
  ASSERT_FALSE(sender.ok());
  EXPECT_EQ(sender.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(sender.status().message().find("corrupted"), std::string::npos)
      << sender.status();
  // Nothing was claimed.
  EXPECT_EQ(queue.region().sender(0)->ownership.RawOwnerWord(), 0u);
}

TEST(LocklessQueueTest, CorruptedRingEntryIsReportedBySend) {
  SharedRegion region(SmallConfig());
  LocklessQueue queue =
      *LocklessQueue::Attach(region.data(), region.size_bytes(), SmallConfig());
  Sender sender = *queue.MakeSender();
  const QueueIndex one_lap_earlier =
      queue.MakeQueueIndex(0).DecrementBy(SmallConfig().queue_size);
  // The right lap, but a message number beyond the region.
  const Index out_of_range(one_lap_earlier.index(), Index::MaxMessages() - 1);
  queue.region().ring(0)->RelaxedStore(out_of_range);
  EXPECT_EQ(sender.Send("x", 1), SendResult::kCorrupted);
  EXPECT_EQ(queue.region().ring(0)->Load(), out_of_range);
  EXPECT_FALSE(queue.LatestQueueIndex().valid());
  // Neither the lap before nor the lap being sent.
  const Index wrong_lap(one_lap_earlier.DecrementBy(1).index(), 0u);
  queue.region().ring(0)->RelaxedStore(wrong_lap);
  EXPECT_EQ(sender.Send("x", 1), SendResult::kCorrupted);
  EXPECT_EQ(queue.region().ring(0)->Load(), wrong_lap);
  EXPECT_FALSE(queue.LatestQueueIndex().valid());
}

TEST(LocklessQueueTest, CorruptedMessageHeaderIsReportedBySend) {
  SharedRegion region(SmallConfig());
  LocklessQueue queue =
      *LocklessQueue::Attach(region.data(), region.size_bytes(), SmallConfig());
  Sender sender = *queue.MakeSender();
  // Ring slot 0 names message 0 for the lap before index 0; give message 0
  // a queue index it could never hold while in the ring.
  queue.region().message(0)->header.queue_index.RelaxedStore(
      queue.MakeQueueIndex(12345));
  const SendResult result = sender.Send("x", 1);
  EXPECT_EQ(result, SendResult::kCorrupted);
  EXPECT_STREQ(SendResultName(result), "CORRUPTED");
  EXPECT_FALSE(queue.LatestQueueIndex().valid());
}

// ------------------------------------------------------------- Wake-ups

TEST(WakeupTest, NoWatcherWakesNobody) {
  SharedRegion region(SmallConfig());
  LocklessQueue queue =
      *LocklessQueue::Attach(region.data(), region.size_bytes(), SmallConfig());
  WakeUpper wake_upper(queue);
  EXPECT_EQ(wake_upper.Wakeup(0), 0);
}

TEST(WakeupTest, UnregisteredWatcherIsNotWoken) {
  SharedRegion region(SmallConfig());
  LocklessQueue queue =
      *LocklessQueue::Attach(region.data(), region.size_bytes(), SmallConfig());
  absl::StatusOr<SignalFd> signal_fd = SignalFd::Create({WakeupSignal()});
  ASSERT_TRUE(signal_fd.ok()) << signal_fd.status();
  WakeUpper wake_upper(queue);
  {
    absl::StatusOr<Watcher> watcher = queue.MakeWatcher(0);
    ASSERT_TRUE(watcher.ok()) << watcher.status();
    EXPECT_EQ(wake_upper.Wakeup(0), 1);
    ASSERT_TRUE(signal_fd->Read().has_value());
  }
  EXPECT_EQ(wake_upper.Wakeup(0), 0);
  EXPECT_FALSE(signal_fd->Read().has_value());
}

TEST(WakeupTest, DrainDiscardsEveryQueuedWakeup) {
  SharedRegion region(SmallConfig());
  LocklessQueue queue =
      *LocklessQueue::Attach(region.data(), region.size_bytes(), SmallConfig());
  absl::StatusOr<SignalFd> signal_fd = SignalFd::Create({WakeupSignal()});
  ASSERT_TRUE(signal_fd.ok()) << signal_fd.status();
  absl::StatusOr<Watcher> watcher = queue.MakeWatcher(0);
  ASSERT_TRUE(watcher.ok()) << watcher.status();
  WakeUpper wake_upper(queue);
  // At most one wake-up is queued until the watcher acknowledges it.
  for (int i = 0; i < 200; ++i) {
    WakeupReport report;
    ASSERT_EQ(wake_upper.Wakeup(0, &report), 1);
    EXPECT_EQ(report.signalled, i == 0 ? 1 : 0);
    EXPECT_EQ(report.already_pending, i == 0 ? 0 : 1);
  }
  EXPECT_EQ(signal_fd->Drain(), 1u);
  EXPECT_EQ(signal_fd->Drain(), 0u);
  watcher->Acknowledge();
  WakeupReport report;
  ASSERT_EQ(wake_upper.Wakeup(0, &report), 1);
  EXPECT_EQ(report.signalled, 1);
  EXPECT_EQ(signal_fd->Drain(), 1u);
}

TEST(WakeupTest, DeadWatcherIsSkippedAndItsSlotReused) {
  QueueConfig config = SmallConfig();
  config.num_watchers = 1;
  SharedRegion region(config);
  LocklessQueue queue =
      *LocklessQueue::Attach(region.data(), region.size_bytes(), config);
  std::thread([&] {
    absl::StatusOr<Watcher> watcher = queue.MakeWatcher(0);
    ASSERT_TRUE(watcher.ok()) << watcher.status();
    AbandonLikeADeadThread(*std::move(watcher));  // Dies registered.
  }).join();
  WakeUpper wake_upper(queue);
  EXPECT_EQ(wake_upper.Wakeup(0), 0);
  absl::StatusOr<Watcher> watcher = queue.MakeWatcher(0);
  ASSERT_TRUE(watcher.ok()) << watcher.status();
  absl::StatusOr<SignalFd> signal_fd = SignalFd::Create({WakeupSignal()});
  ASSERT_TRUE(signal_fd.ok());
  EXPECT_EQ(wake_upper.Wakeup(0), 1);
  EXPECT_TRUE(signal_fd->Read().has_value());
}

TEST(WakeupTest, TooManyWatchersFailsThenRecovers) {
  SharedRegion region(SmallConfig());
  LocklessQueue queue =
      *LocklessQueue::Attach(region.data(), region.size_bytes(), SmallConfig());
  // Each watcher is owned by a thread; register three threads that stay
  // alive until released.
  Event release;
  std::atomic<int> registered{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 3; ++i) {
    threads.emplace_back([&] {
      absl::StatusOr<Watcher> watcher = queue.MakeWatcher(0);
      ASSERT_TRUE(watcher.ok()) << watcher.status();
      registered.fetch_add(1);
      release.Wait();
    });
  }
  while (registered.load() < 3) std::this_thread::yield();
  absl::StatusOr<Watcher> extra = queue.MakeWatcher(0);
  ASSERT_FALSE(extra.ok());
  EXPECT_EQ(extra.status().code(), absl::StatusCode::kResourceExhausted);
  release.Set();
  for (std::thread& thread : threads) thread.join();
  EXPECT_TRUE(queue.MakeWatcher(0).ok());
}

// Two real threads block in epoll on a signalfd; one Wakeup wakes both.
TEST(WakeupTest, TwoThreadsWokenThroughSignalFdAndEpoll) {
  SharedRegion region(SmallConfig());
  LocklessQueue queue =
      *LocklessQueue::Attach(region.data(), region.size_bytes(), SmallConfig());
  // Block the wake-up signal process-wide before starting threads, so it is
  // only ever consumed through the signalfds.
  sigset_t block;
  sigemptyset(&block);
  sigaddset(&block, WakeupSignal());
  ASSERT_EQ(pthread_sigmask(SIG_BLOCK, &block, nullptr), 0);

  std::atomic<int> ready{0};
  std::atomic<int> woken{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 2; ++i) {
    threads.emplace_back([&] {
      absl::StatusOr<SignalFd> signal_fd = SignalFd::Create({WakeupSignal()});
      ASSERT_TRUE(signal_fd.ok()) << signal_fd.status();
      absl::StatusOr<Watcher> watcher = queue.MakeWatcher(0);
      ASSERT_TRUE(watcher.ok()) << watcher.status();
      const int epoll_fd = epoll_create1(EPOLL_CLOEXEC);
      ASSERT_GE(epoll_fd, 0);
      epoll_event event{};
      event.events = EPOLLIN;
      ASSERT_EQ(epoll_ctl(epoll_fd, EPOLL_CTL_ADD, signal_fd->fd(), &event),
                0);
      ready.fetch_add(1);
      epoll_event out;
      int n;
      do {
        n = epoll_wait(epoll_fd, &out, 1, -1);
      } while (n < 0 && errno == EINTR);
      ASSERT_EQ(n, 1);
      std::optional<signalfd_siginfo> info = signal_fd->Read();
      ASSERT_TRUE(info.has_value());
      EXPECT_EQ(static_cast<int>(info->ssi_signo), WakeupSignal());
      EXPECT_EQ(static_cast<pid_t>(info->ssi_pid), getpid());
      woken.fetch_add(1);
      close(epoll_fd);
    });
  }
  while (ready.load() < 2) std::this_thread::yield();
  WakeUpper wake_upper(queue);
  EXPECT_EQ(wake_upper.Wakeup(0), 2);
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(woken.load(), 2);
  ASSERT_EQ(pthread_sigmask(SIG_UNBLOCK, &block, nullptr), 0);
}

}  // namespace
}  // namespace lockless
