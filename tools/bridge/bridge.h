// The bridge: forwards lockless channels between machines over Eclipse
// Cyclone DDS.
//
// Export: one thread per exported channel sleeps in Waiter::Wait (no
// polling), reads every message in order and writes it as one DDS sample
// (bridge_sample.idl) on the topic TopicName(channel), with the queue index,
// both send times, the host, this bridge's identity and the channel's
// configuration. Messages overwritten in the ring before the thread read
// them are counted (and the count travels to the importers).
// Import: one thread per imported channel sleeps on a DDS waitset, takes
// samples, checks them, and Sends each payload into the local channel,
// created with the configuration the sample carries (an existing channel
// with another configuration is an error per sample, counted and logged).
//
// Guarantees:
//   - Order: per channel and origin, messages arrive in the origin's queue
//     order (one writer per channel and bridge, DDS keeps a writer's order;
//     one importer thread per channel).
//   - Completeness under reliable QoS, when neither the local ring nor the
//     DDS history (depth) is outrun; every loss is counted where it happens:
//     overwritten before forwarded (origin), sequence gap (transport),
//     missed while the exporting bridge was down.
//   - No loops: the importer drops samples whose origin is this bridge (DDS
//     also never delivers a participant its own samples: ignorelocal), and
//     the exporter never re-exports what its importer sent (LoopGuard).
//   - Bad samples (oversized payload, invalid configuration, empty origin)
//     are counted, logged (rate-limited) and dropped; nothing is sent.
//   - Restart: see "Restart" below.
//   - Telling forwarded from local: the importer appends, for every message
//     it sends into channel C, a ForwardRecord to the companion channel
//     C.forwarded (forward_record.h): local queue index, origin host, origin
//     queue index and both original send times. A receiver looks up the
//     index it read; absent = local. Latency = its receive time - the
//     original realtime send time (both machines' clocks: use PTP/chrony).
//
// Restart. Per-channel state files in the state directory (StateFile):
//   - export: the last queue index written to DDS. A restarted exporter of a
//     channel it does not also import resumes after it (whatever the ring
//     still holds is forwarded, the rest counted as missed while down), and
//     first re-sends up to `depth` messages before it, which the dead writer
//     may have taken with it unacknowledged (importers drop duplicates). A
//     channel it also imports restarts after the newest message (replaying
//     could re-export imported messages); the skipped ones are counted.
//   - import: per origin, the last origin queue index sent into the local
//     channel. Reliable topics are transient-local: a restarted importer
//     receives up to `depth` recent samples again, and drops those already
//     delivered. At most ONE message per channel can be delivered twice: the
//     one whose Send completed when the bridge died before recording it.
//   A restarted exporter starts a new incarnation; importers track sequence
//   numbers per incarnation.
//
// Peers: DDS discovery finds bridges that start, stop and come back; nothing
// to do here beyond keeping the reader and writer.
//
// Thread-safety: Start, Stats and Stop may be called from any thread; Stop
// at most once (the destructor calls it). Not RT-safe: the bridge is a
// network process, never on a real-time path.
#ifndef LOCKLESS_TOOLS_BRIDGE_BRIDGE_H_
#define LOCKLESS_TOOLS_BRIDGE_BRIDGE_H_

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "tools/bridge/bridge_config.h"
#include "tools/bridge/bridge_stats.h"
#include "tools/bridge/dds_config.h"

namespace lockless::bridge {

struct BridgeOptions {
  BridgeConfig config;
  // Channel directory; empty = DefaultChannelDirectory().
  std::string channel_directory;
  // State and marker directory; empty = <channel directory>/.bridge
  // (created if missing).
  std::string state_directory;
  DdsNetwork network = DdsNetwork::kLoopbackOnly;
  // DDS partition for every topic; bridges match only within one. Empty =
  // the default partition.
  std::string partition;
  // See DdsSettings::extra_xml.
  std::string extra_dds_xml;
  // This bridge's identity on the wire; empty = "<hostname>:<channel
  // directory>". Must differ between bridges that see each other.
  std::string identity;
  // Host name sent with every sample; empty = gethostname().
  std::string host;
  // Largest payload an importer accepts, whatever the sample's configuration
  // says (a bigger one is malformed): bounds what a peer makes us allocate.
  uint64_t max_import_message_bytes = uint64_t{64} << 20;
};

namespace internal {
class ChannelWorker;
}  // namespace internal

class Bridge {
 public:
  // Opens every exported channel, creates the DDS participant, topics,
  // writers and readers, and starts one thread per channel. Returns once
  // each thread has made its Waiter or is ready to take samples. Errors:
  // those of CreateParticipant, Channel::OpenOrCreate (exports), the state
  // directory, or DDS entity creation (Internal, with DDS's return code).
  static absl::StatusOr<std::unique_ptr<Bridge>> Start(
      const BridgeOptions& options);

  ~Bridge();
  Bridge(const Bridge&) = delete;
  Bridge& operator=(const Bridge&) = delete;

  // Stops and joins the threads (within ~100 ms), deletes the participant.
  void Stop();

  // A snapshot of every channel's statistics (exports first); after Stop,
  // the final figures. Not concurrently with Stop.
  std::vector<ChannelStats> Stats() const;

  const std::string& identity() const { return identity_; }

 private:
  Bridge() = default;

  std::string identity_;
  int participant_ = 0;  // dds_entity_t
  std::atomic<bool> stop_{false};
  std::vector<std::unique_ptr<internal::ChannelWorker>> workers_;
  std::vector<ChannelStats> final_stats_;
  bool stopped_ = false;
};

}  // namespace lockless::bridge

#endif  // LOCKLESS_TOOLS_BRIDGE_BRIDGE_H_
