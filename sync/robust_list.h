// Internal: per-thread kernel robust-list management for RobustMutex. Only
// sync/ uses this; the queue uses RobustMutex.
//
// The kernel keeps, per thread, a pointer to a userspace "robust list head"
// (set_robust_list(2)). When the thread dies it walks the list and, for every
// futex word on it whose TID field is the dying thread, sets FUTEX_OWNER_DIED
// (clearing the TID); it does the same for the entry in the head's
// list_op_pending slot, which covers a lock or unlock that was in flight.
//
// glibc registers such a head for every thread (inside struct pthread) for its
// own robust pthread mutexes, and a thread has exactly one. So we SHARE it:
// on first use in a thread (cached thread-locally, re-done after fork) we ask
// the kernel for the registered head with get_robust_list; only if none is
// registered do we register a thread-local head of our own. Our mutexes are
// linked into that list with glibc's exact conventions, so glibc's own
// enqueue/dequeue code keeps working when it edits our nodes as neighbours:
//
//   - The list is circular and doubly linked. A node is {prev, next} (two
//     pointers, prev first). "Entry" pointers - head.list, each node's next,
//     list_op_pending - point at a node's `next` field; bit 0 set = PI futex
//     (always set for ours); strip it before following. The list ends when an
//     entry points back at the head (&head.list, which is the head itself).
//   - A node's prev points (untagged) at the previous node's next field, or at
//     the head. The head has a prev slot of its own right before it (glibc's
//     struct pthread::robust_prev), which is written when the list empties.
//   - The futex word of an entry is at entry + head.futex_offset, where
//     futex_offset = offsetof(__lock) - offsetof(__list.__next) of glibc's
//     pthread_mutex_t (-32 on x86-64). RobustMutex is laid out to match.
//
// Everything here runs only on the owning thread and the kernel reads the list
// only when that same thread dies, so no atomics are needed: compiler barriers
// (std::atomic_signal_fence) keep the stores in program order, which is the
// order a death at any instruction observes. See robust_list.cc.
//
// Thread-safety: every function acts on the calling thread's list only.
// Real-time safety: no syscalls and no allocation, except the first call in a
// thread (or after fork), which makes two or three short syscalls.
#ifndef LOCKLESS_SYNC_ROBUST_LIST_H_
#define LOCKLESS_SYNC_ROBUST_LIST_H_

#include <pthread.h>
#include <sys/types.h>

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace lockless {
namespace internal {

#if !defined(__PTHREAD_MUTEX_HAVE_PREV) || !__PTHREAD_MUTEX_HAVE_PREV
#error "RobustMutex needs glibc's doubly linked robust list (64-bit Linux)"
#endif

// glibc's futex_offset: from a list entry (address of a mutex's list `next`
// field) to its futex word.
inline constexpr std::ptrdiff_t kGlibcRobustFutexOffset =
    static_cast<std::ptrdiff_t>(offsetof(pthread_mutex_t, __data.__lock)) -
    static_cast<std::ptrdiff_t>(
        offsetof(pthread_mutex_t, __data.__list.__next));

// From an entry (the `next` field) back to the node's `prev` field.
inline constexpr std::ptrdiff_t kGlibcRobustPrevOffset =
    static_cast<std::ptrdiff_t>(
        offsetof(pthread_mutex_t, __data.__list.__prev)) -
    static_cast<std::ptrdiff_t>(
        offsetof(pthread_mutex_t, __data.__list.__next));

// Calling thread's cached identity. After fork() the child re-reads both.
struct ThreadRobustState {
  uint64_t fork_generation;  // 0: never initialised in this thread.
  pid_t tid;                 // gettid() of the calling thread.
  void* head;                // The kernel-registered robust_list_head.
};

// The calling thread's state, initialising it on first use (syscalls) and
// aborting with a message if the registered head is not compatible with ours
// (futex_offset differs) or the kernel has no robust-list support.
const ThreadRobustState& CurrentThreadRobustState();

// The calling thread's kernel thread id (cached; a syscall on first use).
inline pid_t CurrentTid() { return CurrentThreadRobustState().tid; }

// The calling thread's tid once it has used the robust list (locked or
// unlocked any RobustMutex), else 0. In the child of any fork it is 0 until
// the thread uses the robust list again, also after forks that run no atfork
// handlers (_Fork(), a raw clone): the validity word lives in a
// MADV_WIPEONFORK page, which the kernel zeroes in every child. Three loads
// (the word's address, the word, a thread-local), no call: for ownership
// checks on hot paths, where 0 is the right answer (a thread that never
// locked a RobustMutex in this process owns none). Defined in robust_list.cc.
extern __thread pid_t tls_locker_tid;
extern std::atomic<const std::atomic<uint32_t>*> g_tid_cache_valid;
inline pid_t LockerTidOrZero() {
  // acquire: pairs with the release that published the page, so the word
  // read through it is initialised. relaxed (the word): set by this process
  // before any tid was cached here; a child sees it zeroed by the kernel.
  const std::atomic<uint32_t>* const valid =
      g_tid_cache_valid.load(std::memory_order_acquire);
  return valid->load(std::memory_order_relaxed) != 0 ? tls_locker_tid : 0;
}

// The entry address handed to the kernel for a node whose `next` field is at
// `next_field` (primary address): next_field + the test offset. Untagged.
void* RobustEntryFor(void* next_field);

// list_op_pending = entry | 1 (PI). Call before changing the futex word.
void RobustListSetPending(void* entry);
// list_op_pending = nullptr. Call after the futex word change and the link or
// unlink is complete.
void RobustListClearPending();
// Inserts `entry` (untagged) at the front of the calling thread's list.
void RobustListLink(void* entry);
// Removes `entry` (untagged; currently linked in the calling thread's list)
// and clears its links.
void RobustListUnlink(void* entry);

}  // namespace internal
}  // namespace lockless

#endif  // LOCKLESS_SYNC_ROBUST_LIST_H_
