// QueueMemory: a zero-filled shared anonymous mapping sized for a queue
// configuration, like a freshly created channel file. Test-only.
#ifndef LOCKLESS_TESTING_QUEUE_MEMORY_H_
#define LOCKLESS_TESTING_QUEUE_MEMORY_H_

#include <cstddef>

#include "ipc/queue_config.h"

namespace lockless {
namespace testing {

// Page-aligned, big enough for `config`; shared, so forked children see it
// too.
class QueueMemory {
 public:
  // Aborts (test-only helper) if the config is invalid or mmap fails.
  explicit QueueMemory(const QueueConfig& config);
  ~QueueMemory();
  QueueMemory(const QueueMemory&) = delete;
  QueueMemory& operator=(const QueueMemory&) = delete;

  void* data() const { return data_; }
  size_t size_bytes() const { return size_bytes_; }

 private:
  void* data_ = nullptr;
  size_t size_bytes_ = 0;
};

}  // namespace testing
}  // namespace lockless

#endif  // LOCKLESS_TESTING_QUEUE_MEMORY_H_
