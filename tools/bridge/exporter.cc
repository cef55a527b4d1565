// The export side of a channel: local ring -> DDS samples (bridge.h).
#include <sys/stat.h>

#include <cstdio>
#include <future>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "dds/dds.h"
#include "sync/futex.h"
#include "tools/bridge/bridge_sample.h"
#include "tools/bridge/channel_worker.h"
#include "tools/bridge/dds_config.h"

namespace lockless::bridge::internal {
namespace {

// Export state file words.
constexpr size_t kExportMagicWord = 0;
// (channel id folded to 32 bits) << 32 | last queue index written to DDS.
// One word: a death leaves it old or new, never a mix of two channels.
constexpr size_t kExportLastWord = 1;
constexpr size_t kExportWords = 2;
constexpr uint64_t kExportMagic = 0x6c6c627265787031;  // "llbrexp1"

// How often a waiting thread looks at the stop flag.
constexpr int64_t kStopCheckNs = 100'000'000;

class Exporter : public ChannelWorker {
 public:
  Exporter(const BridgeContext* context, const ExportSpec& spec,
           LoopGuard* guard)
      : context_(context), spec_(spec), guard_(guard) {}

  ~Exporter() override {
    if (writer_ > 0) dds_delete(writer_);
  }

  absl::Status Start() override {
    ChannelOptions options;
    options.directory = context_->channel_directory;
    absl::StatusOr<Channel> channel =
        Channel::OpenOrCreate(spec_.name, spec_.config, options);
    if (!channel.ok()) {
      return absl::Status(channel.status().code(),
                          absl::StrCat("export ", spec_.name, ": ",
                                       channel.status().message()));
    }
    channel_.emplace(std::move(*channel));
    struct stat st;
    if (stat(channel_->path().c_str(), &st) != 0) {
      return absl::ErrnoToStatus(errno, "stat " + channel_->path());
    }
    const uint64_t ids[2] = {static_cast<uint64_t>(st.st_dev),
                             static_cast<uint64_t>(st.st_ino)};
    channel_id_ = Fnv1a(ids, sizeof(ids));
    absl::StatusOr<StateFile> state =
        StateFile::Open(absl::StrCat(context_->state_directory, "/", spec_.name,
                                     ".export_state"),
                        kExportWords);
    if (!state.ok()) return state.status();
    state_.emplace(std::move(*state));
    ChooseStart();

    const std::string topic_name = TopicName(spec_.name);
    absl::StatusOr<dds_entity_t> topic =
        CreateChannelTopic(context_->participant, spec_.name);
    if (!topic.ok()) return topic.status();
    dds_qos_t* qos =
        static_cast<dds_qos_t*>(MakeQos(spec_.qos, context_->partition));
    // Partition is a publisher QoS: the writer gets its own publisher.
    const dds_entity_t publisher =
        dds_create_publisher(context_->participant, qos, nullptr);
    writer_ = dds_create_writer(
        publisher > 0 ? publisher : context_->participant, *topic, qos, nullptr);
    dds_delete_qos(qos);
    if (writer_ < 0) {
      return absl::InternalError(absl::StrFormat(
          "dds_create_writer(%s): %s", topic_name, dds_strretcode(writer_)));
    }
    incarnation_ = Fnv1a(&channel_id_, sizeof(channel_id_),
                         static_cast<uint64_t>(MonotonicNowNs()) ^
                             (static_cast<uint64_t>(getpid()) << 32));
    std::promise<absl::Status> ready;
    std::future<absl::Status> ready_future = ready.get_future();
    thread_ = std::thread([this, &ready] { Run(&ready); });
    return ready_future.get();
  }

 private:
  // Where to start reading (bridge.h, "Restart").
  void ChooseStart() {
    const LocklessQueue& queue = channel_->queue();
    const QueueIndex latest = queue.LatestQueueIndex();
    const QueueIndex after_latest =
        latest.valid() ? latest.Increment()
                       : QueueIndex::Zero(spec_.config.queue_size);
    next_ = after_latest;
    if (state_->Load(kExportMagicWord) != kExportMagic) {
      state_->Store(kExportLastWord, 0);
      state_->Store(kExportMagicWord, kExportMagic);
      return;  // First run: forward from now on.
    }
    const uint64_t last = state_->Load(kExportLastWord);
    if (last == 0 || (last >> 32) != (channel_id_ & 0xffffffff) ||
        !latest.valid()) {
      return;  // Nothing exported yet, or another channel file now.
    }
    const QueueIndex resume =
        queue.MakeQueueIndex(static_cast<uint32_t>(last)).Increment();
    const uint32_t behind = after_latest.DistanceFrom(resume);
    if (behind > after_latest.max_index() / 2) return;  // not behind: odd
    if (guard_ != nullptr) {
      // Also imported: the messages since may include our own imports,
      // which the LoopGuard (in memory) no longer knows. Skip them.
      stats_.Update([&](ChannelStats& s) { s.missed_while_down += behind; });
      return;
    }
    // Also re-send up to `depth` messages before `resume`: the dead writer
    // may have taken some unacknowledged ones with it. Importers drop those
    // they already have (bridge.h, "Restart").
    uint32_t back = spec_.qos.depth;
    if (latest.index() >= spec_.config.queue_size - 1) {
      const QueueIndex oldest = latest.DecrementBy(spec_.config.queue_size - 1);
      const uint32_t room = resume.DistanceFrom(oldest);
      if (room < back) back = room;
    } else if (resume.index() < back) {
      back = resume.index();
    }
    next_ = resume.DecrementBy(back);  // Read says kTooOld for lost ones.
    resumed_ = true;
  }

  void Run(std::promise<absl::Status>* ready) {
    stats_.Update([&](ChannelStats& s) {
      s.channel = spec_.name;
      s.exported = true;
    });
    absl::StatusOr<Waiter> waiter = channel_->queue().MakeWaiter();
    if (!waiter.ok()) {
      ready->set_value(absl::Status(waiter.status().code(),
                                    absl::StrCat("export ", spec_.name, ": ",
                                                 waiter.status().message())));
      return;
    }
    ready->set_value(absl::OkStatus());
    std::vector<uint8_t> buffer(spec_.config.message_data_size_bytes);
    while (!context_->stop->load(std::memory_order_relaxed)) {
      const WaitResult wait =
          waiter->Wait(next_, MonotonicNowNs() + kStopCheckNs);
      if (wait == WaitResult::kNotOwner) {
        std::fprintf(stderr, "bridge: export %s: waiter lost its slot\n",
                     spec_.name.c_str());
        return;
      }
      DrainReady(buffer);
    }
  }

  // Forwards everything readable from next_ on.
  void DrainReady(std::vector<uint8_t>& buffer) {
    const LocklessQueue& queue = channel_->queue();
    while (!context_->stop->load(std::memory_order_relaxed)) {
      MessageInfo info;
      const ReadResult result =
          queue.Read(next_, &info, buffer.data(), buffer.size());
      if (result == ReadResult::kNothingNew) return;
      if (result == ReadResult::kTooOld || result == ReadResult::kOverwrote) {
        // Overwritten before we read it: skip to the oldest the ring still
        // holds, counting what was lost.
        const QueueIndex latest = queue.LatestQueueIndex();
        const QueueIndex oldest =
            latest.DecrementBy(spec_.config.queue_size - 1);
        uint32_t lost = oldest.DistanceFrom(next_);
        if (lost == 0 || lost > next_.max_index() / 2) lost = 1;
        const QueueIndex skip_to = lost == 1 ? next_.Increment() : oldest;
        if (!resumed_) overwritten_ += lost;
        stats_.Update([&](ChannelStats& s) {
          if (resumed_) {
            s.missed_while_down += lost;
          } else {
            s.overwritten_before_forwarded += lost;
          }
        });
        next_ = skip_to;
        continue;
      }
      resumed_ = false;
      if (result == ReadResult::kCorrupted) {
        std::fprintf(stderr,
                     "bridge: export %s: corrupted message at %u, skipped\n",
                     spec_.name.c_str(), next_.index());
        stats_.Update([](ChannelStats& s) { ++s.errors; });
        next_ = next_.Increment();
        continue;
      }
      if (guard_ != nullptr && guard_->WasImported(next_)) {
        stats_.Update([](ChannelStats& s) { ++s.not_reexported; });
      } else {
        Write(info, buffer.data());
      }
      state_->Store(kExportLastWord,
                    ((channel_id_ & 0xffffffff) << 32) | next_.index());
      next_ = next_.Increment();
    }
  }

  void Write(const MessageInfo& info, uint8_t* payload) {
    lockless_bridge_Sample sample{};
    sample.origin = const_cast<char*>(context_->identity.c_str());
    sample.incarnation = incarnation_;
    sample.sequence_number = ++sequence_;
    sample.channel_id = channel_id_;
    sample.queue_index = info.queue_index.index();
    sample.monotonic_sent_ns =
        std::chrono::duration_cast<std::chrono::nanoseconds>(
            info.monotonic_sent_time.time_since_epoch())
            .count();
    sample.realtime_sent_ns =
        std::chrono::duration_cast<std::chrono::nanoseconds>(
            info.realtime_sent_time.time_since_epoch())
            .count();
    sample.host = const_cast<char*>(context_->host.c_str());
    sample.overwritten_at_origin = overwritten_;
    sample.num_watchers = spec_.config.num_watchers;
    sample.num_senders = spec_.config.num_senders;
    sample.queue_size = spec_.config.queue_size;
    sample.message_data_size_bytes = spec_.config.message_data_size_bytes;
    sample.payload._length = static_cast<uint32_t>(info.length);
    sample.payload._maximum = static_cast<uint32_t>(info.length);
    sample.payload._buffer = payload;
    sample.payload._release = false;
    const dds_return_t rc = dds_write(writer_, &sample);
    stats_.Update([&](ChannelStats& s) {
      if (rc == DDS_RETCODE_OK) {
        ++s.forwarded;
      } else {
        ++s.errors;
      }
    });
    if (rc != DDS_RETCODE_OK) {
      std::fprintf(stderr, "bridge: export %s: dds_write: %s\n",
                   spec_.name.c_str(), dds_strretcode(rc));
    }
  }

  const BridgeContext* context_;
  const ExportSpec spec_;
  LoopGuard* guard_;
  std::optional<Channel> channel_;
  std::optional<StateFile> state_;
  uint64_t channel_id_ = 0;
  uint64_t incarnation_ = 0;
  uint64_t sequence_ = 0;
  // Since this start: what the samples report (also in stats_, which this
  // thread would otherwise have to copy per message).
  uint64_t overwritten_ = 0;
  // Reading the backlog of a previous run: losses there are "missed while
  // down", not "overwritten before forwarded".
  bool resumed_ = false;
  dds_entity_t writer_ = 0;
  QueueIndex next_;
};

}  // namespace

std::unique_ptr<ChannelWorker> MakeExporter(const BridgeContext* context,
                                            const ExportSpec& spec,
                                            LoopGuard* shared_guard) {
  return std::make_unique<Exporter>(context, spec, shared_guard);
}

uint64_t Fnv1a(const void* data, size_t size, uint64_t seed) {
  uint64_t hash = 0xcbf29ce484222325ull ^ seed;
  const auto* bytes = static_cast<const uint8_t*>(data);
  for (size_t i = 0; i < size; ++i) {
    hash ^= bytes[i];
    hash *= 0x100000001b3ull;
  }
  return hash;
}

absl::StatusOr<dds_entity_t> CreateChannelTopic(
    dds_entity_t participant, const std::string& channel_name) {
  const std::string topic_name = TopicName(channel_name);
  const dds_entity_t topic =
      dds_create_topic(participant, &lockless_bridge_Sample_desc,
                       topic_name.c_str(), nullptr, nullptr);
  if (topic < 0) {
    return absl::InternalError(absl::StrFormat(
        "dds_create_topic(%s): %s", topic_name, dds_strretcode(topic)));
  }
  return topic;
}

void* MakeQos(const ChannelQos& channel_qos, const std::string& partition) {
  dds_qos_t* qos = dds_create_qos();
  if (channel_qos.reliable) {
    dds_qset_reliability(qos, DDS_RELIABILITY_RELIABLE, DDS_SECS(1));
    // A late or restarted importer gets the last `depth` samples.
    dds_qset_durability(qos, DDS_DURABILITY_TRANSIENT_LOCAL);
    // The history a late joiner gets is the durability service's (default
    // depth 1), not the writer's: make it `depth` too.
    dds_qset_durability_service(
        qos, 0, DDS_HISTORY_KEEP_LAST, static_cast<int32_t>(channel_qos.depth),
        DDS_LENGTH_UNLIMITED, DDS_LENGTH_UNLIMITED, DDS_LENGTH_UNLIMITED);
  } else {
    dds_qset_reliability(qos, DDS_RELIABILITY_BEST_EFFORT, 0);
    dds_qset_durability(qos, DDS_DURABILITY_VOLATILE);
  }
  dds_qset_history(qos, DDS_HISTORY_KEEP_LAST,
                   static_cast<int32_t>(channel_qos.depth));
  // A bridge never hears its own samples (mutual export/import on one
  // channel would otherwise loop inside the process).
  dds_qset_ignorelocal(qos, DDS_IGNORELOCAL_PARTICIPANT);
  // Bridges in different partitions never match (isolates concurrent test
  // runs that share a domain).
  if (!partition.empty()) dds_qset_partition1(qos, partition.c_str());
  return qos;
}

}  // namespace lockless::bridge::internal
