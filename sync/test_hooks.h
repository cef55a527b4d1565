// TEST ONLY. Two hooks for the death-test harness (DESIGN.md section 8); never
// call them from production code.
//
// Both are off by default and free when off (one relaxed load of a global and
// a predicted-not-taken branch). Set them only while the process has a single
// thread (typically right after fork() in a harness child) and before that
// thread holds any RobustMutex: the library reads them without
// synchronisation other than that.
//
// Thread-safety: not thread-safe to set (see above); reading is done by the
// library. Real-time safety: no syscalls, no allocation.
#ifndef LOCKLESS_SYNC_TEST_HOOKS_H_
#define LOCKLESS_SYNC_TEST_HOOKS_H_

#include <cstddef>

namespace lockless {
namespace internal {

// Robust-list address offset. `offset` bytes are added to every address the
// library hands to the kernel's robust list (each entry pointer stored in the
// list head, in a node's next link, and in list_op_pending), and the library
// reads and writes every RobustMutex's list links (robust_prev/robust_next)
// through node address + offset as well. So the kernel's death-time walk,
// which follows the links and writes FUTEX_OWNER_DIED at entry +
// futex_offset, touches only the mapping at +offset, and no robust-list
// bookkeeping write goes through the primary mapping.
//
// Intended use: the region is mapped twice, a primary mapping (made read-only
// while tracing writes) and a writable twin of the same pages at primary +
// offset. The RobustMutex fields seen through the primary then show stale (or
// zero) links, which is harmless: only the owning thread follows them.
//
// While an offset is set, the thread must not also hold glibc robust pthread
// mutexes (their list entries are not offset; mixing is not supported), and
// every RobustMutex it locks must lie inside the twinned region. 0 = off.
void SetRobustListOffset(std::ptrdiff_t offset);

// Futex-word write observers. `before` is called immediately before and
// `after` immediately after every write the library makes, or may make, to a
// RobustMutex futex word: each userspace compare-exchange (even one that then
// fails), each fetch_and, and each futex syscall that may write the word
// (FUTEX_LOCK_PI, FUTEX_TRYLOCK_PI, FUTEX_UNLOCK_PI). The argument is the
// word's address as the caller passed the mutex (the primary mapping). Either
// may be nullptr. Observers must be async-signal-safe-friendly: they run on
// the locking path, must not allocate, and must not lock RobustMutexes.
// (Event words are not reported: Event only stores to its word from
// userspace and the kernel never writes it.)
using FutexWriteObserver = void (*)(void* futex_word_address);
void SetFutexWriteObservers(FutexWriteObserver before, FutexWriteObserver after);

}  // namespace internal
}  // namespace lockless

#endif  // LOCKLESS_SYNC_TEST_HOOKS_H_
