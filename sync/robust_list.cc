#include "sync/robust_list.h"

#include <linux/futex.h>
#include <pthread.h>
#include <sys/mman.h>

#include <atomic>
#include <cstdint>
#include <new>

#include "index/internal/check.h"
#include "sync/internal/hook_state.h"
#include "sync/internal/syscalls.h"

// Why no atomics and only compiler barriers: the list (glibc's or ours) is
// read and written by its owning thread, and read by the kernel only when that
// thread dies, i.e. after its last instruction retired. A thread observes its
// own stores in program order, so what the kernel sees is exactly the prefix
// of our stores up to the death point; we only need the compiler to emit the
// stores, in program order. std::atomic_signal_fence(seq_cst) is that compiler
// barrier (no CPU fence), and the volatile accesses below keep each store from
// being merged or dropped. Every store is ordered so that the list reachable
// from the head is consistent at each step, and list_op_pending covers the
// entry while it is neither cleanly linked with its futex held nor cleanly
// unlinked with its futex free.

namespace lockless {
namespace internal {

__thread pid_t tls_locker_tid = 0;

namespace {
// 0 until a tid is first cached (so LockerTidOrZero() answers 0), then 1 in
// the wipe-on-fork page below.
constexpr std::atomic<uint32_t> kNoTidCachedYet{0};
}  // namespace
std::atomic<const std::atomic<uint32_t>*> g_tid_cache_valid{
    &kNoTidCachedYet};

namespace {

static_assert(sizeof(void*) == sizeof(uintptr_t));

// Our own head, for threads where nothing is registered: glibc's shape, a
// prev slot immediately before the robust_list_head.
struct OwnHead {
  void* prev;
  struct robust_list_head head;
};
static_assert(static_cast<std::ptrdiff_t>(offsetof(OwnHead, prev)) -
                  static_cast<std::ptrdiff_t>(offsetof(OwnHead, head)) ==
              kGlibcRobustPrevOffset);
static_assert(offsetof(struct robust_list_head, list) == 0,
              "the head doubles as the list's entry for itself");

// Both zero-initialised (constant initialisation: no TLS init guard, so they
// are safe to touch from a signal handler once initialised).
thread_local ThreadRobustState tls_state;
thread_local OwnHead tls_own_head;

// Bumped in the child after every fork(); a thread whose cached generation
// differs re-reads its tid and head. Starts at 1 so that a fresh thread's 0
// never matches.
std::atomic<uint64_t> g_fork_generation{1};

// The tid cache's validity word: 1 in a MADV_WIPEONFORK page, which every
// fork child (whatever call made it) sees zeroed. Where the kernel lacks
// MADV_WIPEONFORK (< 4.14), a plain word: then only fork() is detected,
// through the atfork handler. Made once, before the first tid is cached.
std::atomic<uint32_t>* TidCacheValidWord() {
  static std::atomic<uint32_t>* const word = [] {
    static std::atomic<uint32_t> fallback{1};
    void* page = mmap(nullptr, 4096, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (page == MAP_FAILED) return &fallback;
    if (madvise(page, 4096, MADV_WIPEONFORK) != 0) {
      munmap(page, 4096);
      return &fallback;
    }
    return new (page) std::atomic<uint32_t>(1);
  }();
  return word;
}

void OnForkChild() {
  // Relaxed: the child has a single thread right now, and later threads are
  // ordered after this store by their creation.
  g_fork_generation.fetch_add(1, std::memory_order_relaxed);
  // Eagerly, not on next use: LockerTidOrZero() must never name the parent's
  // thread in the child (a parent's Sender used there must be refused).
  if (tls_locker_tid != 0) tls_locker_tid = SysGetTid();
  // relaxed: the child has a single thread right now (see above).
  TidCacheValidWord()->store(1, std::memory_order_relaxed);
}

inline void* Strip(void* entry) {
  return reinterpret_cast<void*>(reinterpret_cast<uintptr_t>(entry) &
                                 ~uintptr_t{1});
}
inline void* TagPi(void* entry) {
  return reinterpret_cast<void*>(reinterpret_cast<uintptr_t>(entry) |
                                 uintptr_t{1});
}

// The `next` slot of an entry is the entry itself; its `prev` slot is
// kGlibcRobustPrevOffset bytes away (for the head: glibc's robust_prev, or
// OwnHead::prev).
inline void* volatile* NextSlot(void* entry) {
  return static_cast<void* volatile*>(Strip(entry));
}
inline void* volatile* PrevSlot(void* entry) {
  return reinterpret_cast<void* volatile*>(static_cast<char*>(Strip(entry)) +
                                           kGlibcRobustPrevOffset);
}

inline void CompilerBarrier() {
  std::atomic_signal_fence(std::memory_order_seq_cst);
}

struct robust_list_head* Head() {
  return static_cast<struct robust_list_head*>(CurrentThreadRobustState().head);
}

void InitializeThreadState() {
  static const bool at_fork_registered =
      pthread_atfork(nullptr, nullptr, &OnForkChild) == 0;
  LOCKLESS_CHECK(at_fork_registered, "pthread_atfork failed");

  // Relaxed: see OnForkChild.
  const uint64_t generation =
      g_fork_generation.load(std::memory_order_relaxed);
  void* head = nullptr;
  size_t length_bytes = 0;
  LOCKLESS_CHECK(SysGetRobustList(&head, &length_bytes) == 0,
                 "get_robust_list failed: kernel without robust futexes?");
  if (head == nullptr) {
    // Nothing registered (glibc normally registers every thread): register a
    // thread-local head of the same shape as glibc's.
    OwnHead* own = &tls_own_head;
    own->prev = &own->head;
    own->head.list.next = &own->head.list;
    own->head.futex_offset = kGlibcRobustFutexOffset;
    own->head.list_op_pending = nullptr;
    LOCKLESS_CHECK(SysSetRobustList(&own->head, sizeof(own->head)) == 0,
                   "set_robust_list failed");
    head = &own->head;
  } else {
    LOCKLESS_CHECK(
        static_cast<struct robust_list_head*>(head)->futex_offset ==
            kGlibcRobustFutexOffset,
        "the thread's registered robust list head has a futex_offset that "
        "differs from glibc's pthread_mutex_t layout; RobustMutex cannot "
        "share it");
  }
  tls_state.tid = SysGetTid();
  tls_locker_tid = tls_state.tid;
  // release: publishes the initialised word to LockerTidOrZero's acquire.
  g_tid_cache_valid.store(TidCacheValidWord(), std::memory_order_release);
  tls_state.head = head;
  tls_state.fork_generation = generation;
}

}  // namespace

const ThreadRobustState& CurrentThreadRobustState() {
  // relaxed: a zero here can only be the kernel's wipe in a fork child that
  // ran no atfork handler; the child has one thread until it makes more.
  if (__builtin_expect(tls_state.fork_generation != 0 &&
                           TidCacheValidWord()->load(
                               std::memory_order_relaxed) == 0,
                       0)) {
    OnForkChild();
  }
  // Relaxed: see OnForkChild.
  if (__builtin_expect(tls_state.fork_generation !=
                           g_fork_generation.load(std::memory_order_relaxed),
                       0)) {
    InitializeThreadState();
  }
  return tls_state;
}

void* RobustEntryFor(void* next_field) {
  return static_cast<char*>(next_field) + hook_state::RobustListOffset();
}

void RobustListSetPending(void* entry) {
  struct robust_list_head* head = Head();
  CompilerBarrier();
  *reinterpret_cast<void* volatile*>(&head->list_op_pending) = TagPi(entry);
  // The futex word change that follows must not be hoisted above this.
  CompilerBarrier();
}

void RobustListClearPending() {
  struct robust_list_head* head = Head();
  // The link/unlink and word change before must not sink below this.
  CompilerBarrier();
  *reinterpret_cast<void* volatile*>(&head->list_op_pending) = nullptr;
  CompilerBarrier();
}

void RobustListLink(void* entry) {
  struct robust_list_head* head = Head();
  void* volatile* head_next = reinterpret_cast<void* volatile*>(&head->list.next);
  void* first = *head_next;  // Tagged; == head when the list is empty.
  // Steps 1-3 touch only slots the kernel's forward walk does not reach yet
  // (first's prev, our own node), so the list stays consistent.
  *PrevSlot(first) = Strip(entry);
  *NextSlot(entry) = first;
  *PrevSlot(entry) = &head->list;
  CompilerBarrier();
  // Step 4 publishes the node.
  *head_next = TagPi(entry);
  CompilerBarrier();
}

void RobustListUnlink(void* entry) {
  void* next = *NextSlot(entry);  // Tagged.
  void* prev = *PrevSlot(entry);  // Untagged (glibc tolerates either).
  LOCKLESS_CHECK(next != nullptr && prev != nullptr &&
                     Strip(*NextSlot(prev)) == Strip(entry),
                 "robust list corrupted: unlocking a RobustMutex that is not "
                 "linked in this thread's robust list");
  // Backward link first: the kernel never follows prev.
  *PrevSlot(next) = prev;
  CompilerBarrier();
  // Bypass the node; from here only list_op_pending covers it.
  *NextSlot(prev) = next;
  CompilerBarrier();
  *NextSlot(entry) = nullptr;
  *PrevSlot(entry) = nullptr;
  CompilerBarrier();
}

}  // namespace internal
}  // namespace lockless
