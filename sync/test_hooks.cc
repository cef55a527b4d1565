#include "sync/test_hooks.h"

#include "sync/internal/hook_state.h"

namespace lockless {
namespace internal {

void SetRobustListOffset(std::ptrdiff_t offset) {
  // Relaxed: set while single-threaded, before any mutex is held (contract);
  // readers on other threads are ordered by thread creation.
  hook_state::robust_list_offset.store(offset, std::memory_order_relaxed);
}

void SetFutexWriteObservers(FutexWriteObserver before,
                            FutexWriteObserver after) {
  // Relaxed: same contract as SetRobustListOffset.
  hook_state::before_futex_write.store(before, std::memory_order_relaxed);
  hook_state::after_futex_write.store(after, std::memory_order_relaxed);
}

}  // namespace internal
}  // namespace lockless
