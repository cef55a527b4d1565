// The per-channel rate limit (QueueConfig::min_message_age_ns): a send that
// would overwrite a message younger than the limit returns kTooFast and
// publishes nothing. No wall-clock assumption: the limit is an hour, so a
// message sent during the test is certainly too young, and a message is made
// old by rewriting its send time in the region.
#include <cstdint>
#include <cstring>

#include "absl/status/statusor.h"
#include "gtest/gtest.h"
#include "ipc/internal/queue_layout.h"
#include "ipc/lockless_queue.h"
#include "ipc/queue_config.h"
#include "testing/queue_memory.h"

namespace lockless {
namespace {

using ::lockless::testing::QueueMemory;

constexpr uint64_t kHourNs = uint64_t{3600} * 1000 * 1000 * 1000;

QueueConfig LimitedConfig(uint64_t min_message_age_ns) {
  QueueConfig config;
  config.num_watchers = 0;
  config.num_senders = 2;
  config.queue_size = 3;
  config.message_data_size_bytes = 16;
  config.min_message_age_ns = min_message_age_ns;
  return config;
}

uint64_t ReadValue(const LocklessQueue& queue, uint32_t q, ReadResult* result) {
  uint64_t value = ~uint64_t{0};
  MessageInfo info;
  *result = queue.Read(queue.MakeQueueIndex(q), &info, &value, sizeof(value));
  return value;
}

// Sets the send time of the message published at `q` to an hour and a
// second before it was sent: old enough for the limit.
void AgeMessage(const LocklessQueue& queue, uint32_t q) {
  const internal::RegionView& region = queue.region();
  const QueueIndex index = queue.MakeQueueIndex(q);
  const Index entry = region.ring(index.Wrapped())->Load();
  ASSERT_TRUE(entry.IsPlausible(index));
  internal::MessageHeader& header =
      region.message(entry.message_index())->header;
  header.monotonic_sent_time_ns.fetch_sub(
      static_cast<int64_t>(kHourNs) + 1'000'000'000);
}

TEST(RateLimitTest, SendThatWouldOverwriteAYoungMessageIsRefused) {
  const QueueConfig config = LimitedConfig(kHourNs);
  QueueMemory memory(config);
  LocklessQueue queue =
      *LocklessQueue::Attach(memory.data(), memory.size_bytes(), config);
  absl::StatusOr<Sender> sender = queue.MakeSender();
  ASSERT_TRUE(sender.ok()) << sender.status();
  // The first lap overwrites nothing: no limit applies.
  for (uint64_t i = 0; i < 3; ++i) {
    ASSERT_EQ(sender->Send(&i, sizeof(i)), SendResult::kOk) << i;
  }
  const uint64_t refused = 42;
  MessageInfo info;
  info.length = 7;
  EXPECT_EQ(SendResultName(sender->Send(&refused, sizeof(refused), &info)),
            SendResultName(SendResult::kTooFast));
  EXPECT_EQ(info.length, 7u) << "a refused send filled in its info";
  // Nothing was published: the ring still holds 0, 1, 2.
  EXPECT_EQ(queue.LatestQueueIndex(), queue.MakeQueueIndex(2));
  for (uint32_t q = 0; q < 3; ++q) {
    ReadResult result;
    EXPECT_EQ(ReadValue(queue, q, &result), q);
    EXPECT_EQ(result, ReadResult::kGood) << q;
  }
  ReadResult result;
  ReadValue(queue, 3, &result);
  EXPECT_EQ(result, ReadResult::kNothingNew);
  // The payload is still in the scratch buffer: the zero-copy retry sends it.
  uint64_t scratch = 0;
  std::memcpy(&scratch, sender->data(), sizeof(scratch));
  EXPECT_EQ(scratch, refused);
  EXPECT_EQ(sender->Send(sizeof(refused)), SendResult::kTooFast);

  // Once the message it replaces is old enough, the same send goes through,
  // and the next one is judged by the next message (still young).
  AgeMessage(queue, 0);
  ASSERT_EQ(sender->Send(sizeof(refused), &info), SendResult::kOk);
  EXPECT_EQ(info.queue_index, queue.MakeQueueIndex(3));
  EXPECT_EQ(ReadValue(queue, 3, &result), refused);
  EXPECT_EQ(result, ReadResult::kGood);
  ReadValue(queue, 0, &result);
  EXPECT_EQ(result, ReadResult::kTooOld);
  const uint64_t next = 43;
  EXPECT_EQ(sender->Send(&next, sizeof(next)), SendResult::kTooFast);
}

TEST(RateLimitTest, EverySenderIsLimited) {
  const QueueConfig config = LimitedConfig(kHourNs);
  QueueMemory memory(config);
  LocklessQueue queue =
      *LocklessQueue::Attach(memory.data(), memory.size_bytes(), config);
  absl::StatusOr<Sender> first = queue.MakeSender();
  absl::StatusOr<Sender> second = queue.MakeSender();
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_TRUE(second.ok()) << second.status();
  const uint64_t value = 1;
  ASSERT_EQ(first->Send(&value, sizeof(value)), SendResult::kOk);
  ASSERT_EQ(second->Send(&value, sizeof(value)), SendResult::kOk);
  ASSERT_EQ(first->Send(&value, sizeof(value)), SendResult::kOk);
  EXPECT_EQ(second->Send(&value, sizeof(value)), SendResult::kTooFast);
  EXPECT_EQ(first->Send(&value, sizeof(value)), SendResult::kTooFast);
  EXPECT_EQ(queue.LatestQueueIndex(), queue.MakeQueueIndex(2));
}

TEST(RateLimitTest, NoLimitOverwritesFreely) {
  const QueueConfig config = LimitedConfig(0);
  QueueMemory memory(config);
  LocklessQueue queue =
      *LocklessQueue::Attach(memory.data(), memory.size_bytes(), config);
  absl::StatusOr<Sender> sender = queue.MakeSender();
  ASSERT_TRUE(sender.ok()) << sender.status();
  for (uint64_t i = 0; i < 10; ++i) {
    ASSERT_EQ(sender->Send(&i, sizeof(i)), SendResult::kOk) << i;
  }
}

TEST(RateLimitTest, LimitIsPartOfTheConfiguration) {
  const QueueConfig limited = LimitedConfig(kHourNs);
  QueueMemory memory(limited);
  ASSERT_TRUE(
      LocklessQueue::Attach(memory.data(), memory.size_bytes(), limited).ok());
  const absl::StatusOr<LocklessQueue> other = LocklessQueue::Attach(
      memory.data(), memory.size_bytes(), LimitedConfig(0));
  ASSERT_EQ(other.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(other.status().message().find("min_message_age_ns: 0"),
            std::string::npos)
      << other.status();
  EXPECT_NE(other.status().message().find("min_message_age_ns: 3600000000000"),
            std::string::npos)
      << other.status();

  EXPECT_EQ(ValidateConfig(LimitedConfig(kMaxMinMessageAgeNs)),
            absl::OkStatus());
  EXPECT_EQ(ValidateConfig(LimitedConfig(kMaxMinMessageAgeNs + 1)).code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace lockless
