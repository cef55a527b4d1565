#include "tools/demo/options.h"

#include <cstdint>

#include "absl/strings/str_format.h"

namespace lockless {
namespace demo {

std::string ProducerName(int id) { return absl::StrFormat("P%d", id); }

QueueConfig DemoConfig(const DemoOptions& options) {
  QueueConfig config;
  // One slot per concurrently running producer and no spare: the replacement
  // can only get a slot by recovering the dead producer's.
  config.num_senders = kInitialProducers;
  config.num_watchers = 2;
  config.queue_size = static_cast<uint32_t>(options.queue_size);
  config.message_data_size_bytes = 64;
  return config;
}

}  // namespace demo
}  // namespace lockless
