#include "testing/queue_memory.h"

#include <sys/mman.h>

#include <cstdio>
#include <cstdlib>

#include "absl/status/statusor.h"

namespace lockless {
namespace testing {

QueueMemory::QueueMemory(const QueueConfig& config) {
  absl::StatusOr<uint64_t> size = QueueMemorySize(config);
  if (!size.ok()) {
    std::fprintf(stderr, "QueueMemory: %s\n", size.status().ToString().c_str());
    std::abort();
  }
  size_bytes_ = *size;
  // Anonymous mappings are zero-filled, as a fresh channel file would be.
  void* const data = mmap(nullptr, size_bytes_, PROT_READ | PROT_WRITE,
                          MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (data == MAP_FAILED) {
    std::perror("QueueMemory: mmap");
    std::abort();
  }
  data_ = data;
}

QueueMemory::~QueueMemory() {
  if (data_ != nullptr) munmap(data_, size_bytes_);
}

}  // namespace testing
}  // namespace lockless
