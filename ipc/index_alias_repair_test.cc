// The 16-bit-entry wedge (ipc/internal/alias_repair.h): a sender stopped
// between recording its intent and its ring CAS while the channel sends
// until the slot holds exactly the entry it read again; its CAS then
// publishes a message whose header names an aliased lap, and every later
// Send for that slot returns kCorrupted. The next MakeSender repairs it.
// Only meaningful with --config=index32 (skipped otherwise: with 64-bit
// entries the slot would have to come back after 2^32 sends).
#include <cstdint>
#include <optional>

#include "gtest/gtest.h"
#include "index/index.h"
#include "ipc/internal/alias_repair.h"
#include "ipc/internal/queue_layout.h"
#include "ipc/lockless_queue.h"
#include "testing/queue_invariants.h"
#include "testing/queue_memory.h"
#include "testing/send_steps.h"
#include "testing/sender_thread.h"

namespace lockless {
namespace {

QueueConfig WedgeConfig() {
  QueueConfig config;
  config.num_watchers = 0;
  config.num_senders = 3;
  config.queue_size = 4;
  config.message_data_size_bytes = 8;
  return config;
}

// Sends through `sender` until the ring slot of `intent` holds exactly the
// entry the intent read (drives the aliasing to happen rather than assuming
// a count), at least one full lap first. Bounded far beyond the expected
// ~330k sends. False if it never came back.
bool LapUntilTheSlotHoldsItsEntryAgain(const LocklessQueue& queue,
                                       Sender& sender,
                                       const testing::Intent& intent) {
  const internal::RegionView& view = queue.region();
  AtomicIndex* const slot = view.ring(intent.queue_index.Wrapped());
  const uint64_t bound = uint64_t{64} << 20;
  for (uint64_t sent = 0; sent < bound; ++sent) {
    const uint64_t payload = sent;
    if (sender.Send(&payload, sizeof(payload)) != SendResult::kOk) {
      return false;
    }
    if (sent > queue.config().queue_size && slot->Load() == intent.to_replace) {
      return true;
    }
  }
  return false;
}

TEST(IndexAliasRepairTest, StalePublishWedgesSendsUntilMakeSenderRepairs) {
  if (Index::kQueueIndexMask == 0xffffffffu) {
    GTEST_SKIP() << "needs 16-bit queue-index bits (--config=index32)";
  }
  const QueueConfig config = WedgeConfig();
  testing::QueueMemory region(config);
  // Seeded near the wrap point, so the lapping crosses it.
  const uint32_t near_wrap =
      QueueIndex::MaxIndex(QueueIndex::kMaxValue, config.queue_size) - 1000;
  absl::StatusOr<LocklessQueue> attached = internal::AttachStartingAtForTest(
      region.data(), region.size_bytes(), config, near_wrap);
  ASSERT_TRUE(attached.ok()) << attached.status();
  const LocklessQueue queue = *attached;
  const internal::RegionView& view = queue.region();

  testing::SenderThread stopped(queue);  // Owns the slot we drive by hand.
  ASSERT_TRUE(stopped.status().ok());
  std::optional<Sender> lapper(*queue.MakeSender());
  const uint64_t first = 1;
  ASSERT_EQ(lapper->Send(&first, sizeof(first)), SendResult::kOk);

  // The stopped sender: steps a-c for the next index, then "stopped".
  const testing::Intent intent = testing::RecordIntent(
      view, stopped.slot(), testing::NextQueueIndex(queue));
  ASSERT_TRUE(LapUntilTheSlotHoldsItsEntryAgain(queue, *lapper, intent));
  // It resumes: its CAS goes in (the slot holds what it read), then e-g
  // and the invalidation of the message it took, as Send does.
  ASSERT_TRUE(testing::PublishIntent(view, intent));
  testing::ResumeIntent(view, intent, /*published=*/true);
  view.message(intent.to_replace.message_index())
      ->header.queue_index.Invalidate();

  // The wedge: within a lap, Send meets the aliased message and fails.
  bool wedged = false;
  for (uint32_t i = 0; i < 2 * config.queue_size && !wedged; ++i) {
    const uint64_t payload = i;
    wedged = lapper->Send(&payload, sizeof(payload)) == SendResult::kCorrupted;
  }
  ASSERT_TRUE(wedged) << "the stale publish did not wedge the slot";

  // The next MakeSender repairs it: the new sender and the old one send.
  absl::StatusOr<Sender> fresh = queue.MakeSender();
  ASSERT_TRUE(fresh.ok()) << fresh.status();
  for (uint32_t i = 0; i < 3 * config.queue_size; ++i) {
    const uint64_t payload = i;
    ASSERT_EQ(fresh->Send(&payload, sizeof(payload)), SendResult::kOk) << i;
    ASSERT_EQ(lapper->Send(&payload, sizeof(payload)), SendResult::kOk) << i;
  }
  EXPECT_TRUE(testing::CheckEveryMessageOwnedOnce(queue).ok());
  // Every message in the ring reads back.
  const QueueIndex latest = queue.LatestQueueIndex();
  for (uint32_t back = 0; back < config.queue_size; ++back) {
    MessageInfo info;
    uint64_t payload = 0;
    EXPECT_EQ(
        queue.Read(latest.DecrementBy(back), &info, &payload, sizeof(payload)),
        ReadResult::kGood)
        << back;
  }
}

// The repair decides which lap a slot stands for from next_queue_index. A
// repairer preempted after loading it, while the channel sends a multiple of
// 2^16 messages (a multiple of queue_size too), finds every slot holding a
// legitimately published message whose header is 2^16 laps ahead of the lap
// it computed, with the same stored bits: exactly what an aliased publish
// looks like. "Repairing" those would rewrite live messages' headers to an
// old lap (readers of the real index see them gone, readers of the old one
// get the new data, and Send wedges on them). It must repair nothing.
TEST(IndexAliasRepairTest, RepairerBehindALiveChannelRepairsNothing) {
  if (Index::kQueueIndexMask == 0xffffffffu) {
    GTEST_SKIP() << "needs 16-bit queue-index bits (--config=index32)";
  }
  const QueueConfig config = WedgeConfig();
  testing::QueueMemory region(config);
  absl::StatusOr<LocklessQueue> attached =
      LocklessQueue::Attach(region.data(), region.size_bytes(), config);
  ASSERT_TRUE(attached.ok()) << attached.status();
  const LocklessQueue queue = *attached;
  const internal::RegionView& view = queue.region();
  absl::StatusOr<Sender> sender = queue.MakeSender();
  ASSERT_TRUE(sender.ok()) << sender.status();

  uint64_t sent = 0;
  for (; sent < 2 * config.queue_size; ++sent) {
    ASSERT_EQ(sender->Send(&sent, sizeof(sent)), SendResult::kOk);
  }
  // The repairer loads next_queue_index and is preempted...
  const QueueIndex stale =
      view.header()->next_queue_index.Load(config.queue_size);
  // ...while the channel sends 2^16 more.
  const uint64_t end = sent + (uint64_t{1} << 16);
  for (; sent < end; ++sent) {
    ASSERT_EQ(sender->Send(&sent, sizeof(sent)), SendResult::kOk);
  }
  EXPECT_EQ(internal::RepairAliasedPublishesFrom(view, stale), 0);

  // The ring still reads back as sent, and Send goes on.
  const QueueIndex latest = queue.LatestQueueIndex();
  for (uint32_t back = 0; back < config.queue_size; ++back) {
    MessageInfo info;
    uint64_t payload = 0;
    ASSERT_EQ(
        queue.Read(latest.DecrementBy(back), &info, &payload, sizeof(payload)),
        ReadResult::kGood)
        << back;
    EXPECT_EQ(payload, end - 1 - back);
  }
  for (uint32_t i = 0; i < 2 * config.queue_size; ++i, ++sent) {
    ASSERT_EQ(sender->Send(&sent, sizeof(sent)), SendResult::kOk) << i;
  }
}

}  // namespace
}  // namespace lockless
