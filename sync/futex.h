// Thin process-shared futex wait/wake helpers, and Event, a one-shot flag a
// thread or process can sleep on. Not a mutex; for ownership use RobustMutex.
//
// All operations are process-shared (no FUTEX_PRIVATE_FLAG): words may live
// in MAP_SHARED memory. Deadlines are absolute CLOCK_MONOTONIC times in
// nanoseconds (see MonotonicNowNs), so they are immune to wall-clock jumps.
//
// Memory ordering: the futex calls themselves order nothing; the protocol
// around them must (Event does: everything before Set() happens-before
// everything after a Wait*/IsSet that observed it set).
//
// Real-time safety: FutexWait* and Event::Wait* block in a syscall; FutexWake
// and Event::Set (when someone waits) make one non-blocking syscall;
// MonotonicNowNs and Event::IsSet make none (vDSO clock read / one load).
// Nothing allocates.
#ifndef LOCKLESS_SYNC_FUTEX_H_
#define LOCKLESS_SYNC_FUTEX_H_

#include <atomic>
#include <cstdint>
#include <type_traits>

#include "absl/time/time.h"

namespace lockless {

// CLOCK_MONOTONIC now, in nanoseconds. Thread-safe, no syscall (vDSO).
int64_t MonotonicNowNs();

// Outcome of a futex wait. Callers re-check their condition on every outcome
// but kTimedOut (a wake-up may be spurious).
enum class FutexWaitResult {
  kWoken,         // Woken, or interrupted by a signal (EINTR).
  kValueChanged,  // *word != expected when the wait started (EAGAIN).
  kTimedOut,      // The deadline passed.
};

// Sleeps while *word == expected, until woken (FutexWake) or, for
// FutexWaitUntil, until the absolute CLOCK_MONOTONIC `deadline_ns`.
// Thread-safe; blocks. Aborts on errors that mean a bug (EFAULT, EINVAL).
FutexWaitResult FutexWait(std::atomic<uint32_t>* word, uint32_t expected);
[[nodiscard]] FutexWaitResult FutexWaitUntil(std::atomic<uint32_t>* word,
                                             uint32_t expected,
                                             int64_t deadline_ns);

// Wakes up to `max_waiters` threads sleeping on `word` (any process). Returns
// how many were woken. Thread-safe; one syscall, never blocks.
int FutexWake(std::atomic<uint32_t>* word, int max_waiters);

// Wakes every thread sleeping on `word`.
int FutexWakeAll(std::atomic<uint32_t>* word);

// A one-shot event: starts clear, Set() once makes it set forever, waiters
// wake. A plain struct usable in shared memory; all-zero bytes = not set
// (no constructor needs to run).
// Thread- and process-safe. It is not reset-able on purpose: resetting while
// others wait is the classic lost-wake-up bug.
struct Event {
  // Sets the event and wakes all waiters. Idempotent. Syscall only if someone
  // is (or was about to be) waiting.
  void Set();

  // Blocks until set. Returns at once if already set.
  void Wait();

  // Blocks until set (true) or until the absolute CLOCK_MONOTONIC
  // `deadline_ns` passes (false).
  [[nodiscard]] bool WaitUntil(int64_t deadline_ns);

  // Blocks until set (true) or `timeout` elapses (false).
  [[nodiscard]] bool WaitFor(absl::Duration timeout);

  // Whether Set() has been called. Acquire: if true, everything before Set()
  // is visible.
  bool IsSet() const;

  // The futex word. 0: not set, nobody waiting (idle value). 1: set (final).
  // 2: not set, and at least one thread may be sleeping on it. Waiters write
  // 0 -> 2; Set writes anything -> 1.
  std::atomic<uint32_t> state{0};
};

static_assert(std::atomic<uint32_t>::is_always_lock_free);
static_assert(sizeof(Event) == sizeof(uint32_t));
static_assert(std::is_standard_layout_v<Event>);
// An aggregate: zero-filled shared memory is a valid Event without running a
// constructor; the initialiser makes `Event e;` safe as a local too.
static_assert(std::is_aggregate_v<Event>);
static_assert(std::is_trivially_destructible_v<Event>);

}  // namespace lockless

#endif  // LOCKLESS_SYNC_FUTEX_H_
