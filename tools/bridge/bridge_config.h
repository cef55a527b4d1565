// The bridge's configuration: which channels leave this machine (exports),
// which arrive (imports), with what DDS quality of service, in which domain.
//
// Text format, one directive per line, '#' starts a comment:
//   domain 7
//   export NAME queue_size=100 message_size=128 senders=10 watchers=10
//       [reliable|best_effort] [depth=N]
//   import NAME [reliable|best_effort] [depth=N]
// An export names the channel's configuration (the bridge opens or creates
// the channel with it, so a mismatch with an existing channel is a clear
// error). An import needs none: the configuration travels with every sample
// and the channel is created with it. Defaults: reliable, depth 64, domain 0,
// and for exports the QueueConfig defaults. A directive is one line (wrapped
// above only for width).
//
// QoS must be compatible across machines, as DDS defines it: an import may
// ask for less than the export offers (best_effort from a reliable export
// works), never more (a reliable import of a best_effort export never
// matches, and DDS delivers nothing). Use the same QoS on both ends.
//
// Thread-safety: pure functions.
#ifndef LOCKLESS_TOOLS_BRIDGE_BRIDGE_CONFIG_H_
#define LOCKLESS_TOOLS_BRIDGE_BRIDGE_CONFIG_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "ipc/queue_config.h"

namespace lockless::bridge {

struct ChannelQos {
  // Reliable: DDS retransmits until the reader has the sample (as long as
  // it stays within `depth` of the writer), and a late or restarted reader
  // gets the last `depth` samples (transient-local). Best effort: lost
  // datagrams stay lost (counted by the importer from sequence gaps).
  bool reliable = true;
  // DDS history kept per writer and per reader (KEEP_LAST).
  uint32_t depth = 64;
};

struct ExportSpec {
  std::string name;
  QueueConfig config;
  ChannelQos qos;
};

struct ImportSpec {
  std::string name;
  ChannelQos qos;
};

struct BridgeConfig {
  uint32_t domain_id = 0;
  std::vector<ExportSpec> exports;
  std::vector<ImportSpec> imports;
};

// Parses the text format above. InvalidArgument naming the line for unknown
// directives or keys, bad numbers, bad channel names, a channel exported or
// imported twice, depth 0, or an invalid export configuration.
absl::StatusOr<BridgeConfig> ParseBridgeConfig(absl::string_view text);

// Reads and parses a file (NotFound / the errno if it cannot be read).
absl::StatusOr<BridgeConfig> ReadBridgeConfig(const std::string& path);

}  // namespace lockless::bridge

#endif  // LOCKLESS_TOOLS_BRIDGE_BRIDGE_CONFIG_H_
