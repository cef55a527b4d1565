// How a receiver tells a forwarded message from a local one: for every
// message the bridge's importer sends into channel C, it then sends a
// ForwardRecord into the companion channel C.forwarded (ForwardedChannelName)
// naming the local queue index and where and when the message was first
// sent. A message whose index has no record is local. The record follows the
// message (a reader may see the message a moment before its record), and the
// companion ring is as long as C's, so records live as long as their
// messages.
//
// No DDS here: receivers and tools (dump) use this without the bridge.
//
// Thread-safety: plain values and pure functions, except LookUpForwarded
// (reads a channel: wait-free, thread-safe, not RT-bounded: scans up to
// queue_size records).
#ifndef LOCKLESS_TOOLS_BRIDGE_FORWARD_RECORD_H_
#define LOCKLESS_TOOLS_BRIDGE_FORWARD_RECORD_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "index/queue_index.h"
#include "ipc/queue_config.h"
#include "ipc/shm_channel.h"

namespace lockless::bridge {

struct ForwardRecord {
  uint32_t local_queue_index = 0;   // in C on this machine
  uint32_t origin_queue_index = 0;  // in C on the origin machine
  int64_t origin_monotonic_sent_ns = 0;
  int64_t origin_realtime_sent_ns = 0;
  char origin_host[64] = {};  // NUL-terminated, truncated
};

// "<channel>.forwarded".
std::string ForwardedChannelName(const std::string& channel);

// The companion's configuration for a channel of `channel_config`.
QueueConfig ForwardedChannelConfig(const QueueConfig& channel_config);

// The record for `local_queue_index` if the companion holds one (searched
// from the newest back), nullopt if not: local, or its record not yet sent
// or already overwritten.
std::optional<ForwardRecord> LookUpForwarded(const ReadOnlyChannel& forwarded,
                                             QueueIndex local_queue_index);

}  // namespace lockless::bridge

#endif  // LOCKLESS_TOOLS_BRIDGE_FORWARD_RECORD_H_
