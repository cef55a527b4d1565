#include "sync/internal/hook_state.h"

namespace lockless {
namespace internal {
namespace hook_state {

std::atomic<std::ptrdiff_t> robust_list_offset{0};
std::atomic<FutexWriteObserver> before_futex_write{nullptr};
std::atomic<FutexWriteObserver> after_futex_write{nullptr};

static_assert(std::atomic<std::ptrdiff_t>::is_always_lock_free);
static_assert(std::atomic<FutexWriteObserver>::is_always_lock_free);

}  // namespace hook_state
}  // namespace internal
}  // namespace lockless
