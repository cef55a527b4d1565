// HeldLock: owns a RobustMutex locked by the thread that made it, and unlocks
// it on destruction if that thread still holds it. Move-only. Sender and
// Watcher each hold their slot's mutex through one.
#ifndef LOCKLESS_IPC_INTERNAL_HELD_LOCK_H_
#define LOCKLESS_IPC_INTERNAL_HELD_LOCK_H_

#include <sys/types.h>

#include <utility>

#include "sync/robust_list.h"
#include "sync/robust_mutex.h"

namespace lockless {
namespace internal {

class HeldLock {
 public:
  HeldLock() = default;
  // `mutex` must be locked by the calling thread.
  explicit HeldLock(RobustMutex* mutex)
      : mutex_(mutex), taker_(LockerTidOrZero()) {}
  HeldLock(HeldLock&& other) noexcept
      : mutex_(std::exchange(other.mutex_, nullptr)),
        taker_(std::exchange(other.taker_, 0)) {}
  HeldLock& operator=(HeldLock&& other) noexcept {
    if (this != &other) {
      Release();
      mutex_ = std::exchange(other.mutex_, nullptr);
      taker_ = std::exchange(other.taker_, 0);
    }
    return *this;
  }
  HeldLock(const HeldLock&) = delete;
  HeldLock& operator=(const HeldLock&) = delete;
  ~HeldLock() { Release(); }

  // Whether the calling thread is the one that took this lock and still
  // holds it. Not merely "the mutex is mine": after the taker exited, the
  // kernel released the mutex and another thread may have claimed it since,
  // under its own HeldLock, maybe the very thread now calling. One
  // thread-local load and one relaxed load of the word; RT-safe.
  bool HeldByCaller() const {
    // relaxed: only the owner stores its own tid into the word, and reads
    // its own stores in order; any other value means "not the caller".
    return mutex_ != nullptr && taker_ != 0 && taker_ == LockerTidOrZero() &&
           OwnerTid(mutex_->futex.load(std::memory_order_relaxed)) == taker_;
  }

 private:
  // A lock whose taker exited was released by the kernel (and may have a new
  // owner since); one destroyed on a foreign thread stays with its taker
  // until that thread exits. Neither may be unlocked from here.
  void Release() {
    if (HeldByCaller()) mutex_->Unlock();
    mutex_ = nullptr;
    taker_ = 0;
  }

  RobustMutex* mutex_ = nullptr;
  pid_t taker_ = 0;  // The tid of the thread that locked it.
};

}  // namespace internal
}  // namespace lockless

#endif  // LOCKLESS_IPC_INTERNAL_HELD_LOCK_H_
