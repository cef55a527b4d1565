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
  // Rate limit: a message younger than this (CLOCK_MONOTONIC nanoseconds
  // since it was sent) is never overwritten; a Send that would replace it
  // returns SendResult::kTooFast and publishes nothing. So a runaway sender
  // cannot flush the last queue_size messages faster than queue_size per
  // min_message_age_ns. 0 (default): no limit. At most kMaxMinMessageAgeNs.
  uint64_t min_message_age_ns = 0;
  // Readers that may hold a zero-copy pin at once (Pinner; 0 = pinning
  // unused). Costs num_senders * num_pinners extra messages of memory: each
  // sender keeps num_pinners spare ("parked") messages to swap a pinned
  // scratch with, so that no ownership move ever crosses sender slots
  // (README, "Pinning"). At most kMaxPinners.
  uint32_t num_pinners = 0;

  bool operator==(const QueueConfig& other) const {
    return num_watchers == other.num_watchers &&
           num_senders == other.num_senders &&
           queue_size == other.queue_size &&
           message_data_size_bytes == other.message_data_size_bytes &&
           min_message_age_ns == other.min_message_age_ns &&
           num_pinners == other.num_pinners;
  }
  bool operator!=(const QueueConfig& other) const { return !(*this == other); }

  std::string DebugString() const;
};

// Limits checked by ValidateConfig.
inline constexpr uint32_t kMaxQueueSize = 0x7fffffff;  // keeps >= 2 laps
inline constexpr uint64_t kMaxMessageDataSizeBytes = uint64_t{1} << 30;
inline constexpr uint64_t kMaxRegionSizeBytes = uint64_t{1} << 40;
// About 146 years: keeps the age comparison in int64 nanoseconds.
inline constexpr uint64_t kMaxMinMessageAgeNs = uint64_t{1} << 62;
// Bounds the pin scan each Send makes when pinning is used (a snapshot of
// every pinner's word on the stack).
inline constexpr uint32_t kMaxPinners = 64;

// OK, or InvalidArgument naming the offending field: zero queue_size,
// num_senders or message size; num_pinners above kMaxPinners; more messages
// (queue_size + num_senders * (1 + num_pinners)) than
// an Index can address; sizes whose region would exceed kMaxRegionSizeBytes;
// min_message_age_ns above kMaxMinMessageAgeNs.
absl::Status ValidateConfig(const QueueConfig& config);

// Exact size in bytes of a channel region for `config`, or the
// ValidateConfig error.
absl::StatusOr<uint64_t> QueueMemorySize(const QueueConfig& config);

}  // namespace lockless

#endif  // LOCKLESS_IPC_QUEUE_CONFIG_H_
