#include "tools/bridge/bridge.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <map>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "dds/dds.h"
#include "ipc/shm_channel.h"
#include "tools/bridge/channel_worker.h"

namespace lockless::bridge {

namespace internal {
// Everything a Bridge's workers share, owned by the Bridge (workers hold a
// pointer). Kept out of bridge.h so the header needs no DDS or LoopGuard.
struct BridgeShared {
  BridgeContext context;
  std::map<std::string, std::unique_ptr<LoopGuard>> guards;
};
}  // namespace internal

namespace {

std::string HostName() {
  char name[HOST_NAME_MAX + 1] = {};
  if (gethostname(name, sizeof(name) - 1) != 0) return "unknown-host";
  return name;
}

absl::Status MakeDirectory(const std::string& path) {
  if (mkdir(path.c_str(), 0700) == 0 || errno == EEXIST) {
    struct stat st;
    if (stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
      return absl::OkStatus();
    }
    return absl::FailedPreconditionError(path + " is not a directory");
  }
  return absl::ErrnoToStatus(errno, "mkdir " + path);
}

// One per process is enough; kept for the process's lifetime (workers may
// still point into it while a Bridge is being destroyed).
std::vector<std::unique_ptr<internal::BridgeShared>>& AllShared() {
  static auto* shared =
      new std::vector<std::unique_ptr<internal::BridgeShared>>;
  return *shared;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Bridge>> Bridge::Start(
    const BridgeOptions& options) {
  std::unique_ptr<Bridge> bridge(new Bridge);
  auto shared = std::make_unique<internal::BridgeShared>();
  internal::BridgeContext& context = shared->context;
  context.channel_directory = options.channel_directory.empty()
                                  ? DefaultChannelDirectory()
                                  : options.channel_directory;
  if (char* real = realpath(context.channel_directory.c_str(), nullptr)) {
    context.channel_directory = real;
    free(real);
  } else {
    return absl::ErrnoToStatus(
        errno, "channel directory " + context.channel_directory);
  }
  context.state_directory = options.state_directory.empty()
                                ? context.channel_directory + "/.bridge"
                                : options.state_directory;
  if (absl::Status status = MakeDirectory(context.state_directory);
      !status.ok()) {
    return status;
  }
  context.host = options.host.empty() ? HostName() : options.host;
  context.identity =
      options.identity.empty()
          ? absl::StrCat(context.host, ":", context.channel_directory)
          : options.identity;
  context.identity_hash =
      internal::Fnv1a(context.identity.data(), context.identity.size());
  context.max_import_message_bytes = options.max_import_message_bytes;
  context.partition = options.partition;
  context.stop = &bridge->stop_;
  bridge->identity_ = context.identity;

  DdsSettings settings;
  settings.domain_id = options.config.domain_id;
  settings.network = options.network;
  settings.extra_xml = options.extra_dds_xml;
  absl::StatusOr<dds_entity_t> participant = CreateParticipant(settings);
  if (!participant.ok()) return participant.status();
  context.participant = *participant;
  bridge->participant_ = *participant;

  // A guard per channel that is both imported and exported (bridge.h); an
  // import-only channel has none (nobody would drain its records).
  for (const ImportSpec& spec : options.config.imports) {
    for (const ExportSpec& exported : options.config.exports) {
      if (exported.name == spec.name) {
        shared->guards.emplace(spec.name, std::make_unique<LoopGuard>());
      }
    }
  }
  internal::BridgeShared* raw = shared.get();
  AllShared().push_back(std::move(shared));
  // Exports first: each exporter picks its start index before any importer
  // can send into its channel.
  for (const ExportSpec& spec : options.config.exports) {
    auto guard = raw->guards.find(spec.name);
    bridge->workers_.push_back(internal::MakeExporter(
        &raw->context, spec,
        guard == raw->guards.end() ? nullptr : guard->second.get()));
    if (absl::Status status = bridge->workers_.back()->Start(); !status.ok()) {
      bridge->Stop();
      return status;
    }
  }
  for (const ImportSpec& spec : options.config.imports) {
    auto guard = raw->guards.find(spec.name);
    bridge->workers_.push_back(internal::MakeImporter(
        &raw->context, spec,
        guard == raw->guards.end() ? nullptr : guard->second.get()));
    if (absl::Status status = bridge->workers_.back()->Start(); !status.ok()) {
      bridge->Stop();
      return status;
    }
  }
  return bridge;
}

Bridge::~Bridge() { Stop(); }

void Bridge::Stop() {
  if (stopped_) return;
  stopped_ = true;
  // Relaxed: the workers only need to see it eventually (they look every
  // ~100 ms); join() orders everything after.
  stop_.store(true, std::memory_order_relaxed);
  for (auto& worker : workers_) worker->Join();
  // Statistics outlive the DDS entities: workers delete theirs first.
  for (auto& worker : workers_) final_stats_.push_back(worker->Stats());
  workers_.clear();
  if (participant_ > 0) dds_delete(participant_);
  participant_ = 0;
}

std::vector<ChannelStats> Bridge::Stats() const {
  if (stopped_) return final_stats_;
  std::vector<ChannelStats> stats;
  for (const auto& worker : workers_) stats.push_back(worker->Stats());
  return stats;
}

}  // namespace lockless::bridge
