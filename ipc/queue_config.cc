#include "ipc/queue_config.h"

#include "absl/strings/str_format.h"
#include "ipc/internal/queue_layout.h"

namespace lockless {

std::string QueueConfig::DebugString() const {
  return absl::StrFormat(
      "{num_watchers: %u, num_senders: %u, queue_size: %u, "
      "message_data_size_bytes: %u, min_message_age_ns: %u, num_pinners: %u}",
      num_watchers, num_senders, queue_size, message_data_size_bytes,
      min_message_age_ns, num_pinners);
}

absl::Status ValidateConfig(const QueueConfig& config) {
  if (config.queue_size == 0) {
    return absl::InvalidArgumentError("queue_size must be at least 1");
  }
  if (config.queue_size > kMaxQueueSize) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "queue_size %u exceeds the maximum %u (the 32-bit queue index must "
        "hold at least two laps)",
        config.queue_size, kMaxQueueSize));
  }
  if (config.num_senders == 0) {
    return absl::InvalidArgumentError("num_senders must be at least 1");
  }
  if (config.message_data_size_bytes == 0) {
    return absl::InvalidArgumentError(
        "message_data_size_bytes must be at least 1");
  }
  if (config.message_data_size_bytes > kMaxMessageDataSizeBytes) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "message_data_size_bytes %u exceeds the maximum %u",
        config.message_data_size_bytes, kMaxMessageDataSizeBytes));
  }
  if (config.min_message_age_ns > kMaxMinMessageAgeNs) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "min_message_age_ns %u exceeds the maximum %u",
        config.min_message_age_ns, kMaxMinMessageAgeNs));
  }
  if (config.num_pinners > kMaxPinners) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "num_pinners %u exceeds the maximum %u", config.num_pinners,
        kMaxPinners));
  }
  // Each sender owns its scratch plus num_pinners parked messages.
  const uint64_t num_messages =
      uint64_t{config.queue_size} +
      uint64_t{config.num_senders} * (1 + uint64_t{config.num_pinners});
  if (num_messages > Index::MaxMessages()) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "queue_size + num_senders * (1 + num_pinners) = %u messages, but a %u-bit ring entry "
        "addresses at most %u",
        num_messages, sizeof(Index) * 8, Index::MaxMessages()));
  }
  // Right after the wrap point, index q and its previous lap differ by
  // (MaxIndex - queue_size); if the ring entry's queue-index bits cannot tell
  // them apart, senders and readers would mistake one lap for the other.
  const uint32_t wrap = QueueIndex::MaxIndex(QueueIndex::kMaxValue,
                                             config.queue_size);
  if (((wrap - config.queue_size) & Index::kQueueIndexMask) == 0) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "queue_size %u cannot be used with %u-bit ring entries: the lap "
        "before the queue index wrap point aliases the lap after it; pick "
        "another size",
        config.queue_size, sizeof(Index) * 8));
  }
  // Every term below is bounded (32-bit counts times < 2^31 bytes), so the
  // 64-bit sum in ComputeLayout cannot overflow; cap the total instead.
  return absl::OkStatus();
}

absl::StatusOr<uint64_t> QueueMemorySize(const QueueConfig& config) {
  absl::StatusOr<internal::Layout> layout = internal::ComputeLayout(config);
  if (!layout.ok()) return layout.status();
  return layout->total_size_bytes;
}

}  // namespace lockless
