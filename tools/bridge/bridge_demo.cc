// bridge_demo: two "machines" on this host (two channel directories), a
// bridge each on the loopback interface, a producer on A and a consumer on
// B. Mid-stream the demo SIGKILLs B's bridge and restarts it, then A's.
// Prints the end-to-end latency (from the forward records: B's receive time
// minus A's send time) and what was lost or duplicated, and why.
//
//   ./bazelw run //tools:bridge_demo
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "ipc/lockless_queue.h"
#include "ipc/shm_channel.h"
#include "sync/futex.h"
#include "tools/bridge/bridge_process.h"
#include "tools/bridge/bridge_stats.h"
#include "tools/bridge/forward_record.h"

namespace lockless::bridge {
namespace {

constexpr int kMessages = 3000;
constexpr uint32_t kDomain = 171;
constexpr int64_t kPeriodNs = 1'000'000;  // producer: 1 kHz

QueueConfig DemoConfig() {
  QueueConfig config;
  config.queue_size = 4096;
  config.message_data_size_bytes = 64;
  config.num_senders = 4;
  config.num_watchers = 4;
  return config;
}

std::string MakeDir(const char* tag) {
  std::string pattern = absl::StrCat("/tmp/bridge_demo_", tag, ".XXXXXX");
  if (mkdtemp(pattern.data()) == nullptr) {
    std::perror("mkdtemp");
    exit(1);
  }
  return pattern;
}

int Run() {
  const std::string dir_a = MakeDir("a"), dir_b = MakeDir("b");
  const std::string binary = RunfilePath("tools/bridge/bridge");
  const std::string export_line =
      "export telemetry queue_size=4096 message_size=64 senders=4 "
      "watchers=4 reliable depth=4096\n";
  BridgeProcess bridge_a(binary, dir_a, dir_a + "/.bridge", kDomain,
                         "machine-a", export_line);
  BridgeProcess bridge_b(binary, dir_b, dir_b + "/.bridge", kDomain,
                         "machine-b", "import telemetry reliable depth=4096\n");
  bridge_b.SetPartition(bridge_a.partition());
  std::printf("machine A: %s  machine B: %s  (DDS domain %u, loopback only)\n",
              dir_a.c_str(), dir_b.c_str(), kDomain);
  for (BridgeProcess* bridge : {&bridge_a, &bridge_b}) {
    if (absl::Status status = bridge->Start(); !status.ok()) {
      std::fprintf(stderr, "%s\n", status.ToString().c_str());
      return 1;
    }
  }
  ChannelOptions options_a, options_b;
  options_a.directory = dir_a;
  options_b.directory = dir_b;
  absl::StatusOr<Channel> channel_a =
      Channel::OpenOrCreate("telemetry", DemoConfig(), options_a);
  if (!channel_a.ok()) return 1;
  absl::StatusOr<Sender> sender = channel_a->queue().MakeSender();
  if (!sender.ok()) return 1;

  std::string exit_a, exit_b;
  int64_t next_send = MonotonicNowNs();
  for (int i = 0; i < kMessages; ++i) {
    if (i == kMessages / 3) {
      std::printf("[%d sent] SIGKILL B's bridge (importer) and restart it\n",
                  i);
      bridge_b.Kill();
      if (!bridge_b.Start().ok()) return 1;
    }
    if (i == 2 * kMessages / 3) {
      std::printf("[%d sent] SIGKILL A's bridge (exporter) and restart it\n",
                  i);
      bridge_a.Kill();
      if (!bridge_a.Start().ok()) return 1;
    }
    const std::string text = absl::StrCat("t", i);
    if (sender->Send(text.data(), text.size()) != SendResult::kOk) return 1;
    next_send += kPeriodNs;
    const int64_t now = MonotonicNowNs();
    if (next_send > now)
      usleep(static_cast<useconds_t>((next_send - now) / 1000));
  }
  std::printf("[%d sent] waiting for B to receive the last message\n",
              kMessages);

  // Consumer on B: reads until the last message arrived (bounded).
  std::optional<ReadOnlyChannel> channel_b, records;
  const int64_t deadline = MonotonicNowNs() + 30'000'000'000;
  std::vector<std::string> received;
  std::vector<QueueIndex> indices;
  QueueIndex next = QueueIndex::Zero(DemoConfig().queue_size);
  const std::string last = absl::StrCat("t", kMessages - 1);
  while (MonotonicNowNs() < deadline) {
    if (!channel_b) {
      auto opened = ReadOnlyChannel::Open("telemetry", DemoConfig(), options_b);
      if (opened.ok())
        channel_b.emplace(std::move(*opened));
      else {
        usleep(1000);
        continue;
      }
    }
    char buffer[64];
    MessageInfo info;
    const ReadResult result =
        channel_b->Read(next, &info, buffer, sizeof(buffer));
    if (result == ReadResult::kGood) {
      received.emplace_back(buffer, info.length);
      indices.push_back(next);
      next = next.Increment();
      if (received.back() == last) break;
      continue;
    }
    (void)channel_b->Wait(next, MonotonicNowNs() + 100'000'000);
  }
  auto opened =
      ReadOnlyChannel::Open(ForwardedChannelName("telemetry"),
                            ForwardedChannelConfig(DemoConfig()), options_b);
  LatencyHistogram latency;
  if (opened.ok()) {
    records.emplace(std::move(*opened));
    for (const QueueIndex index : indices) {
      MessageInfo info;
      if (channel_b->Read(index, &info, nullptr, 0) != ReadResult::kGood)
        continue;
      const std::optional<ForwardRecord> record =
          LookUpForwarded(*records, index);
      if (!record) continue;
      const int64_t received_ns =
          std::chrono::duration_cast<std::chrono::nanoseconds>(
              info.realtime_sent_time.time_since_epoch())
              .count();
      latency.Add(received_ns - record->origin_realtime_sent_ns);
    }
  }
  exit_a = bridge_a.Stop();
  exit_b = bridge_b.Stop();

  std::map<std::string, int> copies;
  for (const std::string& m : received) ++copies[m];
  int missing = 0, duplicated = 0;
  for (int i = 0; i < kMessages; ++i) {
    const int n = copies[absl::StrCat("t", i)];
    if (n == 0) ++missing;
    if (n > 1) duplicated += n - 1;
  }
  bool in_order = true;
  int previous = -1;
  for (const std::string& m : received) {
    const int value = std::atoi(m.c_str() + 1);
    if (value < previous) in_order = false;
    previous = std::max(previous, value);
  }
  std::printf(
      "\nB received %zu messages: %d of %d distinct, %d missing, %d "
      "duplicated, %s\n",
      received.size(), kMessages - missing, kMessages, missing, duplicated,
      in_order ? "in order" : "OUT OF ORDER");
  std::printf(
      "end-to-end latency (A's Send to B's Send, realtime clock): "
      "p50 %.0f us, p99 %.0f us over %llu messages\n",
      latency.Percentile(50) / 1000.0, latency.Percentile(99) / 1000.0,
      static_cast<unsigned long long>(latency.count()));
  std::printf("\nwhy (the bridges' own accounts, last incarnations):\n%s%s",
              exit_a.c_str(), exit_b.c_str());
  std::printf(
      "\nA restarted importer drops what it had already delivered "
      "(\"duplicates dropped\"); at most one message per kill can arrive "
      "twice (Send done, record not yet written). A restarted exporter "
      "re-sends up to depth messages (dropped as duplicates by B) and "
      "resumes where it stopped, so nothing sent while it was down is lost "
      "while the ring still holds it.\n");
  channel_b.reset();
  records.reset();
  std::filesystem::remove_all(dir_a);
  std::filesystem::remove_all(dir_b);
  return (missing == 0 && duplicated <= 1 && in_order) ? 0 : 1;
}

}  // namespace
}  // namespace lockless::bridge

int main() { return lockless::bridge::Run(); }
