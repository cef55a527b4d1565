// The forwarded path against plain DDS, same payload, same QoS, loopback:
//   plain DDS:  publisher process --DDS--> subscriber process
//   bridged:    producer -> channel A -> bridge A --DDS--> bridge B ->
//               channel B -> consumer   (two bridge processes)
// Latency: paced messages (--rate_hz), send-to-receive on CLOCK_REALTIME,
// p50/p99/max. Throughput: a burst of --burst messages as fast as the
// sender can go, messages per second until the last one arrives (reliable,
// history deep enough for the whole burst, so nothing is dropped).
//
//   ./bazelw run -c opt //tools/bridge:bridge_benchmark
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gflags/gflags.h"
#include "ipc/lockless_queue.h"
#include "ipc/shm_channel.h"
#include "sync/futex.h"
#include "tools/bridge/bridge_process.h"
#include "tools/bridge/bridge_sample.h"
#include "tools/bridge/dds_config.h"

DEFINE_int32(payload_bytes, 64, "Payload size (>= 16).");
DEFINE_int32(messages, 2000, "Paced messages for the latency figures.");
DEFINE_int32(rate_hz, 1000, "Pace of the latency run.");
DEFINE_int32(burst, 20000, "Messages in the throughput burst.");

namespace lockless::bridge {
namespace {

constexpr uint32_t kPlainDomain = 181;
constexpr uint32_t kBridgedDomain = 182;

int64_t RealtimeNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Payload: [sequence number][realtime send ns][filler].
void Stamp(std::vector<uint8_t>* payload, int64_t sequence) {
  const int64_t now = RealtimeNs();
  std::memcpy(payload->data(), &sequence, 8);
  std::memcpy(payload->data() + 8, &now, 8);
}
void Unstamp(const uint8_t* payload, int64_t* sequence, int64_t* sent) {
  std::memcpy(sequence, payload, 8);
  std::memcpy(sent, payload + 8, 8);
}

struct Figures {
  std::vector<int64_t> latencies;
  double burst_seconds = 0;
};

void Print(const char* name, Figures& f) {
  std::sort(f.latencies.begin(), f.latencies.end());
  auto at = [&](double p) {
    if (f.latencies.empty()) return 0.0;
    const size_t i = std::min(f.latencies.size() - 1,
                              static_cast<size_t>(p * f.latencies.size()));
    return f.latencies[i] / 1000.0;
  };
  std::printf(
      "%-10s latency p50 %7.1f us  p99 %7.1f us  max %8.1f us "
      "(n=%zu)   burst %d msgs in %.3f s = %.0f msg/s\n",
      name, at(0.5), at(0.99),
      f.latencies.empty() ? 0.0 : f.latencies.back() / 1000.0,
      f.latencies.size(), FLAGS_burst, f.burst_seconds,
      FLAGS_burst / f.burst_seconds);
}

void Pace(int64_t* next) {
  *next += 1'000'000'000 / FLAGS_rate_hz;
  const int64_t now = MonotonicNowNs();
  if (*next > now) usleep(static_cast<useconds_t>((*next - now) / 1000));
}

dds_qos_t* Qos(const std::string& partition) {
  const int32_t depth = std::max(FLAGS_burst, FLAGS_messages) + 16;
  dds_qos_t* qos = dds_create_qos();
  dds_qset_reliability(qos, DDS_RELIABILITY_RELIABLE, DDS_SECS(1));
  dds_qset_durability(qos, DDS_DURABILITY_TRANSIENT_LOCAL);
  dds_qset_durability_service(qos, 0, DDS_HISTORY_KEEP_LAST, depth,
                              DDS_LENGTH_UNLIMITED, DDS_LENGTH_UNLIMITED,
                              DDS_LENGTH_UNLIMITED);
  dds_qset_history(qos, DDS_HISTORY_KEEP_LAST, depth);
  dds_qset_partition1(qos, partition.c_str());
  return qos;
}

// ---- plain DDS ----
void PlainPublisher(const std::string& partition) {
  DdsSettings settings;
  settings.domain_id = kPlainDomain;
  const dds_entity_t participant = *CreateParticipant(settings);
  dds_qos_t* qos = Qos(partition);
  const dds_entity_t topic = dds_create_topic(
      participant, &lockless_bridge_Sample_desc, "bench", nullptr, nullptr);
  const dds_entity_t publisher =
      dds_create_publisher(participant, qos, nullptr);
  const dds_entity_t writer = dds_create_writer(publisher, topic, qos, nullptr);
  dds_delete_qos(qos);
  // Wait for the subscriber to match (a benchmark may poll).
  for (;;) {
    dds_publication_matched_status_t status;
    dds_get_publication_matched_status(writer, &status);
    if (status.current_count > 0) break;
    usleep(1000);
  }
  std::vector<uint8_t> payload(FLAGS_payload_bytes);
  lockless_bridge_Sample sample{};
  sample.origin = const_cast<char*>("bench");
  sample.host = const_cast<char*>("bench");
  sample.payload._buffer = payload.data();
  sample.payload._length = sample.payload._maximum =
      static_cast<uint32_t>(payload.size());
  int64_t next = MonotonicNowNs();
  for (int i = 0; i < FLAGS_messages; ++i) {
    Stamp(&payload, i);
    dds_write(writer, &sample);
    Pace(&next);
  }
  for (int i = 0; i < FLAGS_burst; ++i) {
    Stamp(&payload, FLAGS_messages + i);
    dds_write(writer, &sample);
  }
  // Stay until the parent has everything (it kills us).
  pause();
}

Figures PlainDds() {
  const std::string partition = absl::StrCat("bench-", getpid());
  const pid_t child = fork();
  if (child == 0) {
    PlainPublisher(partition);
    _exit(0);
  }
  DdsSettings settings;
  settings.domain_id = kPlainDomain;
  const dds_entity_t participant = *CreateParticipant(settings);
  dds_qos_t* qos = Qos(partition);
  const dds_entity_t topic = dds_create_topic(
      participant, &lockless_bridge_Sample_desc, "bench", nullptr, nullptr);
  const dds_entity_t subscriber =
      dds_create_subscriber(participant, qos, nullptr);
  const dds_entity_t reader =
      dds_create_reader(subscriber, topic, qos, nullptr);
  dds_delete_qos(qos);
  const dds_entity_t waitset = dds_create_waitset(participant);
  dds_waitset_attach(waitset, dds_create_readcondition(reader, DDS_ANY_STATE),
                     0);
  Figures figures;
  const int total = FLAGS_messages + FLAGS_burst;
  int received = 0;
  int64_t burst_start = 0;
  while (received < total) {
    dds_waitset_wait(waitset, nullptr, 0, DDS_SECS(1));
    void* samples[64] = {};
    dds_sample_info_t infos[64];
    const int n = dds_take(reader, samples, infos, 64, 64);
    for (int i = 0; i < n; ++i) {
      if (!infos[i].valid_data) continue;
      const auto* s = static_cast<const lockless_bridge_Sample*>(samples[i]);
      int64_t sequence, sent;
      Unstamp(s->payload._buffer, &sequence, &sent);
      if (sequence < FLAGS_messages) {
        figures.latencies.push_back(RealtimeNs() - sent);
      } else if (sequence == FLAGS_messages) {
        burst_start = sent;
      }
      ++received;
    }
    if (n > 0) dds_return_loan(reader, samples, n);
  }
  figures.burst_seconds = (RealtimeNs() - burst_start) / 1e9;
  kill(child, SIGKILL);
  waitpid(child, nullptr, 0);
  dds_delete(participant);
  return figures;
}

// ---- bridged ----
Figures Bridged() {
  const std::string base = absl::StrCat("/tmp/bridge_benchmark.", getpid());
  const std::string dir_a = base + "/a", dir_b = base + "/b";
  std::filesystem::create_directories(dir_a);
  std::filesystem::create_directories(dir_b);
  QueueConfig config;
  config.queue_size = 1;
  while (config.queue_size < static_cast<uint32_t>(FLAGS_burst + 16)) {
    config.queue_size *= 2;
  }
  config.message_data_size_bytes = FLAGS_payload_bytes;
  config.num_senders = 4;
  config.num_watchers = 4;
  const int depth = std::max(FLAGS_burst, FLAGS_messages) + 16;
  const std::string binary = RunfilePath("tools/bridge/bridge");
  BridgeProcess bridge_a(
      binary, dir_a, dir_a + "/.bridge", kBridgedDomain, "bench-a",
      absl::StrCat("export bench queue_size=", config.queue_size,
                   " message_size=", FLAGS_payload_bytes,
                   " senders=4 watchers=4 reliable depth=", depth, "\n"));
  BridgeProcess bridge_b(
      binary, dir_b, dir_b + "/.bridge", kBridgedDomain, "bench-b",
      absl::StrCat("import bench reliable depth=", depth, "\n"));
  bridge_b.SetPartition(bridge_a.partition());
  Figures figures;
  if (!bridge_a.Start().ok() || !bridge_b.Start().ok()) {
    std::fprintf(stderr, "bridges did not start\n");
    return figures;
  }
  ChannelOptions options_a, options_b;
  options_a.directory = dir_a;
  options_b.directory = dir_b;
  // The consumer creates B's channel itself (same configuration as the
  // importer will use) so it can wait with a Waiter from the start.
  Channel channel_a = *Channel::OpenOrCreate("bench", config, options_a);
  Channel channel_b = *Channel::OpenOrCreate("bench", config, options_b);
  Sender sender = *channel_a.queue().MakeSender();
  std::vector<uint8_t> payload(FLAGS_payload_bytes);
  const int total = FLAGS_messages + FLAGS_burst;
  int64_t burst_start = 0;
  std::thread consumer([&] {
    Waiter waiter = *channel_b.queue().MakeWaiter();
    QueueIndex next = QueueIndex::Zero(config.queue_size);
    std::vector<uint8_t> buffer(FLAGS_payload_bytes);
    for (int received = 0; received < total;) {
      (void)waiter.Wait(next, MonotonicNowNs() + 1'000'000'000);
      MessageInfo info;
      while (channel_b.queue().Read(next, &info, buffer.data(),
                                    buffer.size()) == ReadResult::kGood) {
        int64_t sequence, sent;
        Unstamp(buffer.data(), &sequence, &sent);
        if (sequence < FLAGS_messages) {
          figures.latencies.push_back(RealtimeNs() - sent);
        }
        ++received;
        next = next.Increment();
      }
    }
    figures.burst_seconds = (RealtimeNs() - burst_start) / 1e9;
  });
  int64_t next = MonotonicNowNs();
  for (int i = 0; i < FLAGS_messages; ++i) {
    Stamp(&payload, i);
    (void)sender.Send(payload.data(), payload.size());
    Pace(&next);
  }
  burst_start = RealtimeNs();
  for (int i = 0; i < FLAGS_burst; ++i) {
    Stamp(&payload, FLAGS_messages + i);
    (void)sender.Send(payload.data(), payload.size());
  }
  consumer.join();
  const std::string stats_a = bridge_a.Stop();
  const std::string stats_b = bridge_b.Stop();
  std::printf("%s%s", stats_a.c_str(), stats_b.c_str());
  std::filesystem::remove_all(base);
  return figures;
}

}  // namespace
}  // namespace lockless::bridge

int main(int argc, char** argv) {
  gflags::ParseCommandLineFlags(&argc, &argv, true);
  if (FLAGS_payload_bytes < 16 || FLAGS_rate_hz <= 0 || FLAGS_burst <= 0) {
    std::fprintf(stderr, "bad flags\n");
    return 2;
  }
  std::printf(
      "payload %d bytes, %d paced messages at %d Hz, burst of %d; "
      "loopback, reliable\n",
      FLAGS_payload_bytes, FLAGS_messages, FLAGS_rate_hz, FLAGS_burst);
  lockless::bridge::Figures plain = lockless::bridge::PlainDds();
  lockless::bridge::Figures bridged = lockless::bridge::Bridged();
  lockless::bridge::Print("plain DDS", plain);
  lockless::bridge::Print("bridged", bridged);
  return 0;
}
