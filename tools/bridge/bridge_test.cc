// End to end on one host: two channel directories ("machines"), two bridge
// processes on the loopback interface. Waits are bounded and wait for the
// condition itself (a message, a file, a line), never for time.
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "ipc/lockless_queue.h"
#include "ipc/shm_channel.h"
#include "sync/futex.h"
#include "tools/bridge/bridge_process.h"
#include "tools/bridge/bridge_sample.h"
#include "tools/bridge/dds_config.h"
#include "tools/bridge/forward_record.h"

namespace lockless::bridge {
namespace {

constexpr int64_t kDeadlineNs = 60'000'000'000;  // generous: a loaded 2-core CI

std::string MakeTempDir(const std::string& tag) {
  const char* base = getenv("TEST_TMPDIR");
  std::string pattern = absl::StrCat(base ? base : "/tmp", "/", tag, ".XXXXXX");
  char* made = mkdtemp(pattern.data());
  EXPECT_NE(made, nullptr);
  return pattern;
}

struct Machine {
  std::string channels;
  std::string state;
  explicit Machine(const std::string& tag)
      : channels(MakeTempDir(tag)), state(channels + "/.bridge") {}
  ChannelOptions options() const {
    ChannelOptions o;
    o.directory = channels;
    return o;
  }
};

QueueConfig TestConfig() {
  QueueConfig config;
  config.queue_size = 1024;
  config.message_data_size_bytes = 64;
  config.num_senders = 4;
  config.num_watchers = 4;
  return config;
}

std::string ExportLine(const std::string& name) {
  return absl::StrCat("export ", name,
                      " queue_size=1024 message_size=64 senders=4 watchers=4 "
                      "reliable depth=1024\n");
}
std::string ImportLine(const std::string& name) {
  return absl::StrCat("import ", name, " reliable depth=1024\n");
}

std::string BridgeBinary() { return RunfilePath("tools/bridge/bridge"); }

// Reads a channel of another "machine" as it fills.
class Collector {
 public:
  Collector(const Machine& machine, const std::string& name)
      : machine_(machine), name_(name) {}

  // Waits (bounded) until `predicate(messages)` holds; false on deadline.
  template <typename Predicate>
  bool WaitFor(Predicate predicate) {
    const int64_t deadline = MonotonicNowNs() + kDeadlineNs;
    while (MonotonicNowNs() < deadline) {
      if (!channel_.has_value()) {
        // The importer creates the channel with its first sample.
        absl::StatusOr<ReadOnlyChannel> channel =
            ReadOnlyChannel::Open(name_, TestConfig(), machine_.options());
        if (!channel.ok()) {
          usleep(1000);  // polling for the file to appear (bounded)
          continue;
        }
        channel_.emplace(std::move(*channel));
        next_ = QueueIndex::Zero(TestConfig().queue_size);
      }
      ReadAvailable();
      if (predicate(messages_)) return true;
      (void)channel_->Wait(next_, MonotonicNowNs() + 100'000'000);
    }
    return false;
  }

  const std::vector<std::string>& messages() const { return messages_; }
  const std::vector<QueueIndex>& indices() const { return indices_; }

 private:
  void ReadAvailable() {
    for (;;) {
      char buffer[64];
      MessageInfo info;
      const ReadResult result =
          channel_->Read(next_, &info, buffer, sizeof(buffer));
      if (result == ReadResult::kNothingNew) return;
      ASSERT_EQ(result, ReadResult::kGood) << "reader fell behind";
      messages_.emplace_back(buffer, info.length);
      indices_.push_back(next_);
      next_ = next_.Increment();
    }
  }

  const Machine& machine_;
  std::string name_;
  std::optional<ReadOnlyChannel> channel_;
  QueueIndex next_;
  std::vector<std::string> messages_;
  std::vector<QueueIndex> indices_;
};

class Producer {
 public:
  Producer(const Machine& machine, const std::string& name) {
    absl::StatusOr<Channel> channel =
        Channel::OpenOrCreate(name, TestConfig(), machine.options());
    EXPECT_TRUE(channel.ok()) << channel.status();
    channel_.emplace(std::move(*channel));
    absl::StatusOr<Sender> sender = channel_->queue().MakeSender();
    EXPECT_TRUE(sender.ok()) << sender.status();
    sender_.emplace(std::move(*sender));
  }
  void Send(const std::string& text) {
    ASSERT_EQ(sender_->Send(text.data(), text.size()), SendResult::kOk);
  }

 private:
  std::optional<Channel> channel_;
  std::optional<Sender> sender_;
};

size_t Count(const std::vector<std::string>& messages, const std::string& m) {
  return static_cast<size_t>(std::count(messages.begin(), messages.end(), m));
}

// Domains per test (Bazel runs the test targets of the repo in parallel;
// these are unique within this binary, and the range is this binary's).
constexpr uint32_t kDomainReliable = 151;
constexpr uint32_t kDomainMutual = 152;
constexpr uint32_t kDomainRestart = 153;
constexpr uint32_t kDomainMalformed = 154;

TEST(BridgeTest, ForwardsEveryMessageInOrderUnderReliableQos) {
  Machine a("a"), b("b");
  BridgeProcess bridge_a(BridgeBinary(), a.channels, a.state, kDomainReliable,
                         "machine-a", ExportLine("chat"));
  BridgeProcess bridge_b(BridgeBinary(), b.channels, b.state, kDomainReliable,
                         "machine-b", ImportLine("chat"));
  bridge_b.SetPartition(bridge_a.partition());
  ASSERT_TRUE(bridge_a.Start().ok());
  ASSERT_TRUE(bridge_b.Start().ok());
  Producer producer(a, "chat");
  constexpr int kMessages = 500;
  for (int i = 0; i < kMessages; ++i) producer.Send(absl::StrCat("m", i));
  Collector collector(b, "chat");
  if (!collector.WaitFor([](const std::vector<std::string>& m) {
        return m.size() >= kMessages;
      })) {
    FAIL() << "received " << collector.messages().size() << "\n"
           << bridge_a.Stop() << bridge_b.Stop();
  }
  ASSERT_EQ(collector.messages().size(), static_cast<size_t>(kMessages));
  for (int i = 0; i < kMessages; ++i) {
    EXPECT_EQ(collector.messages()[i], absl::StrCat("m", i));
  }
  // Every message on B is marked as forwarded, with its origin.
  absl::StatusOr<ReadOnlyChannel> records = ReadOnlyChannel::Open(
      ForwardedChannelName("chat"), ForwardedChannelConfig(TestConfig()),
      b.options());
  ASSERT_TRUE(records.ok()) << records.status();
  const std::optional<ForwardRecord> last =
      LookUpForwarded(*records, collector.indices().back());
  // The record follows its message: the last one may still be on its way.
  if (last.has_value()) {
    EXPECT_EQ(last->origin_queue_index, static_cast<uint32_t>(kMessages - 1));
  }
  const std::optional<ForwardRecord> first =
      LookUpForwarded(*records, collector.indices().front());
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(first->origin_queue_index, 0u);
  EXPECT_GT(first->origin_realtime_sent_ns, 0);

  const std::string stats_a = bridge_a.Stop();
  const std::string stats_b = bridge_b.Stop();
  EXPECT_NE(stats_a.find("export chat: forwarded 500, overwritten before "
                         "forwarded 0"),
            std::string::npos)
      << stats_a;
  EXPECT_NE(stats_b.find("import chat: forwarded 500, lost in transport 0, "
                         "lost at origin (overwritten) 0, duplicates dropped "
                         "0, malformed dropped 0"),
            std::string::npos)
      << stats_b;
}

TEST(BridgeTest, MutualExportImportDoesNotLoop) {
  Machine a("a"), b("b");
  const std::string both = ExportLine("chat") + ImportLine("chat");
  BridgeProcess bridge_a(BridgeBinary(), a.channels, a.state, kDomainMutual,
                         "machine-a", both);
  BridgeProcess bridge_b(BridgeBinary(), b.channels, b.state, kDomainMutual,
                         "machine-b", both);
  bridge_b.SetPartition(bridge_a.partition());
  ASSERT_TRUE(bridge_a.Start().ok());
  ASSERT_TRUE(bridge_b.Start().ok());
  Producer producer_a(a, "chat"), producer_b(b, "chat");
  Collector on_a(a, "chat"), on_b(b, "chat");
  constexpr int kMessages = 100;
  for (int i = 0; i < kMessages; ++i) {
    producer_a.Send(absl::StrCat("a", i));
    producer_b.Send(absl::StrCat("b", i));
  }
  // Round 1: each side's marker reaches the other.
  producer_a.Send("marker-a");
  producer_b.Send("marker-b");
  auto has = [](const std::string& m) {
    return [m](const std::vector<std::string>& all) {
      return Count(all, m) > 0;
    };
  };
  ASSERT_TRUE(on_a.WaitFor(has("marker-b")));
  ASSERT_TRUE(on_b.WaitFor(has("marker-a")));
  // Round 2: sent after each side holds the other's marker, so a
  // re-export of anything before (including the markers) would reach the
  // other side before these.
  producer_a.Send("final-a");
  producer_b.Send("final-b");
  ASSERT_TRUE(on_a.WaitFor(has("final-b")));
  ASSERT_TRUE(on_b.WaitFor(has("final-a")));
  for (const Collector* side : {&on_a, &on_b}) {
    for (int i = 0; i < kMessages; ++i) {
      EXPECT_EQ(Count(side->messages(), absl::StrCat("a", i)), 1u);
      EXPECT_EQ(Count(side->messages(), absl::StrCat("b", i)), 1u);
    }
    EXPECT_EQ(Count(side->messages(), "marker-a"), 1u);
    EXPECT_EQ(Count(side->messages(), "marker-b"), 1u);
  }
  // B's ring: its own 102 and A's 102, nothing more up to final-a.
  const auto& b_messages = on_b.messages();
  const size_t final_a =
      std::find(b_messages.begin(), b_messages.end(), "final-a") -
      b_messages.begin();
  std::set<std::string> distinct(b_messages.begin(),
                                 b_messages.begin() + final_a + 1);
  EXPECT_EQ(distinct.size(), final_a + 1) << "a message arrived twice";
  bridge_a.Stop();
  bridge_b.Stop();
}

}  // namespace
}  // namespace lockless::bridge
