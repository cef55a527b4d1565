// Zero-copy pinning (Pinner): pin, read in place, unpin; refusals; slots;
// a pinned message's bytes never change while senders lap the ring; dead
// pinners and dead senders holding a pinned scratch. Deterministic: one
// thread sends, or a thread that exits stands for a pinner that died.
#include <cstdint>
#include <cstring>
#include <memory>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "gtest/gtest.h"
#include "ipc/internal/queue_layout.h"
#include "ipc/lockless_queue.h"
#include "ipc/queue_config.h"
#include "testing/queue_invariants.h"
#include "testing/queue_memory.h"
#include "testing/send_steps.h"
#include "testing/sender_thread.h"

namespace lockless {
namespace {

using ::lockless::testing::CheckEveryMessageOwnedOnce;
using ::lockless::testing::QueueMemory;

constexpr size_t kPayloadBytes = 48;

QueueConfig PinConfig(uint32_t num_pinners) {
  QueueConfig config;
  config.num_watchers = 0;
  config.num_senders = 2;
  config.queue_size = 4;
  config.message_data_size_bytes = kPayloadBytes;
  config.num_pinners = num_pinners;
  return config;
}

// A payload that says which message it is, everywhere.
void Fill(uint64_t seq, unsigned char* out) {
  for (size_t i = 0; i < kPayloadBytes; ++i) {
    out[i] = static_cast<unsigned char>(seq * 131 + i * 7 + 1);
  }
}

SendResult SendSeq(Sender& sender, uint64_t seq) {
  unsigned char payload[kPayloadBytes];
  Fill(seq, payload);
  return sender.Send(payload, sizeof(payload));
}

bool Matches(const PinnedMessage& view, uint64_t seq) {
  unsigned char expected[kPayloadBytes];
  Fill(seq, expected);
  return view.info.length == kPayloadBytes &&
         std::memcmp(view.data, expected, kPayloadBytes) == 0;
}

class PinTest : public ::testing::Test {
 protected:
  void Open(const QueueConfig& config) {
    memory_ = std::make_unique<QueueMemory>(config);
    absl::StatusOr<LocklessQueue> queue = LocklessQueue::Attach(
        memory_->data(), memory_->size_bytes(), config);
    ASSERT_TRUE(queue.ok()) << queue.status();
    queue_.emplace(*queue);
  }
  LocklessQueue& queue() { return *queue_; }

  // Opens a channel with one pinner slot, sends 0..3 through sender_ (a
  // full ring) and pins index 0 with pinner_ into view_: the message the
  // next send takes out of the ring.
  void SendAFullRingAndPinItsOldest() {
    Open(PinConfig(1));
    absl::StatusOr<Sender> sender = queue().MakeSender();
    ASSERT_TRUE(sender.ok()) << sender.status();
    sender_.emplace(*std::move(sender));
    for (uint64_t seq = 0; seq < 4; ++seq) {
      ASSERT_EQ(SendSeq(*sender_, seq), SendResult::kOk);
    }
    absl::StatusOr<Pinner> pinner = queue().MakePinner();
    ASSERT_TRUE(pinner.ok()) << pinner.status();
    pinner_.emplace(*std::move(pinner));
    ASSERT_EQ(pinner_->Pin(queue().MakeQueueIndex(0), &view_),
              PinResult::kGood);
  }

  // After SendAFullRingAndPinItsOldest and the send of 4 (which parked the
  // pinned message in sender_'s only parked entry), moves by hand the pinned
  // message into the free sender slot's scratch and that scratch into the
  // parked entry, keeping every message owned once: as if the free slot's
  // sender had died between its publish and its park. Returns the free slot.
  uint32_t MovePinnedIntoTheFreeSlotsScratch() {
    const internal::RegionView& region = queue().region();
    const Index pinned = region.pinner(0)->pinned.Load();
    const uint32_t other = 1 - sender_->slot();
    internal::SenderSlot* const free_slot = region.sender(other);
    EXPECT_EQ(region.parked(sender_->slot(), 0)->Load().message_index(),
              pinned.message_index());
    region.parked(sender_->slot(), 0)->Store(free_slot->scratch_index.Load());
    free_slot->scratch_index.Store(pinned);
    return other;
  }

  std::unique_ptr<QueueMemory> memory_;
  std::optional<LocklessQueue> queue_;
  std::optional<Sender> sender_;
  std::optional<Pinner> pinner_;
  PinnedMessage view_;
};

TEST_F(PinTest, PinReadsInPlaceUntilUnpin) {
  Open(PinConfig(1));
  absl::StatusOr<Sender> sender = queue().MakeSender();
  ASSERT_TRUE(sender.ok()) << sender.status();
  MessageInfo sent;
  unsigned char payload[kPayloadBytes];
  Fill(0, payload);
  ASSERT_EQ(sender->Send(payload, sizeof(payload), &sent), SendResult::kOk);
  absl::StatusOr<Pinner> pinner = queue().MakePinner();
  ASSERT_TRUE(pinner.ok()) << pinner.status();
  PinnedMessage view;
  ASSERT_EQ(pinner->Pin(sent.queue_index, &view), PinResult::kGood);
  EXPECT_TRUE(pinner->pinning());
  EXPECT_TRUE(Matches(view, 0));
  EXPECT_EQ(view.info.queue_index, sent.queue_index);
  EXPECT_EQ(view.info.monotonic_sent_time, sent.monotonic_sent_time);
  EXPECT_EQ(view.info.realtime_sent_time, sent.realtime_sent_time);
  // In place: the view points into the channel, at the ring's message.
  const internal::RegionView& region = queue().region();
  const Index entry = region.ring(sent.queue_index.Wrapped())->Load();
  EXPECT_EQ(view.data, region.message(entry.message_index())->data());
  // One pin at a time.
  PinnedMessage other;
  EXPECT_EQ(pinner->Pin(sent.queue_index, &other), PinResult::kAlreadyPinned);
  pinner->Unpin();
  EXPECT_FALSE(pinner->pinning());
  EXPECT_FALSE(region.pinner(pinner->slot())->pinned.Load().valid());
  EXPECT_EQ(pinner->Pin(sent.queue_index, &other), PinResult::kGood);
}

TEST_F(PinTest, RefusalsMatchRead) {
  Open(PinConfig(1));
  absl::StatusOr<Pinner> pinner = queue().MakePinner();
  ASSERT_TRUE(pinner.ok()) << pinner.status();
  PinnedMessage view;
  // Empty channel, and a future index.
  EXPECT_EQ(pinner->Pin(queue().MakeQueueIndex(0), &view),
            PinResult::kNothingNew);
  EXPECT_EQ(pinner->Pin(QueueIndex::Invalid(), &view), PinResult::kNothingNew);
  absl::StatusOr<Sender> sender = queue().MakeSender();
  ASSERT_TRUE(sender.ok()) << sender.status();
  for (uint64_t seq = 0; seq < 10; ++seq) {
    ASSERT_EQ(SendSeq(*sender, seq), SendResult::kOk);
  }
  EXPECT_EQ(pinner->Pin(queue().MakeQueueIndex(10), &view),
            PinResult::kNothingNew);
  EXPECT_EQ(pinner->Pin(queue().MakeQueueIndex(11), &view),
            PinResult::kNothingNew);
  // Overwritten (queue_size 4: 6..9 remain).
  EXPECT_EQ(pinner->Pin(queue().MakeQueueIndex(0), &view), PinResult::kTooOld);
  EXPECT_EQ(pinner->Pin(queue().MakeQueueIndex(5), &view), PinResult::kTooOld);
  EXPECT_FALSE(pinner->pinning());
  // Refusals leave no pin behind.
  EXPECT_FALSE(queue().region().pinner(pinner->slot())->pinned.Load().valid());
  ASSERT_EQ(pinner->Pin(queue().MakeQueueIndex(6), &view), PinResult::kGood);
  EXPECT_TRUE(Matches(view, 6));
}

TEST_F(PinTest, AllPinnerSlotsBusyIsResourceExhausted) {
  Open(PinConfig(2));
  absl::StatusOr<Pinner> first = queue().MakePinner();
  absl::StatusOr<Pinner> second = queue().MakePinner();
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_NE(first->slot(), second->slot());
  absl::StatusOr<Pinner> third = queue().MakePinner();
  ASSERT_FALSE(third.ok());
  EXPECT_EQ(third.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(third.status().message().find("all 2 pinner slots"),
            std::string::npos)
      << third.status();
  // Releasing one frees its slot.
  { Pinner released = *std::move(first); }
  EXPECT_TRUE(queue().MakePinner().ok());
}

TEST_F(PinTest, NoPinnerSlotsConfigured) {
  Open(PinConfig(0));
  absl::StatusOr<Pinner> pinner = queue().MakePinner();
  ASSERT_FALSE(pinner.ok());
  EXPECT_EQ(pinner.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(pinner.status().message().find("all 0 pinner slots"),
            std::string::npos)
      << pinner.status();
}

TEST_F(PinTest, ConfigMismatchOnNumPinnersIsAnError) {
  const QueueConfig config = PinConfig(2);
  Open(config);
  QueueConfig other = config;
  other.num_pinners = 1;
  // The smaller config fits in the region: the header must catch it.
  absl::StatusOr<LocklessQueue> attached =
      LocklessQueue::Attach(memory_->data(), memory_->size_bytes(), other);
  ASSERT_FALSE(attached.ok());
  EXPECT_EQ(attached.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(attached.status().message().find("num_pinners: 2"),
            std::string::npos)
      << attached.status();
  QueueConfig too_many = config;
  too_many.num_pinners = kMaxPinners + 1;
  EXPECT_EQ(ValidateConfig(too_many).code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(PinLayoutTest, MemoryCostIsNumSendersTimesNumPinnersMessages) {
  const internal::Layout without = *internal::ComputeLayout(PinConfig(0));
  const internal::Layout with = *internal::ComputeLayout(PinConfig(3));
  EXPECT_EQ(with.num_messages - without.num_messages, 2u * 3u);
}

TEST_F(PinTest, PinnedBytesNeverChangeWhileSendersLapTheRing) {
  Open(PinConfig(2));
  absl::StatusOr<Sender> a = queue().MakeSender();
  absl::StatusOr<Sender> b = queue().MakeSender();
  ASSERT_TRUE(a.ok() && b.ok());
  absl::StatusOr<Pinner> pinner = queue().MakePinner();
  absl::StatusOr<Pinner> other_pinner = queue().MakePinner();
  ASSERT_TRUE(pinner.ok() && other_pinner.ok());
  uint64_t seq = 0;
  for (; seq < 3; ++seq) ASSERT_EQ(SendSeq(*a, seq), SendResult::kOk);
  PinnedMessage view;
  ASSERT_EQ(pinner->Pin(queue().MakeQueueIndex(1), &view), PinResult::kGood);
  const uint32_t pinned_message =
      queue().region().pinner(pinner->slot())->pinned.Load().message_index();
  // The second pinner pins and unpins as the ring turns, so senders also
  // take and release a second pin.
  for (int lap = 0; lap < 200; ++lap) {
    for (uint32_t k = 0; k < 4; ++k, ++seq) {
      ASSERT_EQ(SendSeq((seq % 3 == 0) ? *b : *a, seq), SendResult::kOk);
      ASSERT_TRUE(Matches(view, 1)) << "after send " << seq;
    }
    PinnedMessage second;
    other_pinner->Unpin();
    ASSERT_EQ(other_pinner->Pin(queue().LatestQueueIndex(), &second),
              PinResult::kGood);
    ASSERT_TRUE(Matches(second, seq - 1));
  }
  ASSERT_TRUE(Matches(view, 1));
  // Its index is long gone from the ring; the message sits parked.
  MessageInfo info;
  EXPECT_EQ(queue().Read(queue().MakeQueueIndex(1), &info, nullptr, 0),
            ReadResult::kTooOld);
  bool parked = false;
  for (uint32_t s = 0; s < 2; ++s) {
    for (uint32_t j = 0; j < 2; ++j) {
      parked |= queue().region().parked(s, j)->Load().message_index() ==
                pinned_message;
    }
  }
  EXPECT_TRUE(parked);
  // Neither sender's scratch is pinned.
  EXPECT_NE(a->data(), view.data);
  EXPECT_NE(b->data(), view.data);
  EXPECT_TRUE(CheckEveryMessageOwnedOnce(queue()).ok());
  // After Unpin, sending goes on and ownership stays exact.
  pinner->Unpin();
  other_pinner->Unpin();
  for (int k = 0; k < 20; ++k, ++seq) {
    ASSERT_EQ(SendSeq(*a, seq), SendResult::kOk);
  }
  EXPECT_TRUE(CheckEveryMessageOwnedOnce(queue()).ok());
}

TEST_F(PinTest, OnlyTheOwningThreadPins) {
  Open(PinConfig(1));
  absl::StatusOr<Sender> sender = queue().MakeSender();
  ASSERT_TRUE(sender.ok());
  ASSERT_EQ(SendSeq(*sender, 0), SendResult::kOk);
  absl::StatusOr<Pinner> pinner = queue().MakePinner();
  ASSERT_TRUE(pinner.ok());
  PinResult from_other = PinResult::kGood;
  std::thread other([&] {
    PinnedMessage view;
    from_other = pinner->Pin(queue().MakeQueueIndex(0), &view);
  });
  other.join();
  EXPECT_EQ(from_other, PinResult::kNotOwner);
  EXPECT_FALSE(queue().region().pinner(pinner->slot())->pinned.Load().valid());
}

// A pinner whose thread exits while pinned: its slot is marked dead by the
// kernel; the next MakePinner (or MakeSender) releases the pin and the slot.
TEST_F(PinTest, DeadPinnerIsReleased) {
  Open(PinConfig(1));
  absl::StatusOr<Sender> sender = queue().MakeSender();
  ASSERT_TRUE(sender.ok());
  ASSERT_EQ(SendSeq(*sender, 0), SendResult::kOk);
  std::thread pinning_thread([&] {
    absl::StatusOr<Pinner> pinner = queue().MakePinner();
    ASSERT_TRUE(pinner.ok());
    PinnedMessage view;
    ASSERT_EQ(pinner->Pin(queue().MakeQueueIndex(0), &view), PinResult::kGood);
    // The thread dies holding the slot and the pin.
    testing::AbandonLikeADeadThread(*std::move(pinner));
  });
  pinning_thread.join();
  internal::PinnerSlot* const slot = queue().region().pinner(0);
  ASSERT_TRUE(slot->pinned.Load().valid());
  absl::StatusOr<Pinner> pinner = queue().MakePinner();
  ASSERT_TRUE(pinner.ok()) << pinner.status();
  EXPECT_FALSE(slot->pinned.Load().valid());
}

// A sender that took a pinned message out of the ring but died before
// parking it: the next claimer of its slot parks it before the slot's user
// can write it.
TEST_F(PinTest, ClaimerParksAPinnedScratchLeftByADeadSender) {
  ASSERT_NO_FATAL_FAILURE(SendAFullRingAndPinItsOldest());
  PinnedMessage& view = view_;
  ASSERT_EQ(SendSeq(*sender_, 4), SendResult::kOk);  // Parks it in sender_.
  ASSERT_NE(sender_->data(), view.data);
  // Stand-in for a sender that completed steps a..g for index 4 (took the
  // pinned message as scratch) and died before its swap: the other slot,
  // unowned, now holds the pinned message as its scratch.
  const uint32_t other = MovePinnedIntoTheFreeSlotsScratch();
  ASSERT_TRUE(CheckEveryMessageOwnedOnce(queue()).ok());
  absl::StatusOr<Sender> claimer = queue().MakeSender();
  ASSERT_TRUE(claimer.ok()) << claimer.status();
  ASSERT_EQ(claimer->slot(), other);
  EXPECT_NE(claimer->data(), view.data);
  EXPECT_TRUE(Matches(view, 0));
  EXPECT_TRUE(CheckEveryMessageOwnedOnce(queue()).ok());
  for (uint64_t seq = 5; seq < 40; ++seq) {
    ASSERT_EQ(SendSeq(*claimer, seq), SendResult::kOk);
    ASSERT_TRUE(Matches(view, 0));
  }
}

}  // namespace
}  // namespace lockless

namespace lockless {
namespace {

// A sender slot whose parked entries are scribbled (a hostile process) and
// whose scratch is pinned: the claimer cannot park it. It must not hand that
// message out for writing: data() stays off the pinned bytes, and Send
// reports kCorrupted with nothing published (SendResult::kCorrupted's
// contract) and the pinned bytes untouched.
TEST_F(PinTest, ClaimerThatCannotParkAPinnedScratchWritesNothing) {
  ASSERT_NO_FATAL_FAILURE(SendAFullRingAndPinItsOldest());
  PinnedMessage& view = view_;
  const internal::RegionView& region = queue().region();
  ASSERT_EQ(SendSeq(*sender_, 4), SendResult::kOk);  // Parks it in sender_.
  // As in ClaimerParksAPinnedScratchLeftByADeadSender, move the pinned
  // message into the free slot's scratch; then scribble the free slot's
  // only parked entry so that nothing can be swapped in.
  const uint32_t other = MovePinnedIntoTheFreeSlotsScratch();
  region.parked(other, 0)->Store(
      Index(0, static_cast<uint32_t>(region.layout().num_messages)));
  absl::StatusOr<Sender> claimer = queue().MakeSender();
  ASSERT_TRUE(claimer.ok()) << claimer.status();
  ASSERT_EQ(claimer->slot(), other);
  EXPECT_NE(claimer->data(), view.data);
  const QueueIndex latest = queue().LatestQueueIndex();
  EXPECT_EQ(SendSeq(*claimer, 5), SendResult::kCorrupted);
  EXPECT_EQ(claimer->Send(size_t{8}), SendResult::kCorrupted);
  EXPECT_EQ(queue().LatestQueueIndex(), latest);
  EXPECT_TRUE(Matches(view, 0));
}

// A live sender whose parked entries get scribbled while a pin is held: the
// send that takes the pinned message out of the ring cannot park it. No
// later send may write into it, and a kCorrupted send publishes nothing.
TEST_F(PinTest, SenderThatCannotParkAPinnedScratchWritesNothing) {
  ASSERT_NO_FATAL_FAILURE(SendAFullRingAndPinItsOldest());
  PinnedMessage& view = view_;
  Sender* const sender = &*sender_;
  const internal::RegionView& region = queue().region();
  region.parked(sender->slot(), 0)->Store(
      Index(0, static_cast<uint32_t>(region.layout().num_messages)));
  int corrupted = 0;
  for (uint64_t seq = 4; seq < 12; ++seq) {
    const QueueIndex before = queue().LatestQueueIndex();
    const SendResult result = SendSeq(*sender, seq);
    if (result == SendResult::kCorrupted) {
      ++corrupted;
      EXPECT_EQ(queue().LatestQueueIndex(), before) << "seq " << seq;
    } else {
      EXPECT_EQ(result, SendResult::kOk) << "seq " << seq;
    }
    ASSERT_TRUE(Matches(view, 0)) << "pinned bytes changed at seq " << seq;
    EXPECT_NE(sender->data(), view.data) << "seq " << seq;
  }
  EXPECT_GT(corrupted, 0);
}

// A moved-from Pinner no longer holds the pin (the moved-to one does).
TEST_F(PinTest, MovedFromPinnerHoldsNoPin) {
  Open(PinConfig(1));
  absl::StatusOr<Sender> sender = queue().MakeSender();
  ASSERT_TRUE(sender.ok());
  ASSERT_EQ(SendSeq(*sender, 0), SendResult::kOk);
  absl::StatusOr<Pinner> pinner = queue().MakePinner();
  ASSERT_TRUE(pinner.ok());
  PinnedMessage view;
  ASSERT_EQ(pinner->Pin(queue().MakeQueueIndex(0), &view), PinResult::kGood);
  Pinner moved(*std::move(pinner));
  EXPECT_TRUE(moved.pinning());
  EXPECT_FALSE(pinner->pinning());
  moved.Unpin();
  EXPECT_FALSE(moved.pinning());
  EXPECT_FALSE(queue().region().pinner(moved.slot())->pinned.Load().valid());
}

}  // namespace
}  // namespace lockless

namespace lockless {
namespace {

// The queue index in the header of the message a sender would write next.
bool ScratchHeaderInvalid(const LocklessQueue& queue, uint32_t slot) {
  const internal::RegionView& region = queue.region();
  const uint32_t m = region.sender(slot)->scratch_index.Load().message_index();
  return !region.message(m)->header.queue_index.Load(region.queue_size())
              .valid();
}

// A sender died right after its ring CAS took a pinned message (before step
// 6 invalidated that message's header), so recovery hands its slot on with
// the pinned message, still carrying its old queue index, as scratch. The
// claimer parks it; when a later swap takes it back as scratch, its header
// must say "no index" before the user writes its payload, or a reader that
// loaded the ring slot of that old index before the CAS would accept the
// new bytes as the old message (Send's step 6, the constructor's
// invalidation). Checked every time the scratch is handed out.
TEST_F(PinTest, AParkedMessageNeverKeepsItsOldQueueIndex) {
  QueueConfig config = PinConfig(1);
  config.num_senders = 1;  // The claimer gets the dead sender's slot.
  Open(config);
  const internal::RegionView& region = queue().region();
  absl::StatusOr<Pinner> pinner = queue().MakePinner();
  ASSERT_TRUE(pinner.ok());
  PinnedMessage view;
  uint32_t dead_slot = 0;
  Index taken;
  {
    testing::SenderThread dead(queue());
    ASSERT_TRUE(dead.status().ok()) << dead.status();
    dead_slot = dead.slot();
    dead.SendNumbered(4);  // A full ring.
    ASSERT_EQ(pinner->Pin(queue().MakeQueueIndex(0), &view), PinResult::kGood);
    const testing::Intent intent = testing::RecordIntent(
        region, dead.slot(), testing::NextQueueIndex(queue()));
    ASSERT_TRUE(testing::PublishIntent(region, intent));
    taken = intent.to_replace;
    dead.Die();  // Between its CAS and step 6: recovery's state 3a.
  }
  const internal::Message* const taken_message = region.message(taken.message_index());
  absl::StatusOr<Sender> claimer = queue().MakeSender();
  ASSERT_TRUE(claimer.ok()) << claimer.status();
  ASSERT_EQ(claimer->slot(), dead_slot);
  ASSERT_NE(claimer->data(), view.data);
  EXPECT_TRUE(ScratchHeaderInvalid(queue(), claimer->slot()));
  // The parked message is the one the dead sender took.
  EXPECT_FALSE(taken_message->header.queue_index.Load(config.queue_size)
                   .valid());
  // Unpin it and make the sender swap it back: pin the newest message and
  // send a lap, so the sender takes that pinned one out of the ring.
  pinner->Unpin();
  unsigned char payload[kPayloadBytes] = {};
  bool swapped_back = false;
  for (int round = 0; round < 4 && !swapped_back; ++round) {
    ASSERT_EQ(pinner->Pin(queue().LatestQueueIndex(), &view), PinResult::kGood);
    for (uint32_t k = 0; k < config.queue_size; ++k) {
      ASSERT_EQ(claimer->Send(payload, sizeof(payload)), SendResult::kOk);
      ASSERT_TRUE(ScratchHeaderInvalid(queue(), claimer->slot()))
          << "round " << round << " send " << k;
      if (claimer->data() == taken_message->data()) swapped_back = true;
    }
    pinner->Unpin();
  }
  EXPECT_TRUE(swapped_back);
  EXPECT_TRUE(CheckEveryMessageOwnedOnce(queue()).ok());
}

}  // namespace
}  // namespace lockless
