// HeldLock: owns a locked RobustMutex and unlocks it on destruction. Move-only.
// Sender and Watcher each hold their slot's mutex through one.
#ifndef LOCKLESS_IPC_INTERNAL_HELD_LOCK_H_
#define LOCKLESS_IPC_INTERNAL_HELD_LOCK_H_

#include <utility>

#include "sync/robust_mutex.h"

namespace lockless {
namespace internal {

class HeldLock {
 public:
  HeldLock() = default;
  // `mutex` must be locked by the calling thread.
  explicit HeldLock(RobustMutex* mutex) : mutex_(mutex) {}
  HeldLock(HeldLock&& other) noexcept
      : mutex_(std::exchange(other.mutex_, nullptr)) {}
  HeldLock& operator=(HeldLock&& other) noexcept {
    if (this != &other) {
      Release();
      mutex_ = std::exchange(other.mutex_, nullptr);
    }
    return *this;
  }
  HeldLock(const HeldLock&) = delete;
  HeldLock& operator=(const HeldLock&) = delete;
  ~HeldLock() { Release(); }

 private:
  void Release() {
    if (mutex_ != nullptr) std::exchange(mutex_, nullptr)->Unlock();
  }

  RobustMutex* mutex_ = nullptr;
};

}  // namespace internal
}  // namespace lockless

#endif  // LOCKLESS_IPC_INTERNAL_HELD_LOCK_H_
