// HeldLock: owns a locked RobustMutex and unlocks it on destruction, if the
// destroying thread still owns it. Move-only. Sender and Watcher each hold
// their slot's mutex through one.
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
  // A lock whose thread exited was released by the kernel (and may have a
  // new owner since); one destroyed on a foreign thread stays with its
  // owner until that thread exits. Neither may be unlocked from here.
  void Release() {
    RobustMutex* const mutex = std::exchange(mutex_, nullptr);
    if (mutex != nullptr && mutex->IsLockedByMe()) mutex->Unlock();
  }

  RobustMutex* mutex_ = nullptr;
};

}  // namespace internal
}  // namespace lockless

#endif  // LOCKLESS_IPC_INTERNAL_HELD_LOCK_H_
