// Guard bytes (Message in ipc/internal/queue_layout.h): a zero-copy sender
// that writes past max_size() is told so by its next Send (kGuardOverwritten,
// nothing published, guard restored), a slot inherited from an owner that
// overran is reported by MakeSender, and CheckGuards names every broken guard
// and nothing on a healthy queue. Deterministic: overruns are written by the
// test, with bytes that certainly differ from the pattern they replace.
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "ipc/internal/queue_layout.h"
#include "ipc/lockless_queue.h"
#include "ipc/queue_config.h"
#include "testing/queue_memory.h"
#include "testing/sender_thread.h"

namespace lockless {
namespace {

using ::lockless::testing::QueueMemory;
using ::testing::HasSubstr;

QueueConfig GuardConfig(uint64_t message_data_size_bytes) {
  QueueConfig config;
  config.num_watchers = 0;
  config.num_senders = 1;
  config.queue_size = 3;
  config.message_data_size_bytes = message_data_size_bytes;
  return config;
}

// The scratch message number behind sender.data().
uint64_t ScratchMessage(const LocklessQueue& queue, const Sender& sender) {
  return queue.region()
      .sender(sender.slot())
      ->scratch_index.Load()
      .message_index();
}

// Writes a full payload of `fill` into data() and then `overrun_bytes` bytes
// past max_size(), each the complement of the guard byte it replaces (so the
// overrun certainly changes the guard).
void WritePayloadAndOverrun(const LocklessQueue& queue, Sender& sender,
                            unsigned char fill, size_t overrun_bytes) {
  unsigned char* const data = static_cast<unsigned char*>(sender.data());
  ASSERT_NE(data, nullptr);
  std::memset(data, fill, sender.max_size());
  const uint64_t message = ScratchMessage(queue, sender);
  for (size_t i = 0; i < overrun_bytes; ++i) {
    data[sender.max_size() + i] =
        static_cast<unsigned char>(~internal::GuardByte(message, i));
  }
}

std::string ReadPayload(const LocklessQueue& queue, QueueIndex index) {
  std::string buffer(4096, '\0');
  MessageInfo info;
  EXPECT_EQ(
      ReadResultName(queue.Read(index, &info, buffer.data(), buffer.size())),
      ReadResultName(ReadResult::kGood));
  buffer.resize(info.length);
  return buffer;
}

// Every message's bytes from the end of its payload to the end of its
// stride hold the pattern.
void ExpectEveryGuardIntact(const LocklessQueue& queue) {
  const internal::RegionView& region = queue.region();
  const internal::Layout& layout = region.layout();
  for (uint64_t m = 0; m < layout.num_messages; ++m) {
    const unsigned char* const guard =
        reinterpret_cast<const unsigned char*>(region.message(m)) +
        layout.guard_offset_bytes;
    for (uint64_t i = 0; i < layout.guard_size_bytes; ++i) {
      ASSERT_EQ(guard[i], internal::GuardByte(m, i))
          << "message " << m << " guard byte " << i;
    }
  }
  EXPECT_TRUE(queue.CheckGuards().ok()) << queue.CheckGuards();
}

// Payload sizes of each class (the header takes the first line): a multiple
// of 8; not; header + payload whole lines (the guard word needs a line of
// its own); header + payload + guard word exactly whole lines; a payload
// whose guard is most of a line, or more than one.
const uint64_t kSizes[] = {8, 13, 64, 56, 57, 100, 1, 128};

TEST(GuardTest, GuardStartsRightAfterThePayloadAndFillsTheStride) {
  for (const uint64_t size : kSizes) {
    SCOPED_TRACE(size);
    const QueueConfig config = GuardConfig(size);
    absl::StatusOr<internal::Layout> layout = internal::ComputeLayout(config);
    ASSERT_TRUE(layout.ok()) << layout.status();
    EXPECT_EQ(layout->guard_offset_bytes, sizeof(internal::Message) + size);
    EXPECT_EQ(layout->message_stride_bytes % internal::kCacheLineBytes, 0u);
    EXPECT_GE(layout->guard_size_bytes, internal::kGuardBytes);
    EXPECT_EQ(layout->guard_offset_bytes + layout->guard_size_bytes,
              layout->message_stride_bytes);
    // A line more than the payload needs only when the guard word does not
    // fit in the payload's last line.
    EXPECT_LT(layout->guard_size_bytes,
              internal::kCacheLineBytes + internal::kGuardBytes);

    QueueMemory memory(config);
    LocklessQueue queue =
        *LocklessQueue::Attach(memory.data(), memory.size_bytes(), config);
    ExpectEveryGuardIntact(queue);
    // The last payload byte is the caller's; the next one is the guard's.
    absl::StatusOr<Sender> sender = queue.MakeSender();
    ASSERT_TRUE(sender.ok()) << sender.status();
    EXPECT_TRUE(sender->inherited_guard_damage().ok());
    unsigned char* const data = static_cast<unsigned char*>(sender->data());
    const uint64_t message = ScratchMessage(queue, *sender);
    EXPECT_EQ(data + size, reinterpret_cast<unsigned char*>(
                               queue.region().message(message)) +
                               layout->guard_offset_bytes);
    data[size - 1] = static_cast<unsigned char>(~data[size]);
    EXPECT_EQ(SendResultName(sender->Send(size)),
              SendResultName(SendResult::kOk));
    WritePayloadAndOverrun(queue, *sender, 0x11, 1);
    EXPECT_EQ(SendResultName(sender->Send(size)),
              SendResultName(SendResult::kGuardOverwritten));
    ExpectEveryGuardIntact(queue);
  }
}

// Overruns of one byte, one word and a whole line (sizes where the line still
// ends inside the message's own stride), repeated over more than a lap so
// every message is the scratch at least once: reported every time, nothing
// published, the guard restored, and the next Send works.
TEST(GuardTest, OverrunIsReportedEveryTimeAndNothingIsPublished) {
  struct Case {
    uint64_t size;
    size_t overrun;
  };
  const Case cases[] = {{8, 1},   {13, 1},  {64, 1}, {56, 1},  {57, 1},
                        {8, 8},   {13, 8},  {64, 8}, {56, 8},  {57, 8},
                        {57, 64}, {64, 64}, {13, 3}, {100, 20}};
  for (const Case& c : cases) {
    SCOPED_TRACE(::testing::Message()
                 << "size " << c.size << " overrun " << c.overrun);
    const QueueConfig config = GuardConfig(c.size);
    QueueMemory memory(config);
    LocklessQueue queue =
        *LocklessQueue::Attach(memory.data(), memory.size_bytes(), config);
    ASSERT_LE(c.overrun, queue.region().layout().guard_size_bytes);
    absl::StatusOr<Sender> sender = queue.MakeSender();
    ASSERT_TRUE(sender.ok()) << sender.status();
    for (int round = 0; round < 2 * 4; ++round) {
      SCOPED_TRACE(round);
      const QueueIndex latest = queue.LatestQueueIndex();
      WritePayloadAndOverrun(queue, *sender, static_cast<unsigned char>(round),
                             c.overrun);
      EXPECT_FALSE(queue.CheckGuards().ok());
      EXPECT_EQ(SendResultName(sender->Send(c.size)),
                SendResultName(SendResult::kGuardOverwritten));
      EXPECT_EQ(queue.LatestQueueIndex(), latest) << "published anyway";
      ExpectEveryGuardIntact(queue);
      // The payload is still in data(): send it.
      MessageInfo info;
      ASSERT_EQ(SendResultName(sender->Send(c.size, &info)),
                SendResultName(SendResult::kOk));
      EXPECT_EQ(ReadPayload(queue, info.queue_index),
                std::string(c.size, static_cast<char>(round)));
    }
  }
}

// The copying Send checks too: an overrun through data() followed by a
// copying Send is not published with a broken guard.
TEST(GuardTest, CopyingSendReportsAnOverrunThroughData) {
  const QueueConfig config = GuardConfig(16);
  QueueMemory memory(config);
  LocklessQueue queue =
      *LocklessQueue::Attach(memory.data(), memory.size_bytes(), config);
  absl::StatusOr<Sender> sender = queue.MakeSender();
  ASSERT_TRUE(sender.ok()) << sender.status();
  WritePayloadAndOverrun(queue, *sender, 0, 2);
  EXPECT_EQ(SendResultName(sender->Send("abc", 3)),
            SendResultName(SendResult::kGuardOverwritten));
  EXPECT_FALSE(queue.LatestQueueIndex().valid());
  EXPECT_EQ(SendResultName(sender->Send("abc", 3)),
            SendResultName(SendResult::kOk));
  ExpectEveryGuardIntact(queue);
}

TEST(GuardTest, WritingExactlyMaxSizeIsNeverReported) {
  for (const uint64_t size : kSizes) {
    SCOPED_TRACE(size);
    const QueueConfig config = GuardConfig(size);
    QueueMemory memory(config);
    LocklessQueue queue =
        *LocklessQueue::Attach(memory.data(), memory.size_bytes(), config);
    absl::StatusOr<Sender> sender = queue.MakeSender();
    ASSERT_TRUE(sender.ok()) << sender.status();
    // Over two laps, every message is the scratch at least once; the
    // payload bytes next to the guard take both extremes.
    for (int i = 0; i < 2 * 4; ++i) {
      std::memset(sender->data(), i % 2 == 0 ? 0x00 : 0xff, size);
      ASSERT_EQ(SendResultName(sender->Send(size)),
                SendResultName(SendResult::kOk));
      std::string full(size, i % 2 == 0 ? '\x00' : '\xff');
      ASSERT_EQ(SendResultName(sender->Send(full.data(), full.size())),
                SendResultName(SendResult::kOk));
    }
    ExpectEveryGuardIntact(queue);
  }
}

// A sender overruns and its thread dies before sending: the next MakeSender
// that claims its slot repairs the guard and says so on the Sender.
TEST(GuardTest, MakeSenderReportsTheOverrunOfADeadSender) {
  const QueueConfig config = GuardConfig(24);
  QueueMemory memory(config);
  LocklessQueue queue =
      *LocklessQueue::Attach(memory.data(), memory.size_bytes(), config);
  {
    testing::SenderThread dead(queue);
    ASSERT_TRUE(dead.status().ok()) << dead.status();
    dead.Run([&](Sender& sender) {
      ASSERT_EQ(SendResultName(sender.Send("x", 1)),
                SendResultName(SendResult::kOk));
      WritePayloadAndOverrun(queue, sender, 0x5a, 5);
    });
    dead.Die();
  }
  const absl::Status before = queue.CheckGuards();
  EXPECT_EQ(before.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(before.message()),
              HasSubstr("scratch of sender slot 0"));
  EXPECT_THAT(std::string(before.message()), HasSubstr("5 bytes past"));

  absl::StatusOr<Sender> sender = queue.MakeSender();
  ASSERT_TRUE(sender.ok()) << sender.status();
  EXPECT_EQ(sender->inherited_guard_damage().code(),
            absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(sender->inherited_guard_damage().message()),
              HasSubstr("up to 5 bytes past max_size() (24)"));
  ExpectEveryGuardIntact(queue);
  EXPECT_EQ(SendResultName(sender->Send("y", 1)),
            SendResultName(SendResult::kOk));
  EXPECT_EQ(ReadPayload(queue, queue.LatestQueueIndex()), "y");
}

// A healthy slot handed over by a live owner reports nothing.
TEST(GuardTest, MakeSenderReportsNothingOnAHealthySlot) {
  const QueueConfig config = GuardConfig(24);
  QueueMemory memory(config);
  LocklessQueue queue =
      *LocklessQueue::Attach(memory.data(), memory.size_bytes(), config);
  for (int i = 0; i < 5; ++i) {
    absl::StatusOr<Sender> sender = queue.MakeSender();
    ASSERT_TRUE(sender.ok()) << sender.status();
    EXPECT_TRUE(sender->inherited_guard_damage().ok())
        << sender->inherited_guard_damage();
    ASSERT_EQ(SendResultName(sender->Send("z", 1)),
              SendResultName(SendResult::kOk));
  }
}

// A write into a published message's guard (e.g. through a data() pointer
// kept past its Send) is found by CheckGuards, which names the ring slot.
TEST(GuardTest, CheckGuardsNamesABrokenGuardInTheRing) {
  const QueueConfig config = GuardConfig(40);
  QueueMemory memory(config);
  LocklessQueue queue =
      *LocklessQueue::Attach(memory.data(), memory.size_bytes(), config);
  absl::StatusOr<Sender> sender = queue.MakeSender();
  ASSERT_TRUE(sender.ok()) << sender.status();
  for (int i = 0; i < 3; ++i) ASSERT_EQ(sender->Send("m", 1), SendResult::kOk);
  EXPECT_TRUE(queue.CheckGuards().ok()) << queue.CheckGuards();

  const internal::RegionView& region = queue.region();
  const uint64_t message = region.ring(1)->Load().message_index();
  unsigned char* const guard =
      reinterpret_cast<unsigned char*>(region.message(message)) +
      region.layout().guard_offset_bytes;
  guard[2] = static_cast<unsigned char>(~guard[2]);
  const absl::Status status = queue.CheckGuards();
  EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(
      std::string(status.message()),
      HasSubstr(absl::StrCat("message ", message, " (in ring slot 1)")));
  EXPECT_THAT(std::string(status.message()), HasSubstr("3 bytes past"));
  EXPECT_THAT(std::string(status.message()), HasSubstr("1 message guard(s)"));

  // Only the guard word is checked; a write further into the padding is
  // not a broken guard (the dump shows it, GuardDamageBytes counts it).
  guard[2] = internal::GuardByte(message, 2);
  EXPECT_TRUE(queue.CheckGuards().ok());
  guard[internal::kGuardBytes] =
      static_cast<unsigned char>(~guard[internal::kGuardBytes]);
  EXPECT_TRUE(queue.CheckGuards().ok());
  EXPECT_EQ(internal::GuardDamageBytes(region, message),
            internal::kGuardBytes + 1);
}

// Works on a read-only attachment (it only reads).
TEST(GuardTest, CheckGuardsWorksReadOnly) {
  const QueueConfig config = GuardConfig(16);
  QueueMemory memory(config);
  LocklessQueue queue =
      *LocklessQueue::Attach(memory.data(), memory.size_bytes(), config);
  absl::StatusOr<LocklessQueue> reader =
      LocklessQueue::AttachReadOnly(memory.data(), memory.size_bytes(), config);
  ASSERT_TRUE(reader.ok()) << reader.status();
  EXPECT_TRUE(reader->CheckGuards().ok());
  absl::StatusOr<Sender> sender = queue.MakeSender();
  ASSERT_TRUE(sender.ok());
  WritePayloadAndOverrun(queue, *sender, 0, 1);
  EXPECT_EQ(reader->CheckGuards().code(), absl::StatusCode::kDataLoss);
}

}  // namespace
}  // namespace lockless
