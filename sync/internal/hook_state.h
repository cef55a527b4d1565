// Internal: the state behind sync/test_hooks.h, read on the locking paths.
// Only sync/ includes this.
#ifndef LOCKLESS_SYNC_INTERNAL_HOOK_STATE_H_
#define LOCKLESS_SYNC_INTERNAL_HOOK_STATE_H_

#include <atomic>
#include <cstddef>

#include "sync/test_hooks.h"

namespace lockless {
namespace internal {
namespace hook_state {

// All three are written only while single-threaded (see test_hooks.h), so
// every access is relaxed: the atomics exist only so that a misuse is not
// undefined behaviour. Defaults: 0 / nullptr (hooks off).
extern std::atomic<std::ptrdiff_t> robust_list_offset;
extern std::atomic<FutexWriteObserver> before_futex_write;
extern std::atomic<FutexWriteObserver> after_futex_write;

inline std::ptrdiff_t RobustListOffset() {
  // Relaxed: see above.
  return robust_list_offset.load(std::memory_order_relaxed);
}

inline void BeforeFutexWrite(void* word) {
  // Relaxed: see above.
  FutexWriteObserver observer =
      before_futex_write.load(std::memory_order_relaxed);
  if (__builtin_expect(observer != nullptr, 0)) observer(word);
}

inline void AfterFutexWrite(void* word) {
  // Relaxed: see above.
  FutexWriteObserver observer =
      after_futex_write.load(std::memory_order_relaxed);
  if (__builtin_expect(observer != nullptr, 0)) observer(word);
}

}  // namespace hook_state
}  // namespace internal
}  // namespace lockless

#endif  // LOCKLESS_SYNC_INTERNAL_HOOK_STATE_H_
