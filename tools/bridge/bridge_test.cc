// End to end on one host: two channel directories ("machines"), two bridge
// processes on the loopback interface. Waits are bounded and wait for the
// condition itself (a message, a file, a line), never for time.
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <deque>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <thread>
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
#include "tools/dump_lib.h"

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
  Collector(const Machine& machine, const std::string& name,
            const QueueConfig& config = TestConfig())
      : machine_(machine), name_(name), config_(config) {}

  // Waits (bounded) until `predicate(messages)` holds; false on deadline.
  template <typename Predicate>
  bool WaitFor(Predicate predicate) {
    const int64_t deadline = MonotonicNowNs() + kDeadlineNs;
    while (MonotonicNowNs() < deadline) {
      if (!channel_.has_value()) {
        // The importer creates the channel with its first sample.
        absl::StatusOr<ReadOnlyChannel> channel =
            ReadOnlyChannel::Open(name_, config_, machine_.options());
        if (!channel.ok()) {
          usleep(1000);  // polling for the file to appear (bounded)
          continue;
        }
        channel_.emplace(std::move(*channel));
        next_ = QueueIndex::Zero(config_.queue_size);
      }
      ReadAvailable();
      if (::testing::Test::HasFatalFailure()) return false;
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
  QueueConfig config_;
  std::optional<ReadOnlyChannel> channel_;
  QueueIndex next_;
  std::vector<std::string> messages_;
  std::vector<QueueIndex> indices_;
};

class Producer {
 public:
  Producer(const Machine& machine, const std::string& name,
           const QueueConfig& config = TestConfig()) {
    absl::StatusOr<Channel> channel =
        Channel::OpenOrCreate(name, config, machine.options());
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

auto HasMessage(const std::string& wanted) {
  return [wanted](const std::vector<std::string>& all) {
    return Count(all, wanted) > 0;
  };
}

// Domains per test (Bazel runs the test targets of the repo in parallel;
// these are unique within this binary, and the range is this binary's).
constexpr uint32_t kDomainReliable = 151;
constexpr uint32_t kDomainMutual = 152;
constexpr uint32_t kDomainRestart = 153;
constexpr uint32_t kDomainMalformed = 154;
constexpr uint32_t kDomainOverwrite = 155;
constexpr uint32_t kDomainBestEffort = 156;
constexpr uint32_t kDomainDump = 157;

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
  absl::StatusOr<ReadOnlyChannel> records =
      ReadOnlyChannel::Open(ForwardedChannelName("chat"),
                            ForwardedChannelConfig(TestConfig()), b.options());
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
    return
        [m](const std::vector<std::string>& all) { return Count(all, m) > 0; };
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

  // A restarted bridge of a mutual channel: its importer gets B's history
  // again (transient-local) and drops it, its exporter starts after the
  // newest message, so nothing it imported earlier goes back out.
  bridge_a.Kill();
  ASSERT_TRUE(bridge_a.Start().ok());
  producer_a.Send("restarted-a");
  producer_b.Send("restarted-b");
  ASSERT_TRUE(on_a.WaitFor(HasMessage("restarted-b")));
  ASSERT_TRUE(on_b.WaitFor(HasMessage("restarted-a")));
  producer_a.Send("final2-a");
  producer_b.Send("final2-b");
  ASSERT_TRUE(on_a.WaitFor(HasMessage("final2-b")));
  ASSERT_TRUE(on_b.WaitFor(HasMessage("final2-a")));
  const auto& b_after = on_b.messages();
  const size_t final2_a =
      std::find(b_after.begin(), b_after.end(), "final2-a") - b_after.begin();
  std::set<std::string> distinct_after(b_after.begin(),
                                       b_after.begin() + final2_a + 1);
  EXPECT_EQ(distinct_after.size(), final2_a + 1)
      << "a message came back after the restart";
  const auto& a_after = on_a.messages();
  std::set<std::string> distinct_a(a_after.begin(), a_after.end());
  EXPECT_LE(a_after.size() - distinct_a.size(), 1u)
      << "more duplicates on A than its one kill explains";
  bridge_a.Stop();
  bridge_b.Stop();
}

// The first occurrence of each message, in arrival order, must be m0, m1,
// ... (order kept, nothing missing); returns how many extra copies arrived.
size_t CheckCompleteInOrder(const std::vector<std::string>& messages,
                            int count) {
  std::set<std::string> seen;
  int expected = 0;
  size_t duplicates = 0;
  for (const std::string& m : messages) {
    if (!seen.insert(m).second) {
      ++duplicates;
      continue;
    }
    EXPECT_EQ(m, absl::StrCat("m", expected)) << "out of order or missing";
    ++expected;
  }
  EXPECT_EQ(expected, count);
  return duplicates;
}

TEST(BridgeTest, RestartOfEitherBridgeLosesNothingAndDuplicatesAtMostOne) {
  Machine a("a"), b("b");
  BridgeProcess bridge_a(BridgeBinary(), a.channels, a.state, kDomainRestart,
                         "machine-a", ExportLine("chat"));
  BridgeProcess bridge_b(BridgeBinary(), b.channels, b.state, kDomainRestart,
                         "machine-b", ImportLine("chat"));
  bridge_b.SetPartition(bridge_a.partition());
  ASSERT_TRUE(bridge_a.Start().ok());
  ASSERT_TRUE(bridge_b.Start().ok());
  Producer producer(a, "chat");
  Collector collector(b, "chat");
  int sent = 0;
  auto send = [&](int n) {
    for (int i = 0; i < n; ++i) producer.Send(absl::StrCat("m", sent++));
  };
  send(200);
  // The importer is killed while samples are arriving (mid-stream: the
  // kill lands wherever its thread is, possibly between a Send and its
  // record).
  ASSERT_TRUE(collector.WaitFor(HasMessage("m50")));
  bridge_b.Kill();
  send(200);
  ASSERT_TRUE(bridge_b.Start().ok());
  ASSERT_TRUE(collector.WaitFor(HasMessage(absl::StrCat("m", sent - 1))));
  // The exporter (the peer of B) is killed mid-stream and comes back.
  send(200);
  bridge_a.Kill();
  send(200);
  ASSERT_TRUE(bridge_a.Start().ok());
  ASSERT_TRUE(collector.WaitFor(HasMessage(absl::StrCat("m", sent - 1))));
  EXPECT_LE(CheckCompleteInOrder(collector.messages(), sent), 1u)
      << "more duplicates than the one kill of the importer explains";
  const std::string stats_b = bridge_b.Stop();
  // The restarted exporter re-sent its history; B dropped what it had.
  EXPECT_EQ(stats_b.find("duplicates dropped 0,"), std::string::npos)
      << stats_b;
  bridge_a.Stop();
}

TEST(BridgeTest, OverwrittenBeforeForwardedIsCountedAtBothEnds) {
  Machine a("a"), b("b");
  QueueConfig small = TestConfig();
  small.queue_size = 64;
  BridgeProcess bridge_a(
      BridgeBinary(), a.channels, a.state, kDomainOverwrite, "machine-a",
      "export chat queue_size=64 message_size=64 senders=4 watchers=4 "
      "depth=1024\n");
  BridgeProcess bridge_b(BridgeBinary(), b.channels, b.state, kDomainOverwrite,
                         "machine-b", ImportLine("chat"));
  bridge_b.SetPartition(bridge_a.partition());
  ASSERT_TRUE(bridge_a.Start().ok());
  ASSERT_TRUE(bridge_b.Start().ok());
  Producer producer(a, "chat", small);
  // The exporter cannot run while the producer laps the ring 3 times.
  ASSERT_TRUE(bridge_a.Pause().ok());
  for (int i = 0; i < 256; ++i) producer.Send(absl::StrCat("m", i));
  bridge_a.Resume();
  Collector collector(b, "chat", small);
  ASSERT_TRUE(collector.WaitFor(HasMessage("m255")));
  // Exactly the ring's 64 newest arrive, m192..m255, in order.
  ASSERT_EQ(collector.messages().size(), 64u);
  for (int i = 0; i < 64; ++i) {
    EXPECT_EQ(collector.messages()[i], absl::StrCat("m", 192 + i));
  }
  const std::string stats_a = bridge_a.Stop();
  const std::string stats_b = bridge_b.Stop();
  EXPECT_NE(stats_a.find("forwarded 64, overwritten before forwarded 192"),
            std::string::npos)
      << stats_a;
  EXPECT_NE(stats_b.find("lost at origin (overwritten) 192"), std::string::npos)
      << stats_b;
}

// A raw DDS writer (not a bridge) on the channel's topic.
class RawWriter {
 public:
  RawWriter(uint32_t domain, const std::string& partition,
            const std::string& channel) {
    DdsSettings settings;
    settings.domain_id = domain;
    absl::StatusOr<dds_entity_t> participant = CreateParticipant(settings);
    EXPECT_TRUE(participant.ok()) << participant.status();
    participant_ = *participant;
    dds_qos_t* qos = dds_create_qos();
    dds_qset_reliability(qos, DDS_RELIABILITY_RELIABLE, DDS_SECS(1));
    dds_qset_durability(qos, DDS_DURABILITY_TRANSIENT_LOCAL);
    dds_qset_durability_service(qos, 0, DDS_HISTORY_KEEP_LAST, 64,
                                DDS_LENGTH_UNLIMITED, DDS_LENGTH_UNLIMITED,
                                DDS_LENGTH_UNLIMITED);
    dds_qset_history(qos, DDS_HISTORY_KEEP_LAST, 64);
    dds_qset_partition1(qos, partition.c_str());
    const dds_entity_t topic =
        dds_create_topic(participant_, &lockless_bridge_Sample_desc,
                         TopicName(channel).c_str(), nullptr, nullptr);
    const dds_entity_t publisher =
        dds_create_publisher(participant_, qos, nullptr);
    writer_ = dds_create_writer(publisher, topic, qos, nullptr);
    dds_delete_qos(qos);
    EXPECT_GT(writer_, 0);
  }
  ~RawWriter() { dds_delete(participant_); }

  // A well-formed sample of TestConfig() carrying `text` (queue index q).
  lockless_bridge_Sample Good(const std::string& text, uint32_t q) {
    texts_.push_back(text);
    lockless_bridge_Sample s{};
    s.origin = const_cast<char*>("raw-writer");
    s.host = const_cast<char*>("test");
    s.incarnation = 1;
    s.sequence_number = q;
    s.channel_id = 7;
    s.queue_index = q;
    s.num_watchers = 4;
    s.num_senders = 4;
    s.queue_size = 1024;
    s.message_data_size_bytes = 64;
    s.payload._buffer = reinterpret_cast<uint8_t*>(texts_.back().data());
    s.payload._length = static_cast<uint32_t>(texts_.back().size());
    s.payload._maximum = s.payload._length;
    return s;
  }
  void Write(const lockless_bridge_Sample& sample) {
    ASSERT_EQ(dds_write(writer_, &sample), DDS_RETCODE_OK);
  }

 private:
  dds_entity_t participant_ = 0;
  dds_entity_t writer_ = 0;
  std::deque<std::string> texts_;
};

TEST(BridgeTest, MalformedSamplesAreCountedAndNeverSent) {
  Machine b("b");
  BridgeProcess bridge_b(BridgeBinary(), b.channels, b.state, kDomainMalformed,
                         "machine-b", ImportLine("chat"));
  ASSERT_TRUE(bridge_b.Start().ok());
  RawWriter raw(kDomainMalformed, bridge_b.partition(), "chat");
  raw.Write(raw.Good("first", 1));
  Collector collector(b, "chat");
  ASSERT_TRUE(collector.WaitFor(HasMessage("first")));

  lockless_bridge_Sample oversized = raw.Good(std::string(65, 'x'), 2);
  raw.Write(oversized);
  lockless_bridge_Sample bad_config = raw.Good("bad-config", 3);
  bad_config.queue_size = 0;
  raw.Write(bad_config);
  lockless_bridge_Sample no_origin = raw.Good("no-origin", 4);
  no_origin.origin = const_cast<char*>("");
  raw.Write(no_origin);
  lockless_bridge_Sample mismatch = raw.Good("mismatch", 5);
  mismatch.message_data_size_bytes = 128;  // not the local channel's
  raw.Write(mismatch);
  lockless_bridge_Sample too_big = raw.Good("too-big", 6);
  too_big.message_data_size_bytes = uint64_t{1} << 30;  // above the limit
  raw.Write(too_big);
  raw.Write(raw.Good("last", 7));
  ASSERT_TRUE(collector.WaitFor(HasMessage("last")));
  EXPECT_EQ(collector.messages(), (std::vector<std::string>{"first", "last"}));
  const std::string stats = bridge_b.Stop();
  EXPECT_NE(stats.find("forwarded 2,"), std::string::npos) << stats;
  EXPECT_NE(stats.find("malformed dropped 5,"), std::string::npos) << stats;
}

// Best effort: whatever DDS drops is counted, never silent. Between the
// first and the last message received, every message either arrived or is
// counted (lost in transport, or overwritten at the origin).
TEST(BridgeTest, BestEffortLossesAreCounted) {
  Machine a("a"), b("b");
  BridgeProcess bridge_a(
      BridgeBinary(), a.channels, a.state, kDomainBestEffort, "machine-a",
      "export chat queue_size=1024 message_size=64 senders=4 watchers=4 "
      "best_effort depth=16\n");
  BridgeProcess bridge_b(BridgeBinary(), b.channels, b.state, kDomainBestEffort,
                         "machine-b", "import chat best_effort depth=16\n");
  bridge_b.SetPartition(bridge_a.partition());
  ASSERT_TRUE(bridge_a.Start().ok());
  ASSERT_TRUE(bridge_b.Start().ok());
  // No history for late joiners: keep sending until B has 300 messages.
  std::atomic<bool> enough{false};
  std::atomic<int> sent{0};
  std::thread producer_thread([&] {
    Producer producer(a, "chat");  // its Sender belongs to this thread
    while (!enough.load()) {
      producer.Send(absl::StrCat("m", sent.load()));
      sent.fetch_add(1);
      usleep(100);  // pacing the producer, not synchronisation
    }
  });
  Collector collector(b, "chat");
  const bool got = collector.WaitFor(
      [](const std::vector<std::string>& m) { return m.size() >= 300; });
  enough.store(true);
  producer_thread.join();
  ASSERT_TRUE(got);
  const std::string stats_a = bridge_a.Stop();
  const std::string stats_b = bridge_b.Stop();
  // Everything B's bridge delivered, including what came after the 300th.
  ASSERT_TRUE(
      collector.WaitFor([](const std::vector<std::string>&) { return true; }));
  std::vector<int> numbers;
  for (const std::string& m : collector.messages()) {
    numbers.push_back(std::stoi(m.substr(1)));
  }
  for (size_t i = 1; i < numbers.size(); ++i) {
    ASSERT_LT(numbers[i - 1], numbers[i]) << "order or duplicate";
  }
  auto figure = [](const std::string& text, const std::string& label) {
    const size_t at = text.find(label);
    EXPECT_NE(at, std::string::npos) << label << " in " << text;
    return at == std::string::npos
               ? uint64_t{0}
               : std::stoull(text.substr(at + label.size()));
  };
  const uint64_t received = collector.messages().size();
  const uint64_t span =
      static_cast<uint64_t>(numbers.back() - numbers.front() + 1);
  const uint64_t lost = figure(stats_b, "lost in transport ");
  const uint64_t overwritten = figure(stats_a, "overwritten before forwarded ");
  EXPECT_EQ(figure(stats_b, "import chat: forwarded "), received);
  EXPECT_LE(received + lost, span);
  EXPECT_GE(received + lost + overwritten, span);
}

TEST(BridgeTest, DumpListShowsBridgedChannels) {
  Machine a("a"), b("b");
  BridgeProcess bridge_a(BridgeBinary(), a.channels, a.state, kDomainDump,
                         "machine-a", ExportLine("chat"));
  BridgeProcess bridge_b(BridgeBinary(), b.channels, b.state, kDomainDump,
                         "machine-b", ImportLine("chat"));
  bridge_b.SetPartition(bridge_a.partition());
  ASSERT_TRUE(bridge_a.Start().ok());
  ASSERT_TRUE(bridge_b.Start().ok());
  Producer producer(a, "chat");
  producer.Send("hello");
  Collector collector(b, "chat");
  ASSERT_TRUE(collector.WaitFor(HasMessage("hello")));
  auto list = [](const Machine& machine) {
    DumpOptions options;
    options.list = true;
    options.directory = machine.channels;
    std::string out, err;
    EXPECT_EQ(RunList(options, &out, &err), kDumpOk) << err;
    return out;
  };
  EXPECT_NE(list(a).find("bridged: exported (bridge running)"),
            std::string::npos)
      << list(a);
  EXPECT_NE(list(b).find("bridged: imported (bridge running)"),
            std::string::npos)
      << list(b);
  EXPECT_EQ(list(b).find(".bridge"), std::string::npos) << list(b);
  bridge_a.Stop();
  bridge_b.Stop();
  EXPECT_NE(list(a).find("bridged: exported (bridge not running)"),
            std::string::npos)
      << list(a);
}

}  // namespace
}  // namespace lockless::bridge
