// A robust, priority-inheritance mutex for shared memory. Not recursive, not
// a condition-variable mutex, not for use inside signal handlers.
//
// RobustMutex is a plain struct meant to be placed in memory mapped MAP_SHARED
// by several processes; all-zero bytes is a valid unlocked mutex, so the
// zero-fill of a fresh mapping is its initialisation (no constructor needs to
// run, no destructor requirements; `RobustMutex m;` is also unlocked). It is built directly on the kernel's PI futex
// protocol (FUTEX_LOCK_PI / FUTEX_TRYLOCK_PI / FUTEX_UNLOCK_PI, always
// process-shared):
//   - the futex word holds the owner's thread id (FUTEX_TID_MASK), plus
//     FUTEX_WAITERS (the kernel has sleepers, so unlock must go through it)
//     and FUTEX_OWNER_DIED (the previous owner died holding it);
//   - uncontended Lock and Unlock never enter the kernel: one compare-exchange
//     0 -> tid, respectively tid -> 0;
//   - a thread blocked in Lock lends its priority to the owner (PI), which is
//     what lets a real-time thread share it with lower-priority ones;
//   - held mutexes are linked into the calling thread's kernel robust list
//     (see robust_list.h), so if the owner dies - a thread exits, the process
//     is SIGKILLed - the kernel sets FUTEX_OWNER_DIED and the next Lock
//     returns kOwnerDied. Death at any instruction inside Lock/Unlock is
//     covered (through the robust list's list_op_pending slot).
//
// Memory ordering: everything the owner did before Unlock() happens-before
// everything the next owner does after its Lock()/TryLock() returns kAcquired
// or kOwnerDied (acquire on lock, release on unlock, also across processes).
// After kOwnerDied, the state the dead owner was modifying may be half-written:
// the caller must repair it.
//
// Thread-safety: all calls are thread-safe and process-safe. Ownership is per
// thread: only the locking thread may Unlock. Do not Lock a mutex you already
// hold (kError), and do not fork() while holding one expecting the child to
// own it (the child's thread is a different owner).
//
// Real-time safety: uncontended Lock/TryLock/Unlock make no syscall and do not
// allocate (after the calling thread's first RobustMutex call, which makes a
// few short syscalls to find its robust list). Lock blocks (in FUTEX_LOCK_PI)
// while another thread holds it; Unlock makes FUTEX_UNLOCK_PI when there are
// waiters, which does not block. TryLock never blocks; it makes a
// FUTEX_TRYLOCK_PI only when the word has no owner but is not 0 (dead owner
// or hand-over in progress).
#ifndef LOCKLESS_SYNC_ROBUST_MUTEX_H_
#define LOCKLESS_SYNC_ROBUST_MUTEX_H_

#include <linux/futex.h>
#include <pthread.h>
#include <sys/types.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "sync/robust_list.h"

namespace lockless {

// Outcome of RobustMutex::Lock().
enum class LockResult {
  // The caller now owns the mutex.
  kAcquired,
  // The caller now owns the mutex, and its previous owner died holding it.
  // FUTEX_OWNER_DIED has already been cleared from the word; the caller must
  // repair the state the mutex protects before unlocking.
  kOwnerDied,
  // The lock failed and the caller does not own it: the caller already held
  // it (EDEADLK), or the word is corrupt (names a thread that does not exist:
  // ESRCH; or otherwise invalid: EINVAL).
  kError,
};

// Outcome of RobustMutex::TryLock().
enum class TryLockResult {
  kAcquired,   // As LockResult::kAcquired.
  kOwnerDied,  // As LockResult::kOwnerDied.
  kBusy,       // Another thread holds it; the caller does not own it.
  kError,      // As LockResult::kError (including: the caller already owns it).
};

// Helpers on raw futex words, usable on a read-only mapping (dump tool).
// The owning thread id, or 0 when free (or when the owner died).
constexpr pid_t OwnerTid(uint32_t word) {
  return static_cast<pid_t>(word & FUTEX_TID_MASK);
}
// Whether the owner-died bit is set.
constexpr bool OwnerDied(uint32_t word) {
  return (word & FUTEX_OWNER_DIED) != 0;
}
// Whether the kernel has threads blocked on the word.
constexpr bool HasWaiters(uint32_t word) {
  return (word & FUTEX_WAITERS) != 0;
}

struct RobustMutex {
  // Blocks (with priority inheritance) until the calling thread owns the
  // mutex. See LockResult. Syscall only when contended or the owner died.
  [[nodiscard]] LockResult Lock();

  // Never blocks. See TryLockResult.
  [[nodiscard]] TryLockResult TryLock();

  // As TryLock, except that on kOwnerDied the word keeps FUTEX_OWNER_DIED
  // (with the caller's tid) until the caller calls ClearOwnerDiedMark. For
  // an owner that must first publish something that observers of the word
  // read while the mark is clear (ipc's setup lock records its holder: until
  // then the dead holder's record is there, and may name the same tid).
  // Unlock requires the mark cleared first.
  [[nodiscard]] TryLockResult TryLockKeepingOwnerDied();
  // Clears FUTEX_OWNER_DIED from the word of a mutex the calling thread
  // owns (after TryLockKeepingOwnerDied returned kOwnerDied). One atomic
  // fetch_and, reported to the write observers; aborts if the caller is not
  // the owner.
  void ClearOwnerDiedMark();

 private:
  TryLockResult TryLockImpl(bool clear_owner_died);

 public:

  // Releases the mutex. The calling thread must own it; otherwise this aborts
  // with a message (an invariant of the calling code, not a runtime error).
  void Unlock();

  // Does to the word what the kernel does when it finds the mutex on a dead
  // owner's robust list: if the word still equals `seen` (which names an
  // owner tid and no FUTEX_OWNER_DIED), replaces it with FUTEX_OWNER_DIED
  // (keeping FUTEX_WAITERS). Returns whether it did. Afterwards Lock/TryLock
  // return kOwnerDied to the next taker, exactly as after a kernel mark.
  //
  // For owners the kernel did not mark (robust list lost, OOM reaping, tid
  // reused). The caller must have proven that the thread `seen` names is not
  // the owner (owner_liveness.h), and must rule out that the word returns to
  // `seen` with a live owner between its proof and this call (ABA): e.g. by
  // holding a lock every locker of this mutex holds too. One compare-exchange
  // (acquire: the taker then repairs what the dead owner left), reported to
  // the write observers; no syscall. A waiter already blocked in
  // FUTEX_LOCK_PI behind a reused tid stays blocked until it times out; a
  // new locker then attaches behind the same kernel state until those have
  // left, after which the kernel hands the mutex over as marked.
  bool MarkOwnerDead(uint32_t seen);

  // Whether the calling thread owns the mutex. A relaxed read: exact for the
  // owner itself, only a snapshot for others (which always get false). Two
  // loads (the word and a thread-local), no syscall, no call: hot-path safe.
  bool IsLockedByMe() const {
    const pid_t me = internal::LockerTidOrZero();
    // Relaxed: only this thread ever stores its own tid into the word, and
    // it reads its own stores in order; any other value means "not me".
    return me != 0 && OwnerTid(futex.load(std::memory_order_relaxed)) == me;
  }

  // Relaxed read of the futex word, for inspection and printing only.
  uint32_t RawOwnerWord() const {
    // Relaxed: a snapshot for display; orders nothing.
    return futex.load(std::memory_order_relaxed);
  }

  // ---- Fields. All zero = unlocked, unlinked. ----

  // The PI futex word. Bits 0-29 (FUTEX_TID_MASK): owner's tid, 0 = free.
  // Bit 30 (FUTEX_OWNER_DIED): set by the kernel when the owner died holding
  // it; Lock clears it before returning kOwnerDied (TryLockKeepingOwnerDied
  // leaves that to ClearOwnerDiedMark). Bit 31 (FUTEX_WAITERS):
  // set by the kernel while threads sleep on it. Idle: 0. Written by lockers
  // (compare-exchange 0 -> tid), the owner (tid -> 0, clearing OWNER_DIED)
  // and the kernel (PI operations, owner death).
  std::atomic<uint32_t> futex{0};

  // Unused; keeps the futex word and the list links at glibc's relative
  // positions (the bytes of pthread_mutex_t::__data between __lock and
  // __list). Always 0.
  unsigned char reserved[offsetof(pthread_mutex_t, __data.__list.__prev) -
                         sizeof(std::atomic<uint32_t>)] = {};

  // Robust-list links (glibc's __list.__prev / __list.__next layout). Only
  // meaningful to the owning thread, which writes them while locking and
  // unlocking, and to the kernel when that thread dies; glibc may rewrite
  // them while unlinking one of its own mutexes next to this one. They hold
  // addresses in the owner's address space, so other processes must ignore
  // them; stale values after an owner's death are harmless (overwritten by
  // the next Lock). Idle: nullptr. While the test robust-list offset is set,
  // they are written at this address + offset instead (test_hooks.h).
  void* robust_prev = nullptr;
  void* robust_next = nullptr;
};

static_assert(std::atomic<uint32_t>::is_always_lock_free);
static_assert(sizeof(std::atomic<uint32_t>) == sizeof(uint32_t));
static_assert(std::is_standard_layout_v<RobustMutex>);
// An aggregate (so an implicit-lifetime type: zero-filled shared memory is a
// valid RobustMutex without running a constructor). The default member
// initialisers only make a default-initialised local (`RobustMutex m;`) safe.
static_assert(std::is_aggregate_v<RobustMutex>);
static_assert(std::is_trivially_destructible_v<RobustMutex>);
static_assert(offsetof(RobustMutex, futex) == 0);
// The kernel finds the word at entry + futex_offset with entry = &robust_next.
static_assert(static_cast<std::ptrdiff_t>(offsetof(RobustMutex, futex)) -
                  static_cast<std::ptrdiff_t>(
                      offsetof(RobustMutex, robust_next)) ==
              internal::kGlibcRobustFutexOffset);
// glibc's dequeue writes a neighbour's prev at entry + this offset.
static_assert(static_cast<std::ptrdiff_t>(offsetof(RobustMutex, robust_prev)) -
                  static_cast<std::ptrdiff_t>(
                      offsetof(RobustMutex, robust_next)) ==
              internal::kGlibcRobustPrevOffset);
static_assert(alignof(RobustMutex) == alignof(void*));
static_assert(sizeof(RobustMutex) ==
              offsetof(RobustMutex, robust_next) + sizeof(void*));

}  // namespace lockless

#endif  // LOCKLESS_SYNC_ROBUST_MUTEX_H_
