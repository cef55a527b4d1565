#include "tools/bridge/forward_record.h"

namespace lockless::bridge {

std::string ForwardedChannelName(const std::string& channel) {
  return channel + ".forwarded";
}

QueueConfig ForwardedChannelConfig(const QueueConfig& channel_config) {
  QueueConfig config;
  config.queue_size = channel_config.queue_size;
  config.message_data_size_bytes = sizeof(ForwardRecord);
  // The bridge's importer (and its restarted successor) send.
  config.num_senders = 2;
  config.num_watchers = 4;
  return config;
}

std::optional<ForwardRecord> LookUpForwarded(const ReadOnlyChannel& forwarded,
                                             QueueIndex local_queue_index) {
  QueueIndex index = forwarded.LatestQueueIndex();
  if (!index.valid()) return std::nullopt;
  for (uint32_t i = 0; i < forwarded.config().queue_size; ++i) {
    ForwardRecord record;
    MessageInfo info;
    if (forwarded.Read(index, &info, &record, sizeof(record)) !=
            ReadResult::kGood ||
        info.length != sizeof(record)) {
      return std::nullopt;
    }
    if (record.local_queue_index == local_queue_index.index()) return record;
    if (index.index() == 0) return std::nullopt;
    index = index.DecrementBy(1);
  }
  return std::nullopt;
}

}  // namespace lockless::bridge
