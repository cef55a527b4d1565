#include "sync/robust_mutex.h"

#include <cerrno>

#include "index/internal/check.h"
#include "sync/internal/hook_state.h"
#include "sync/internal/syscalls.h"
#include "sync/robust_list.h"

#if defined(__SANITIZE_THREAD__)
#include <sanitizer/tsan_interface.h>
#endif

// Protocol (both Lock and Unlock), with the states a death can leave:
//
//   Lock:   1. list_op_pending = entry        (word not ours yet)
//           2. word 0 -> tid (CAS or kernel)  (ours; covered by pending)
//           3. link entry at the list front   (ours; covered by pending, then
//                                              by the list as well)
//           4. list_op_pending = null         (ours; covered by the list)
//           5. if OWNER_DIED: clear that bit  (ours; covered by the list)
//   Unlock: 1. list_op_pending = entry        (ours; list + pending)
//           2. unlink entry                   (ours; covered by pending)
//           3. word tid -> 0 (CAS or kernel)  (not ours; the kernel ignores a
//                                              pending entry whose TID is not
//                                              the dying thread's)
//           4. list_op_pending = null
//
// A death in any state therefore leaves the word either not ours, or ours and
// reachable from the head or from list_op_pending, so the kernel marks it
// FUTEX_OWNER_DIED. The robust-list steps are compiler-ordered only (see
// robust_list.cc); the word changes are atomic RMWs or syscalls, which the
// compiler does not move across the compiler barriers around them.
//
// ThreadSanitizer cannot see the synchronisation the kernel provides in
// FUTEX_LOCK_PI / FUTEX_UNLOCK_PI (the hand-over writes the word in the
// kernel), so those paths carry explicit __tsan_acquire/__tsan_release
// annotations on the word's address; the userspace compare-exchanges are
// visible to it directly.

namespace lockless {
namespace {

using internal::hook_state::AfterFutexWrite;
using internal::hook_state::BeforeFutexWrite;

inline void TsanAcquire(void* address) {
#if defined(__SANITIZE_THREAD__)
  __tsan_acquire(address);
#else
  (void)address;
#endif
}

inline void TsanRelease(void* address) {
#if defined(__SANITIZE_THREAD__)
  __tsan_release(address);
#else
  (void)address;
#endif
}

inline uint32_t* KernelWord(std::atomic<uint32_t>* word) {
  return reinterpret_cast<uint32_t*>(word);
}

// Compare-exchange on the word, reported to the write observers.
inline bool ObservedCas(std::atomic<uint32_t>& word, uint32_t& expected,
                        uint32_t desired, std::memory_order success) {
  BeforeFutexWrite(&word);
  // Failure is relaxed everywhere: a failed attempt only tells the caller
  // which path to take next; any synchronisation happens on that path.
  const bool done = word.compare_exchange_strong(expected, desired, success,
                                                 std::memory_order_relaxed);
  AfterFutexWrite(&word);
  return done;
}

// Clears FUTEX_OWNER_DIED, which the caller (owner) found set.
inline void ClearOwnerDied(std::atomic<uint32_t>& word) {
  BeforeFutexWrite(&word);
  // Relaxed: only the owner clears the bit and it carries no data; an atomic
  // RMW (not a store) because the kernel may concurrently set FUTEX_WAITERS.
  word.fetch_and(~static_cast<uint32_t>(FUTEX_OWNER_DIED),
                 std::memory_order_relaxed);
  AfterFutexWrite(&word);
}

// FUTEX_LOCK_PI until it succeeds or fails for good. 0 or -errno.
int KernelLock(std::atomic<uint32_t>& word) {
  for (;;) {
    BeforeFutexWrite(&word);
    const int result = internal::SysFutexLockPi(KernelWord(&word));
    AfterFutexWrite(&word);
    // EINTR: not expected for LOCK_PI, harmless to retry. EAGAIN: the owner
    // is exiting and the kernel has not yet processed its robust list.
    if (result == -EINTR || result == -EAGAIN) continue;
    if (result == 0) TsanAcquire(&word);
    return result;
  }
}

int KernelTryLock(std::atomic<uint32_t>& word) {
  BeforeFutexWrite(&word);
  const int result = internal::SysFutexTryLockPi(KernelWord(&word));
  AfterFutexWrite(&word);
  if (result == 0) TsanAcquire(&word);
  return result;
}

}  // namespace

LockResult RobustMutex::Lock() {
  const pid_t tid = internal::CurrentTid();
  // Relaxed: we only compare the owner with ourselves, and only this thread
  // ever stores its own tid.
  if (OwnerTid(futex.load(std::memory_order_relaxed)) == tid) {
    return LockResult::kError;  // EDEADLK, without bothering the kernel.
  }
  void* const entry = internal::RobustEntryFor(&robust_next);
  internal::RobustListSetPending(entry);

  uint32_t expected = 0;
  // Acquire: pairs with the release compare-exchange in Unlock (or, through
  // the kernel, with the previous owner's FUTEX_UNLOCK_PI).
  if (!ObservedCas(futex, expected, static_cast<uint32_t>(tid),
                   std::memory_order_acquire)) {
    const int result = KernelLock(futex);
    if (result != 0) {
      internal::RobustListClearPending();
      return LockResult::kError;  // EDEADLK, ESRCH, EINVAL, ...
    }
  }
  internal::RobustListLink(entry);
  internal::RobustListClearPending();

  // Acquire: after a kernel acquisition the syscall already ordered us after
  // the previous owner (a full barrier in practice); this load makes the
  // C++-level acquire explicit. It also reads FUTEX_OWNER_DIED, which the
  // kernel keeps when it hands a dead owner's mutex to us.
  if (OwnerDied(futex.load(std::memory_order_acquire))) {
    ClearOwnerDied(futex);
    return LockResult::kOwnerDied;
  }
  return LockResult::kAcquired;
}

TryLockResult RobustMutex::TryLock() { return TryLockImpl(true); }

TryLockResult RobustMutex::TryLockKeepingOwnerDied() {
  return TryLockImpl(false);
}

void RobustMutex::ClearOwnerDiedMark() {
  // Relaxed: only the owner itself compares the word with its tid.
  LOCKLESS_CHECK(OwnerTid(futex.load(std::memory_order_relaxed)) ==
                     internal::CurrentTid(),
                 "RobustMutex::ClearOwnerDiedMark called by a thread that does "
                 "not own the mutex");
  ClearOwnerDied(futex);
}

TryLockResult RobustMutex::TryLockImpl(bool clear_owner_died) {
  const pid_t tid = internal::CurrentTid();
  // Relaxed: a hint for the fast paths; the compare-exchange below decides.
  const uint32_t seen = futex.load(std::memory_order_relaxed);
  if (OwnerTid(seen) == tid) return TryLockResult::kError;
  if (OwnerTid(seen) != 0) return TryLockResult::kBusy;  // No write, no syscall.

  void* const entry = internal::RobustEntryFor(&robust_next);
  internal::RobustListSetPending(entry);
  uint32_t expected = 0;
  // Acquire: as in Lock.
  if (!ObservedCas(futex, expected, static_cast<uint32_t>(tid),
                   std::memory_order_acquire)) {
    if (OwnerTid(expected) != 0) {
      internal::RobustListClearPending();
      return TryLockResult::kBusy;
    }
    // No owner but not 0: a dead owner (OWNER_DIED) or a hand-over in
    // progress (WAITERS). Only the kernel may resolve those.
    const int result = KernelTryLock(futex);
    if (result != 0) {
      internal::RobustListClearPending();
      // EAGAIN: the owner is exiting; report busy rather than wait.
      return (result == -EBUSY || result == -EAGAIN || result == -EINTR)
                 ? TryLockResult::kBusy
                 : TryLockResult::kError;
    }
  }
  internal::RobustListLink(entry);
  internal::RobustListClearPending();

  // Acquire: as in Lock.
  if (OwnerDied(futex.load(std::memory_order_acquire))) {
    if (clear_owner_died) ClearOwnerDied(futex);
    return TryLockResult::kOwnerDied;
  }
  return TryLockResult::kAcquired;
}

bool RobustMutex::MarkOwnerDead(uint32_t seen) {
  if (OwnerTid(seen) == 0 || OwnerDied(seen)) return false;
  const uint32_t marked = (seen & FUTEX_WAITERS) | FUTEX_OWNER_DIED;
  uint32_t expected = seen;
  // Acquire: as for a kernel mark, whatever the dead owner wrote before it
  // died is what the next taker repairs (its stores preceded its death, which
  // the caller observed through /proc, a system call).
  return ObservedCas(futex, expected, marked, std::memory_order_acquire);
}

void RobustMutex::Unlock() {
  const pid_t tid = internal::CurrentTid();
  // Relaxed: only this thread can have stored its own tid.
  LOCKLESS_CHECK(OwnerTid(futex.load(std::memory_order_relaxed)) == tid,
                 "RobustMutex::Unlock called by a thread that does not own "
                 "the mutex");
  void* const entry = internal::RobustEntryFor(&robust_next);
  internal::RobustListSetPending(entry);
  internal::RobustListUnlink(entry);

  TsanRelease(&futex);  // For the FUTEX_UNLOCK_PI path; see the top comment.
  uint32_t expected = static_cast<uint32_t>(tid);
  // Release: pairs with the acquire compare-exchange (or the acquire load
  // after the kernel path) in the next Lock/TryLock.
  if (!ObservedCas(futex, expected, 0, std::memory_order_release)) {
    // FUTEX_WAITERS or FUTEX_OWNER_DIED is set: the kernel must hand over.
    BeforeFutexWrite(&futex);
    const int result = internal::SysFutexUnlockPi(KernelWord(&futex));
    AfterFutexWrite(&futex);
    LOCKLESS_CHECK(result == 0, "FUTEX_UNLOCK_PI failed on a held mutex");
  }
  internal::RobustListClearPending();
}

}  // namespace lockless
