// ReadMany returns exactly what the equivalent sequence of Reads returns.
#include <atomic>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "gtest/gtest.h"
#include "ipc/lockless_queue.h"
#include "testing/queue_memory.h"

namespace lockless {
namespace {

using ::lockless::testing::QueueMemory;

constexpr size_t kBytes = 16;

QueueConfig TenSlots() {
  QueueConfig config;
  config.num_watchers = 0;
  config.num_senders = 2;
  config.queue_size = 10;
  config.message_data_size_bytes = kBytes;
  return config;
}

// Message n carries n in its first and last 8 bytes.
void SendNumbered(Sender& sender, uint64_t n) {
  unsigned char message[kBytes];
  std::memcpy(message, &n, 8);
  std::memcpy(message + kBytes - 8, &n, 8);
  ASSERT_EQ(sender.Send(message, kBytes), SendResult::kOk);
}

struct Batch {
  size_t good = 0;
  ReadResult stopped_at = ReadResult::kCorrupted;
  std::vector<MessageInfo> infos =
      std::vector<MessageInfo>(LocklessQueue::kMaxReadBatch);
  std::vector<unsigned char> data =
      std::vector<unsigned char>(LocklessQueue::kMaxReadBatch * kBytes);
};

Batch ReadBatch(const LocklessQueue& queue, QueueIndex first, size_t count) {
  Batch batch;
  batch.good = queue.ReadMany(first, count, batch.infos.data(),
                              batch.data.data(), kBytes, kBytes,
                              &batch.stopped_at);
  return batch;
}

// Compares a batch with Reads of the same indices, made right after it on
// an idle queue (so both see the same ring).
void ExpectSameAsReads(const LocklessQueue& queue, QueueIndex first,
                       size_t count, const Batch& batch) {
  QueueIndex index = first;
  const size_t capped = std::min(count, LocklessQueue::kMaxReadBatch);
  for (size_t k = 0; k < capped; ++k) {
    MessageInfo info;
    unsigned char data[kBytes];
    const ReadResult result = queue.Read(index, &info, data, kBytes);
    if (result != ReadResult::kGood) {
      EXPECT_EQ(batch.good, k);
      EXPECT_EQ(batch.stopped_at, result);
      return;
    }
    ASSERT_LT(k, batch.good);
    EXPECT_EQ(batch.infos[k].queue_index, info.queue_index);
    EXPECT_EQ(batch.infos[k].length, info.length);
    EXPECT_EQ(batch.infos[k].monotonic_sent_time, info.monotonic_sent_time);
    EXPECT_EQ(batch.infos[k].realtime_sent_time, info.realtime_sent_time);
    EXPECT_EQ(std::memcmp(&batch.data[k * kBytes], data, kBytes), 0);
    index = index.Increment();
  }
  EXPECT_EQ(batch.good, capped);
  EXPECT_EQ(batch.stopped_at, ReadResult::kGood);
}

TEST(ReadManyTest, EmptyQueueIsNothingNew) {
  QueueMemory region(TenSlots());
  LocklessQueue queue =
      *LocklessQueue::Attach(region.data(), region.size_bytes(), TenSlots());
  const Batch batch = ReadBatch(queue, queue.MakeQueueIndex(0), 5);
  EXPECT_EQ(batch.good, 0u);
  EXPECT_EQ(batch.stopped_at, ReadResult::kNothingNew);
  const Batch invalid = ReadBatch(queue, QueueIndex::Invalid(), 5);
  EXPECT_EQ(invalid.good, 0u);
  EXPECT_EQ(invalid.stopped_at, ReadResult::kNothingNew);
  ReadResult stopped_at = ReadResult::kCorrupted;
  EXPECT_EQ(queue.ReadMany(queue.MakeQueueIndex(0), 0, nullptr, nullptr, 0, 0,
                           &stopped_at),
            0u);
  EXPECT_EQ(stopped_at, ReadResult::kGood);
}

// Every start and length over a ring that has wrapped several times: the
// batch always matches the Reads (GOOD run, then TOO_OLD or NOTHING_NEW).
TEST(ReadManyTest, MatchesReadsForEveryStartAndCount) {
  QueueMemory region(TenSlots());
  LocklessQueue queue =
      *LocklessQueue::Attach(region.data(), region.size_bytes(), TenSlots());
  Sender sender = *queue.MakeSender();
  for (uint64_t sent = 0; sent < 37; ++sent) {
    SendNumbered(sender, sent);
    for (uint32_t first = 0; first <= sent + 2; ++first) {
      for (size_t count : {size_t{1}, size_t{3}, size_t{10}, size_t{12},
                           LocklessQueue::kMaxReadBatch + 5}) {
        const Batch batch =
            ReadBatch(queue, queue.MakeQueueIndex(first), count);
        ExpectSameAsReads(queue, queue.MakeQueueIndex(first), count, batch);
        for (size_t k = 0; k < batch.good; ++k) {
          uint64_t n;
          std::memcpy(&n, &batch.data[k * kBytes], 8);
          ASSERT_EQ(n, first + k);
        }
      }
    }
  }
}

// Through the 32-bit wrap point of the queue index, for ring sizes from 1
// to one whose wrap point is not a power of two: every batch matches the
// Reads and carries the messages sent at its indices, whose ring slots
// ReadMany walks with its own wrap (slot back to 0 at queue_size, index
// back to 0 at the wrap point).
TEST(ReadManyTest, MatchesReadsThroughTheIndexWrap) {
  for (const uint32_t queue_size : {1u, 2u, 3u, 10u, 64u, 1000u}) {
    SCOPED_TRACE(::testing::Message() << "queue_size " << queue_size);
    QueueConfig config = TenSlots();
    config.queue_size = queue_size;
    QueueMemory region(config);
    const uint32_t max_index =
        QueueIndex::MaxIndex(QueueIndex::kMaxValue, queue_size);
    // Two laps + 3 before the wrap point; send four laps + 6 across it.
    const uint32_t first_raw = max_index - 2 * queue_size - 3;
    absl::StatusOr<LocklessQueue> queue = internal::AttachStartingAtForTest(
        region.data(), region.size_bytes(), config, first_raw);
    ASSERT_TRUE(queue.ok()) << queue.status();
    Sender sender = *queue->MakeSender();
    const QueueIndex first = queue->MakeQueueIndex(first_raw);
    const uint64_t num_sends = 4 * uint64_t{queue_size} + 6;
    for (uint64_t sent = 0; sent < num_sends; ++sent) {
      SendNumbered(sender, sent);
      // Batches starting in the last lap and a bit before and after it (all
      // of them for small rings, near the wrap for the large one).
      const uint64_t from = sent + 3 > queue_size + 3 ? sent - queue_size : 0;
      const uint64_t wrap_at = max_index - first_raw;  // position of index 0
      const bool near_wrap = sent + 40 >= wrap_at && sent <= wrap_at + 40;
      if (queue_size > 64 && !near_wrap && sent + 1 != num_sends) continue;
      for (uint64_t position = from; position <= sent + 2; ++position) {
        const QueueIndex start =
            first.IncrementBy(static_cast<uint32_t>(position));
        for (const size_t count :
             {size_t{1}, size_t{5}, LocklessQueue::kMaxReadBatch}) {
          const Batch batch = ReadBatch(*queue, start, count);
          ExpectSameAsReads(*queue, start, count, batch);
          for (size_t k = 0; k < batch.good; ++k) {
            uint64_t n;
            std::memcpy(&n, &batch.data[k * kBytes], 8);
            ASSERT_EQ(n, position + k);
            ASSERT_EQ(batch.infos[k].queue_index,
                      first.IncrementBy(static_cast<uint32_t>(position + k)));
          }
          if (HasFatalFailure()) return;
        }
      }
    }
  }
}

#ifndef NDEBUG
// A stride shorter than the capacity makes batch slots overlap: message
// k + 1 would overwrite the tail of message k after it was validated.
TEST(ReadManyDeathTest, StrideBelowCapacityFailsTheDebugCheck) {
  QueueMemory region(TenSlots());
  LocklessQueue queue =
      *LocklessQueue::Attach(region.data(), region.size_bytes(), TenSlots());
  Batch batch;
  EXPECT_DEATH((void)queue.ReadMany(queue.MakeQueueIndex(0), 2,
                                    batch.infos.data(), batch.data.data(),
                                    kBytes / 2, kBytes, &batch.stopped_at),
               "data_stride >= data_capacity");
}
#endif

TEST(ReadManyTest, NullInfosAndDataReadOnlyTheResults) {
  QueueMemory region(TenSlots());
  LocklessQueue queue =
      *LocklessQueue::Attach(region.data(), region.size_bytes(), TenSlots());
  Sender sender = *queue.MakeSender();
  for (uint64_t n = 0; n < 4; ++n) SendNumbered(sender, n);
  ReadResult stopped_at = ReadResult::kCorrupted;
  EXPECT_EQ(queue.ReadMany(queue.MakeQueueIndex(1), 8, nullptr, nullptr, 0, 0,
                           &stopped_at),
            3u);
  EXPECT_EQ(stopped_at, ReadResult::kNothingNew);
}

// A reader batching while a sender laps the ring under it: every GOOD
// message is the one sent at its index, intact, whatever the interleaving.
// The reader runs until the sender is done, then reads the final lap, which
// must come back whole (nothing is sending any more).
TEST(ReadManyTest, RacingASenderNeverReturnsWrongOrTornMessages) {
  QueueMemory region(TenSlots());
  LocklessQueue queue =
      *LocklessQueue::Attach(region.data(), region.size_bytes(), TenSlots());
  constexpr uint64_t kMessages = 20000;
  std::atomic<bool> done{false};
  std::thread sender_thread([&] {
    Sender sender = *queue.MakeSender();
    for (uint64_t n = 0; n < kMessages; ++n) SendNumbered(sender, n);
    // release: pairs with the reader's acquire; all sends happened before.
    done.store(true, std::memory_order_release);
  });
  uint64_t next = 0;
  auto check = [&](const Batch& batch) {
    for (size_t k = 0; k < batch.good; ++k) {
      uint64_t head;
      uint64_t tail;
      std::memcpy(&head, &batch.data[k * kBytes], 8);
      std::memcpy(&tail, &batch.data[k * kBytes + kBytes - 8], 8);
      ASSERT_EQ(head, next + k);
      ASSERT_EQ(tail, next + k);
      ASSERT_EQ(batch.infos[k].queue_index.index(), next + k);
    }
  };
  // acquire: see the release above.
  while (!done.load(std::memory_order_acquire)) {
    const Batch batch =
        ReadBatch(queue, queue.MakeQueueIndex(static_cast<uint32_t>(next)),
                  LocklessQueue::kMaxReadBatch);
    check(batch);
    next += batch.good;
    if (batch.stopped_at == ReadResult::kTooOld ||
        batch.stopped_at == ReadResult::kOverwrote) {
      const QueueIndex latest = queue.LatestQueueIndex();
      if (latest.valid() && latest.index() > next) next = latest.index();
    }
  }
  sender_thread.join();
  next = kMessages - 10;
  const Batch last_lap = ReadBatch(
      queue, queue.MakeQueueIndex(static_cast<uint32_t>(next)), 10);
  EXPECT_EQ(last_lap.good, 10u);
  check(last_lap);
}

}  // namespace
}  // namespace lockless
