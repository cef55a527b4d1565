// The import side of a channel: DDS samples -> local channel (bridge.h).
#include <cstdio>
#include <cstring>
#include <future>
#include <map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "dds/dds.h"
#include "tools/bridge/bridge_sample.h"
#include "tools/bridge/channel_worker.h"
#include "tools/bridge/dds_config.h"
#include "tools/bridge/forward_record.h"

namespace lockless::bridge::internal {
namespace {

// Import state file: kOrigins records of kRecordWords words after a magic.
// A record is free while its origin word is 0; it is claimed by writing the
// other words first and the origin word last, so a death mid-claim leaves a
// free record. Updates of a claimed record write `last` (the dedup key, one
// word: channel id folded to 32 bits << 32 | origin queue index) before
// `sequence`, which only serves loss counting.
constexpr size_t kImportMagicWord = 0;
constexpr size_t kOrigins = 16;
constexpr size_t kRecordWords = 4;
constexpr size_t kOriginWord = 0;  // identity hash, 0 = free
constexpr size_t kLastWord = 1;
constexpr size_t kIncarnationWord = 2;
constexpr size_t kSequenceWord = 3;
constexpr size_t kImportWords = 1 + kOrigins * kRecordWords;
constexpr uint64_t kImportMagic = 0x6c6c6272696d7031;  // "llbrimp1"

constexpr int kTakeBatch = 64;
constexpr dds_duration_t kStopCheck = DDS_MSECS(100);
// Malformed samples are logged on the 1st, 2nd, 4th, 8th, ... occurrence.
bool ShouldLog(uint64_t count) { return (count & (count - 1)) == 0; }

int64_t RealtimeNowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

class Importer : public ChannelWorker {
 public:
  Importer(const BridgeContext* context, const ImportSpec& spec,
           LoopGuard* guard)
      : context_(context), spec_(spec), guard_(guard) {}

  ~Importer() override {
    if (waitset_ > 0) dds_delete(waitset_);
    if (reader_ > 0) dds_delete(reader_);
  }

  absl::Status Start() override {
    absl::StatusOr<StateFile> state =
        StateFile::Open(absl::StrCat(context_->state_directory, "/", spec_.name,
                                     ".import_state"),
                        kImportWords);
    if (!state.ok()) return state.status();
    state_.emplace(std::move(*state));
    if (state_->Load(kImportMagicWord) != kImportMagic) {
      for (size_t i = 1; i < kImportWords; ++i) state_->Store(i, 0);
      state_->Store(kImportMagicWord, kImportMagic);
    }
    const std::string topic_name = TopicName(spec_.name);
    absl::StatusOr<dds_entity_t> topic =
        CreateChannelTopic(context_->participant, spec_.name);
    if (!topic.ok()) return topic.status();
    dds_qos_t* qos =
        static_cast<dds_qos_t*>(MakeQos(spec_.qos, context_->partition));
    // Partition is a subscriber QoS: the reader gets its own subscriber.
    const dds_entity_t subscriber =
        dds_create_subscriber(context_->participant, qos, nullptr);
    reader_ =
        dds_create_reader(subscriber > 0 ? subscriber : context_->participant,
                          *topic, qos, nullptr);
    dds_delete_qos(qos);
    if (reader_ < 0) {
      return absl::InternalError(absl::StrFormat(
          "dds_create_reader(%s): %s", topic_name, dds_strretcode(reader_)));
    }
    waitset_ = dds_create_waitset(context_->participant);
    const dds_entity_t condition =
        dds_create_readcondition(reader_, DDS_ANY_STATE);
    if (waitset_ < 0 || condition < 0 ||
        dds_waitset_attach(waitset_, condition, 0) != DDS_RETCODE_OK) {
      return absl::InternalError("DDS waitset setup failed for " + topic_name);
    }
    stats_.Update([&](ChannelStats& s) { s.channel = spec_.name; });
    std::promise<void> ready;
    std::future<void> ready_future = ready.get_future();
    thread_ = std::thread([this, &ready] { Run(&ready); });
    ready_future.get();
    return absl::OkStatus();
  }

 private:
  void Run(std::promise<void>* ready) {
    ready->set_value();
    void* samples[kTakeBatch];
    dds_sample_info_t infos[kTakeBatch];
    while (!context_->stop->load(std::memory_order_relaxed)) {
      // Blocks until a sample arrives (or the stop check is due).
      dds_waitset_wait(waitset_, nullptr, 0, kStopCheck);
      for (;;) {
        std::memset(samples, 0, sizeof(samples));
        const int taken =
            dds_take(reader_, samples, infos, kTakeBatch, kTakeBatch);
        if (taken <= 0) break;
        for (int i = 0; i < taken; ++i) {
          if (!infos[i].valid_data) continue;
          Deliver(*static_cast<const lockless_bridge_Sample*>(samples[i]));
        }
        dds_return_loan(reader_, samples, taken);
      }
    }
    // Senders release their slots on the thread that owns them.
    record_sender_.reset();
    sender_.reset();
  }

  // Refuses a sample: counted, logged now and then, never sent.
  void Malformed(const std::string& why) {
    uint64_t count = 0;
    stats_.Update([&](ChannelStats& s) { count = ++s.malformed_dropped; });
    if (ShouldLog(count)) {
      std::fprintf(stderr,
                   "bridge: import %s: dropped malformed sample #%llu: %s\n",
                   spec_.name.c_str(), static_cast<unsigned long long>(count),
                   why.c_str());
    }
  }

  // The sample's QueueConfig, or why it is not acceptable.
  absl::StatusOr<QueueConfig> CheckSample(const lockless_bridge_Sample& s) {
    if (s.origin == nullptr || s.origin[0] == '\0') {
      return absl::InvalidArgumentError("empty origin");
    }
    QueueConfig config;
    config.num_watchers = s.num_watchers;
    config.num_senders = s.num_senders;
    config.queue_size = s.queue_size;
    config.message_data_size_bytes = s.message_data_size_bytes;
    if (absl::Status status = ValidateConfig(config); !status.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("bad configuration: ", status.message()));
    }
    if (config.message_data_size_bytes > context_->max_import_message_bytes) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "message size %u above the import limit %u",
          config.message_data_size_bytes, context_->max_import_message_bytes));
    }
    if (s.payload._length > config.message_data_size_bytes) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "payload of %u bytes above the channel's message size %u",
          s.payload._length, config.message_data_size_bytes));
    }
    if (s.payload._length > 0 && s.payload._buffer == nullptr) {
      return absl::InvalidArgumentError("payload without data");
    }
    if (!QueueIndex::IsLegalRaw(s.queue_index, config.queue_size) ||
        s.queue_index == QueueIndex::Invalid().index()) {
      return absl::InvalidArgumentError("impossible queue index");
    }
    if (channel_.has_value() && config != channel_->queue().config()) {
      return absl::FailedPreconditionError(
          absl::StrCat("configuration ", config.DebugString(),
                       " differs from the local "
                       "channel's ",
                       channel_->queue().config().DebugString()));
    }
    return config;
  }

  // Opens the local channel (and its companion) with the exporter's
  // configuration; the Sender is made on this thread, which owns it.
  absl::Status OpenLocal(const QueueConfig& config) {
    ChannelOptions options;
    options.directory = context_->channel_directory;
    absl::StatusOr<Channel> channel =
        Channel::OpenOrCreate(spec_.name, config, options);
    if (!channel.ok()) return channel.status();
    absl::StatusOr<Channel> forwarded =
        Channel::OpenOrCreate(ForwardedChannelName(spec_.name),
                              ForwardedChannelConfig(config), options);
    if (!forwarded.ok()) return forwarded.status();
    absl::StatusOr<Sender> sender = channel->queue().MakeSender();
    if (!sender.ok()) return sender.status();
    absl::StatusOr<Sender> record_sender = forwarded->queue().MakeSender();
    if (!record_sender.ok()) return record_sender.status();
    channel_.emplace(std::move(*channel));
    forwarded_.emplace(std::move(*forwarded));
    sender_.emplace(std::move(*sender));
    record_sender_.emplace(std::move(*record_sender));
    return absl::OkStatus();
  }

  // The state record of `origin`, claiming a free one if needed (nullopt if
  // all kOrigins are taken: then no dedup across restarts for it).
  std::optional<size_t> OriginRecord(uint64_t origin) {
    std::optional<size_t> free;
    for (size_t r = 0; r < kOrigins; ++r) {
      const size_t base = 1 + r * kRecordWords;
      const uint64_t word = state_->Load(base + kOriginWord);
      if (word == origin) return base;
      if (word == 0 && !free) free = base;
    }
    if (!free) return std::nullopt;
    state_->Store(*free + kLastWord, 0);
    state_->Store(*free + kIncarnationWord, 0);
    state_->Store(*free + kSequenceWord, 0);
    state_->Store(*free + kOriginWord, origin);  // claimed last
    return free;
  }

  void Deliver(const lockless_bridge_Sample& s) {
    absl::StatusOr<QueueConfig> config = CheckSample(s);
    if (!config.ok()) {
      Malformed(std::string(config.status().message()));
      return;
    }
    const uint64_t origin = Fnv1a(s.origin, std::strlen(s.origin));
    if (origin == context_->identity_hash || context_->identity == s.origin) {
      stats_.Update([](ChannelStats& st) { ++st.own_dropped; });
      return;
    }
    if (!channel_.has_value()) {
      if (absl::Status status = OpenLocal(*config); !status.ok()) {
        Malformed(
            absl::StrCat("cannot open the local channel: ", status.message()));
        return;
      }
    }
    const std::optional<size_t> record = OriginRecord(origin);
    const uint64_t last_key =
        ((s.channel_id & 0xffffffff) << 32) | s.queue_index;
    if (record) {
      const uint64_t last = state_->Load(*record + kLastWord);
      if (last != 0 && (last >> 32) == (s.channel_id & 0xffffffff)) {
        const QueueIndex previous = QueueIndex::FromRaw(
            static_cast<uint32_t>(last), config->queue_size);
        const QueueIndex now =
            QueueIndex::FromRaw(s.queue_index, config->queue_size);
        const uint32_t ahead = now.DistanceFrom(previous);
        if (ahead == 0 || ahead > now.max_index() / 2) {
          stats_.Update([](ChannelStats& st) { ++st.duplicates_dropped; });
          return;
        }
      }
    }
    CountTransportLoss(s, record);

    auto send = [&](QueueIndex* index) {
      MessageInfo info;
      const SendResult result =
          sender_->Send(s.payload._buffer, s.payload._length, &info);
      if (result != SendResult::kOk) {
        std::fprintf(stderr, "bridge: import %s: Send: %s\n",
                     spec_.name.c_str(), SendResultName(result));
        return false;
      }
      *index = info.queue_index;
      last_sent_index_ = info.queue_index.index();
      return true;
    };
    QueueIndex unused;
    const bool sent =
        guard_ != nullptr ? guard_->SendAndRecord(send) : send(&unused);
    if (!sent) {
      stats_.Update([](ChannelStats& st) { ++st.errors; });
      return;
    }
    if (record) {
      state_->Store(*record + kLastWord, last_key);
      state_->Store(*record + kIncarnationWord, s.incarnation);
      state_->Store(*record + kSequenceWord, s.sequence_number);
    }
    const int64_t latency = RealtimeNowNs() - s.realtime_sent_ns;
    SendRecord(s);
    stats_.Update([&](ChannelStats& st) {
      ++st.forwarded;
      st.latency.Add(latency);
    });
  }

  // Sequence gaps within one exporter incarnation (also across our own
  // restart, from the state record) are losses on the way.
  void CountTransportLoss(const lockless_bridge_Sample& s,
                          const std::optional<size_t>& record) {
    Expected& expected = expected_[s.origin];
    if (expected.incarnation != s.incarnation && record &&
        state_->Load(*record + kIncarnationWord) == s.incarnation) {
      expected.incarnation = s.incarnation;
      expected.next = state_->Load(*record + kSequenceWord) + 1;
    }
    uint64_t lost = 0;
    if (expected.incarnation == s.incarnation &&
        s.sequence_number > expected.next) {
      lost = s.sequence_number - expected.next;
    }
    expected.incarnation = s.incarnation;
    expected.next = s.sequence_number + 1;
    const uint64_t at_origin = s.overwritten_at_origin;
    lost_at_origin_[s.origin] = at_origin;
    uint64_t total_at_origin = 0;
    for (const auto& [name, count] : lost_at_origin_) total_at_origin += count;
    stats_.Update([&](ChannelStats& st) {
      st.lost_in_transport += lost;
      st.lost_at_origin = total_at_origin;
    });
  }

  // The ForwardRecord for the message just sent (forward_record.h).
  void SendRecord(const lockless_bridge_Sample& s) {
    ForwardRecord record;
    MessageInfo info;
    // The index our Send reported (LatestQueueIndex could already name a
    // local sender's later message).
    record.local_queue_index = last_sent_index_;
    record.origin_queue_index = s.queue_index;
    record.origin_monotonic_sent_ns = s.monotonic_sent_ns;
    record.origin_realtime_sent_ns = s.realtime_sent_ns;
    if (s.host != nullptr) {
      std::strncpy(record.origin_host, s.host, sizeof(record.origin_host) - 1);
    }
    (void)record_sender_->Send(&record, sizeof(record), &info);
  }

  struct Expected {
    uint64_t incarnation = 0;
    uint64_t next = 0;
  };

  const BridgeContext* context_;
  const ImportSpec spec_;
  LoopGuard* guard_;
  std::optional<StateFile> state_;
  dds_entity_t reader_ = 0;
  dds_entity_t waitset_ = 0;
  std::optional<Channel> channel_;
  std::optional<Channel> forwarded_;
  std::optional<Sender> sender_;
  std::optional<Sender> record_sender_;
  uint32_t last_sent_index_ = 0;
  std::map<std::string, Expected> expected_;
  std::map<std::string, uint64_t> lost_at_origin_;
};

}  // namespace

std::unique_ptr<ChannelWorker> MakeImporter(const BridgeContext* context,
                                            const ImportSpec& spec,
                                            LoopGuard* guard) {
  return std::make_unique<Importer>(context, spec, guard);
}

}  // namespace lockless::bridge::internal
