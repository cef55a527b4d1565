// QueueConfig: the shape of one channel, fixed when the channel is created.
//
// Every process that opens a channel must pass the same configuration; the
// region's header records it and a mismatch is reported as an error.
//
// Thread-safety: plain values. ValidateConfig and QueueMemorySize are pure.
#ifndef LOCKLESS_IPC_QUEUE_CONFIG_H_
#define LOCKLESS_IPC_QUEUE_CONFIG_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace lockless {

struct QueueConfig {
  // Threads that may register for wake-ups at once (0 = polling only).
  uint32_t num_watchers = 10;
  // Senders that may exist at once (across all processes). At least 1.
  uint32_t num_senders = 10;
  // Messages kept in the ring: a reader may fall this far behind. At least 1.
  uint32_t queue_size = 100;
  // Largest message payload in bytes. At least 1.
  uint64_t message_data_size_bytes = 128;

  bool operator==(const QueueConfig& other) const {
    return num_watchers == other.num_watchers &&
           num_senders == other.num_senders &&
           queue_size == other.queue_size &&
           message_data_size_bytes == other.message_data_size_bytes;
  }
  bool operator!=(const QueueConfig& other) const { return !(*this == other); }

  std::string DebugString() const;
};

// Limits checked by ValidateConfig.
inline constexpr uint32_t kMaxQueueSize = 0x7fffffff;  // keeps >= 2 laps
inline constexpr uint64_t kMaxMessageDataSizeBytes = uint64_t{1} << 30;
inline constexpr uint64_t kMaxRegionSizeBytes = uint64_t{1} << 40;

// OK, or InvalidArgument naming the offending field: zero queue_size,
// num_senders or message size; more messages (queue_size + num_senders) than
// an Index can address; sizes whose region would exceed kMaxRegionSizeBytes.
absl::Status ValidateConfig(const QueueConfig& config);

// Exact size in bytes of a channel region for `config`, or the
// ValidateConfig error.
absl::StatusOr<uint64_t> QueueMemorySize(const QueueConfig& config);

}  // namespace lockless

#endif  // LOCKLESS_IPC_QUEUE_CONFIG_H_
