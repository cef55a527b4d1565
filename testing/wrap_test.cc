// The 32-bit queue counter wrapping around (DESIGN.md section 3), end to end
// through LocklessQueue.
//
// Two targets build this file:
//   wrap_test       starts the counter a few laps before the wrap point with
//                   internal::AttachStartingAtForTest and sends through it,
//                   single-threaded (exact checks after every send) and with
//                   the QueueRacer. Seconds.
//   wrap_full_test  (manual) passes --wrap_full: one sender sends more than
//                   2^32 messages into a small queue starting from zero, so the
//                   real counter wraps with no test hook involved. See BUILD
//                   for how long it takes.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "gflags/gflags.h"
#include "gtest/gtest.h"
#include "index/queue_index.h"
#include "ipc/lockless_queue.h"
#include "ipc/queue_config.h"
#include "testing/queue_racer.h"

DEFINE_bool(wrap_full, false,
            "Run WrapFullTest: send more than 2^32 messages (takes minutes).");
DEFINE_uint64(wrap_full_messages, 0,
              "Messages WrapFullTest sends; 0 = enough to wrap the counter "
              "(max_index + 1000). Smaller values measure throughput.");

namespace lockless {
namespace testing {
namespace {

constexpr size_t kMessageBytes = 24;

// The payload of the single-threaded tests: which send it was.
struct WrapPayload {
  uint64_t send_number;  // 0, 1, 2, ... since the test started
  uint32_t queue_index;  // raw index Send reported
  uint32_t check;        // ~queue_index, to catch a half-copied message
};
static_assert(sizeof(WrapPayload) <= kMessageBytes);

QueueConfig WrapConfig(uint32_t queue_size) {
  QueueConfig config;
  config.num_watchers = 0;
  config.num_senders = 4;
  config.queue_size = queue_size;
  config.message_data_size_bytes = kMessageBytes;
  return config;
}

uint32_t MaxIndex(uint32_t queue_size) {
  return QueueIndex::MaxIndex(QueueIndex::kMaxValue, queue_size);
}

// Reads position `position` (0 = the first message of the test) after `sent`
// messages and checks it against what it must be: GOOD with the right payload
// if among the last queue_size sent, TOO_OLD if older, NOTHING_NEW if not sent
// yet.
void ExpectReadAt(const LocklessQueue& queue, QueueIndex first,
                  uint64_t position, uint64_t sent) {
  const uint32_t queue_size = queue.config().queue_size;
  const QueueIndex q = first.IncrementBy(static_cast<uint32_t>(position));
  SCOPED_TRACE(::testing::Message()
               << "reading " << q.DebugString() << " (message " << position
               << ") after " << sent << " sends");
  MessageInfo info;
  unsigned char buffer[kMessageBytes];
  std::memset(buffer, 0xee, sizeof(buffer));
  const ReadResult result = queue.Read(q, &info, buffer, sizeof(buffer));
  if (position >= sent) {
    EXPECT_EQ(ReadResultName(result), ReadResultName(ReadResult::kNothingNew));
    return;
  }
  if (sent - position > queue_size) {
    EXPECT_EQ(ReadResultName(result), ReadResultName(ReadResult::kTooOld));
    return;
  }
  ASSERT_EQ(ReadResultName(result), ReadResultName(ReadResult::kGood));
  EXPECT_EQ(info.queue_index, q) << info.queue_index.DebugString();
  ASSERT_EQ(info.length, sizeof(WrapPayload));
  WrapPayload payload;
  std::memcpy(&payload, buffer, sizeof(payload));
  EXPECT_EQ(payload.send_number, position);
  EXPECT_EQ(payload.queue_index, q.index());
  EXPECT_EQ(payload.check, ~q.index());
  // Bytes past the length are untouched.
  for (size_t i = sizeof(WrapPayload); i < sizeof(buffer); ++i) {
    EXPECT_EQ(buffer[i], 0xee) << "byte " << i;
  }
}

// Checks the neighbourhood of the ring after `sent` sends: the last
// queue_size + 2 positions sent, and 2 not yet sent.
void ExpectRing(const LocklessQueue& queue, QueueIndex first, uint64_t sent) {
  const uint32_t queue_size = queue.config().queue_size;
  const uint64_t from = sent > queue_size + 2 ? sent - queue_size - 2 : 0;
  for (uint64_t position = from; position < sent + 2; ++position) {
    ExpectReadAt(queue, first, position, sent);
    if (::testing::Test::HasFatalFailure()) return;
  }
}

class WrapTest : public ::testing::TestWithParam<uint32_t> {};

// Starts 3 laps + 5 before the wrap point and sends 6 laps + 10: the counter
// wraps in the middle, with full rings on both sides.
TEST_P(WrapTest, SingleSenderThroughTheWrap) {
  const uint32_t queue_size = GetParam();
  const QueueConfig config = WrapConfig(queue_size);
  QueueMemory memory(config);
  const uint32_t max_index = MaxIndex(queue_size);
  const uint32_t first_raw = max_index - 3 * queue_size - 5;
  absl::StatusOr<LocklessQueue> queue = internal::AttachStartingAtForTest(
      memory.data(), memory.size_bytes(), config, first_raw);
  ASSERT_TRUE(queue.ok()) << queue.status();
  const QueueIndex first = queue->MakeQueueIndex(first_raw);
  ASSERT_EQ(first.max_index(), max_index);

  // Nothing sent yet: "latest" is the index before the first (as if the
  // counter had got there by sending), or empty.
  const QueueIndex initial_latest = queue->LatestQueueIndex();
  if (initial_latest.valid()) {
    EXPECT_EQ(initial_latest, first.DecrementBy(1))
        << initial_latest.DebugString();
  }
  ExpectReadAt(*queue, first, 0, 0);

  absl::StatusOr<Sender> sender = queue->MakeSender();
  ASSERT_TRUE(sender.ok()) << sender.status();

  const uint64_t wrap_position = max_index - first_raw;  // sends before 0
  const uint64_t num_sends = 6 * uint64_t{queue_size} + 10;
  const uint64_t check_every = std::max<uint64_t>(1, queue_size / 8);
  for (uint64_t k = 0; k < num_sends; ++k) {
    const QueueIndex expected = first.IncrementBy(static_cast<uint32_t>(k));
    SCOPED_TRACE(::testing::Message() << "send " << k << " of " << num_sends
                                      << ", expected at "
                                      << expected.DebugString());
    const WrapPayload payload{k, expected.index(), ~expected.index()};
    MessageInfo info;
    ASSERT_EQ(sender->Send(&payload, sizeof(payload), &info), SendResult::kOk);
    ASSERT_EQ(info.queue_index, expected) << info.queue_index.DebugString();
    EXPECT_EQ(info.length, sizeof(payload));
    // Exact after every send: nothing else is sending.
    const QueueIndex latest = queue->LatestQueueIndex();
    ASSERT_EQ(latest, expected) << latest.DebugString();
    if (k == wrap_position) {
      ASSERT_EQ(expected.index(), 0u);
    }
    if (k + 1 == wrap_position) {
      ASSERT_EQ(expected.index(), max_index - 1);
    }
    const bool near_wrap = k + 2 >= wrap_position && k <= wrap_position + 2;
    if (queue_size <= 7 || near_wrap || k % check_every == 0 ||
        k + 1 == num_sends) {
      ExpectRing(*queue, first, k + 1);
      if (HasFatalFailure()) return;
    }
  }
  // Every message still in the ring is GOOD, everything older TOO_OLD.
  for (uint64_t position = 0; position < num_sends + 2; ++position) {
    ExpectReadAt(*queue, first, position, num_sends);
    if (HasFatalFailure()) return;
  }
}

// A second sender made after the wrap continues exactly where the first
// stopped.
TEST_P(WrapTest, NewSenderAfterTheWrap) {
  const uint32_t queue_size = GetParam();
  const QueueConfig config = WrapConfig(queue_size);
  QueueMemory memory(config);
  const uint32_t first_raw = MaxIndex(queue_size) - 1;
  absl::StatusOr<LocklessQueue> queue = internal::AttachStartingAtForTest(
      memory.data(), memory.size_bytes(), config, first_raw);
  ASSERT_TRUE(queue.ok()) << queue.status();
  const QueueIndex first = queue->MakeQueueIndex(first_raw);
  uint64_t sent = 0;
  for (int round = 0; round < 3; ++round) {
    absl::StatusOr<Sender> sender = queue->MakeSender();
    ASSERT_TRUE(sender.ok()) << sender.status();
    for (uint32_t i = 0; i < queue_size + 1; ++i, ++sent) {
      const QueueIndex expected = first.IncrementBy(static_cast<uint32_t>(sent));
      const WrapPayload payload{sent, expected.index(), ~expected.index()};
      MessageInfo info;
      ASSERT_EQ(sender->Send(&payload, sizeof(payload), &info),
                SendResult::kOk);
      ASSERT_EQ(info.queue_index, expected);
      ASSERT_EQ(queue->LatestQueueIndex(), expected);
    }
  }
  ExpectRing(*queue, first, sent);
}

// The racer, with each iteration straddling the wrap point.
TEST_P(WrapTest, RacerAcrossTheWrap) {
  const uint32_t queue_size = GetParam();
  const QueueConfig config = WrapConfig(queue_size);
  RacerOptions options;
  options.num_threads = 3;
  options.num_messages_per_thread = 300;
  struct Case {
    bool race_reads;
    int write_wrap_count;
  };
  for (const Case& c : {Case{false, 0}, Case{true, 0}, Case{false, 2},
                        Case{true, 2}}) {
    SCOPED_TRACE(::testing::Message() << "race_reads " << c.race_reads
                                      << ", write_wrap_count "
                                      << c.write_wrap_count);
    QueueMemory memory(config);
    // The iteration's size (QueueRacer::TotalMessages, checked below) decides
    // where to start so that the wrap falls in its middle.
    const uint64_t per_thread =
        options.num_messages_per_thread +
        static_cast<uint64_t>(c.write_wrap_count) *
            ((queue_size + options.num_threads - 1) / options.num_threads);
    const uint64_t total = per_thread * options.num_threads;
    const uint32_t first_raw =
        MaxIndex(queue_size) - static_cast<uint32_t>(total / 2);
    absl::StatusOr<LocklessQueue> queue = internal::AttachStartingAtForTest(
        memory.data(), memory.size_bytes(), config, first_raw);
    ASSERT_TRUE(queue.ok()) << queue.status();
    QueueRacer racer(*queue, options);
    ASSERT_EQ(racer.TotalMessages(c.write_wrap_count), total);
    const absl::Status status =
        racer.RunIteration(c.race_reads, c.write_wrap_count);
    ASSERT_TRUE(status.ok()) << status;
    // It did cross: the latest index is past zero, below the start.
    const QueueIndex latest = queue->LatestQueueIndex();
    EXPECT_LT(latest.index(), first_raw) << latest.DebugString();
    // And a second iteration continues from there.
    const absl::Status again =
        racer.RunIteration(!c.race_reads, c.write_wrap_count);
    ASSERT_TRUE(again.ok()) << again;
  }
}

INSTANTIATE_TEST_SUITE_P(QueueSize, WrapTest,
                         ::testing::Values(1u, 2u, 3u, 7u, 100u, 1000u));

TEST(WrapStartTest, StartPastTheWrapPointIsRejected) {
  const QueueConfig config = WrapConfig(7);
  QueueMemory memory(config);
  const absl::StatusOr<LocklessQueue> queue =
      internal::AttachStartingAtForTest(memory.data(), memory.size_bytes(),
                                        config, MaxIndex(7));
  EXPECT_FALSE(queue.ok());
}

// More than 2^32 sends through a small queue from a fresh region (counter
// starting at zero). LatestQueueIndex and Send's index are checked on every
// send (cheap); the ring is read back every 2^20 sends and around the wrap.
TEST(WrapFullTest, MoreThan2To32Messages) {
  if (!FLAGS_wrap_full) {
    GTEST_SKIP() << "pass --wrap_full (target //testing:wrap_full_test)";
  }
  constexpr uint32_t kQueueSize = 7;
  QueueConfig config = WrapConfig(kQueueSize);
  config.message_data_size_bytes = sizeof(uint64_t);
  QueueMemory memory(config);
  absl::StatusOr<LocklessQueue> queue =
      LocklessQueue::Attach(memory.data(), memory.size_bytes(), config);
  ASSERT_TRUE(queue.ok()) << queue.status();
  absl::StatusOr<Sender> sender = queue->MakeSender();
  ASSERT_TRUE(sender.ok()) << sender.status();
  const uint32_t max_index = MaxIndex(kQueueSize);
  const uint64_t num_sends = FLAGS_wrap_full_messages != 0
                                 ? FLAGS_wrap_full_messages
                                 : uint64_t{max_index} + 1000;
  if (FLAGS_wrap_full_messages == 0) {
    ASSERT_GT(num_sends, uint64_t{1} << 32);
  }
  std::printf("WrapFullTest: %llu sends, counter wraps at %u\n",
              static_cast<unsigned long long>(num_sends), max_index);

  // Reads back the ring after `sent` sends: the last kQueueSize GOOD with
  // their send numbers, the one before TOO_OLD, the next NOTHING_NEW.
  auto check_ring = [&](uint64_t sent) {
    const QueueIndex zero = QueueIndex::Zero(kQueueSize);
    for (uint64_t back = 0; back <= kQueueSize + 1; ++back) {
      // position = sent - back: back 0 is the next (unsent) message.
      if (back > sent) break;
      const uint64_t position = sent - back;
      const QueueIndex q =
          zero.IncrementBy(static_cast<uint32_t>(position % max_index));
      MessageInfo info;
      uint64_t payload = ~uint64_t{0};
      const ReadResult result = queue->Read(q, &info, &payload, sizeof(payload));
      const ReadResult expected = back == 0              ? ReadResult::kNothingNew
                                  : back <= kQueueSize ? ReadResult::kGood
                                                       : ReadResult::kTooOld;
      ASSERT_EQ(ReadResultName(result), ReadResultName(expected))
          << "message " << position << " at " << q.DebugString() << " after "
          << sent << " sends";
      if (expected == ReadResult::kGood) {
        ASSERT_EQ(payload, position) << q.DebugString();
        ASSERT_EQ(info.queue_index, q);
      }
    }
  };

  uint32_t expected = 0;  // raw index of the next send
  for (uint64_t k = 0; k < num_sends; ++k) {
    MessageInfo info;
    if (sender->Send(&k, sizeof(k), &info) != SendResult::kOk ||
        info.queue_index.index() != expected ||
        queue->LatestQueueIndex().index() != expected) {
      FAIL() << "send " << k << ": expected index " << expected << ", Send "
             << "reported " << info.queue_index.DebugString()
             << ", LatestQueueIndex() " << queue->LatestQueueIndex().DebugString();
    }
    expected = expected + 1 == max_index ? 0 : expected + 1;
    const uint64_t sent = k + 1;
    const bool near_wrap =
        sent + kQueueSize + 2 >= max_index && sent <= uint64_t{max_index} + 2 * kQueueSize + 2;
    if (near_wrap || sent % (uint64_t{1} << 20) == 0 || sent == num_sends) {
      check_ring(sent);
      if (HasFatalFailure()) return;
    }
    if (sent % (uint64_t{1} << 28) == 0) {
      std::printf("WrapFullTest: %llu sends\n",
                  static_cast<unsigned long long>(sent));
      std::fflush(stdout);
    }
  }
}

}  // namespace
}  // namespace testing
}  // namespace lockless

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  ::gflags::ParseCommandLineFlags(&argc, &argv, /*remove_flags=*/true);
  return RUN_ALL_TESTS();
}
