// The only place in sync/ that calls syscall(2). Internal: only sync/ uses it.
//
// One tiny function per raw system call the package needs. Every function:
//   - returns 0 (or the documented non-negative value) on success and -errno
//     on failure, never touching the caller's errno semantics beyond that;
//   - is async-signal-safe and allocation-free;
//   - is a system call, so it is never "real-time free": the futex lock and
//     wait calls block, the others are short and bounded.
// Futex words are always passed as the address the kernel must use (for the
// PI operations the kernel also writes through it); every futex operation
// here is SHARED (no FUTEX_PRIVATE_FLAG), so words may live in MAP_SHARED
// memory seen by several processes.
#ifndef LOCKLESS_SYNC_INTERNAL_SYSCALLS_H_
#define LOCKLESS_SYNC_INTERNAL_SYSCALLS_H_

#include <sched.h>
#include <sys/types.h>
#include <time.h>

#include <cstddef>
#include <cstdint>

namespace lockless {
namespace internal {

// gettid(2): the calling thread's kernel thread id.
pid_t SysGetTid();

// FUTEX_LOCK_PI without timeout: acquire the PI futex at `word`, blocking
// (with priority inheritance) while another thread owns it.
int SysFutexLockPi(uint32_t* word);

// FUTEX_TRYLOCK_PI: like SysFutexLockPi but returns -EBUSY instead of blocking
// (the kernel can still resolve a dead owner or a pending hand-over).
int SysFutexTryLockPi(uint32_t* word);

// FUTEX_UNLOCK_PI: release a PI futex whose userspace fast path failed (the
// word carries FUTEX_WAITERS or FUTEX_OWNER_DIED); hands it to the top waiter.
int SysFutexUnlockPi(uint32_t* word);

// FUTEX_WAIT_BITSET with FUTEX_BITSET_MATCH_ANY: sleep while *word ==
// expected, until woken or the absolute CLOCK_MONOTONIC `deadline` (nullptr:
// no deadline). -EAGAIN: value differed; -ETIMEDOUT; -EINTR.
int SysFutexWaitBitset(uint32_t* word, uint32_t expected,
                       const struct timespec* deadline);

// FUTEX_WAKE: wake up to `max_waiters` waiters; returns how many were woken.
int SysFutexWake(uint32_t* word, int max_waiters);

// get_robust_list(2) for the calling thread (pid 0).
int SysGetRobustList(void** head, size_t* length_bytes);

// set_robust_list(2) for the calling thread.
int SysSetRobustList(void* head, size_t length_bytes);

// sched_getscheduler(2) / sched_getparam(2) / sched_setscheduler(2) on pid 0,
// which on Linux means the calling *thread*. SysSchedGetScheduler returns the
// policy (possibly with SCHED_RESET_ON_FORK) or -errno.
int SysSchedGetScheduler();
int SysSchedGetParam(struct sched_param* param);
int SysSchedSetScheduler(int policy, const struct sched_param* param);

}  // namespace internal
}  // namespace lockless

#endif  // LOCKLESS_SYNC_INTERNAL_SYSCALLS_H_
