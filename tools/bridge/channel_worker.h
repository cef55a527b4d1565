// Internals of the bridge (bridge.h): one worker thread per forwarded
// channel. Not for use outside tools/bridge.
#ifndef LOCKLESS_TOOLS_BRIDGE_CHANNEL_WORKER_H_
#define LOCKLESS_TOOLS_BRIDGE_CHANNEL_WORKER_H_

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "dds/dds.h"
#include "ipc/shm_channel.h"
#include "tools/bridge/bridge_config.h"
#include "tools/bridge/bridge_stats.h"
#include "tools/bridge/loop_guard.h"
#include "tools/bridge/state_file.h"

namespace lockless::bridge::internal {

// What every worker of one bridge shares.
struct BridgeContext {
  std::string identity;
  uint64_t identity_hash = 0;
  std::string host;
  std::string channel_directory;
  std::string state_directory;
  uint64_t max_import_message_bytes = 0;
  int participant = 0;    // dds_entity_t
  std::string partition;  // DDS partition of every writer and reader
  const std::atomic<bool>* stop = nullptr;
};

class ChannelWorker {
 public:
  virtual ~ChannelWorker() = default;
  // Starts the thread; returns when it is ready (or failed to get ready).
  virtual absl::Status Start() = 0;
  void Join() {
    if (thread_.joinable()) thread_.join();
  }
  ChannelStats Stats() const { return stats_.Snapshot(); }

 protected:
  std::thread thread_;
  StatsCell stats_;
};

// 64-bit FNV-1a: identities and channel ids on the wire and in state files.
uint64_t Fnv1a(const void* data, size_t size, uint64_t seed = 0);

// `shared_guard` is non-null when the channel is also imported (then the
// exporter restarts after the newest message, see bridge.h).
std::unique_ptr<ChannelWorker> MakeExporter(const BridgeContext* context,
                                            const ExportSpec& spec,
                                            LoopGuard* shared_guard);
// `guard` is non-null when the channel is also exported.
std::unique_ptr<ChannelWorker> MakeImporter(const BridgeContext* context,
                                            const ImportSpec& spec,
                                            LoopGuard* guard);

// The DDS topic (type lockless_bridge_Sample) a channel travels on, in
// `participant`. Errors: Internal with DDS's return code.
absl::StatusOr<dds_entity_t> CreateChannelTopic(dds_entity_t participant,
                                                const std::string& channel_name);

// DDS QoS for a channel's writer and reader (caller dds_delete_qos).
void* MakeQos(const ChannelQos& qos, const std::string& partition);

}  // namespace lockless::bridge::internal

#endif  // LOCKLESS_TOOLS_BRIDGE_CHANNEL_WORKER_H_
