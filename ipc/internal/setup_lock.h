// Taking a region's setup lock with a deadline, and taking it over from a
// holder that died without the kernel marking it.
//
// The setup lock (RegionHeader::setup_lock) is held while initialising,
// recovering dead senders, and claiming sender or watcher slots: at most a
// few hundred milliseconds by a live holder (MakeSender's patient recovery
// is 200 ms; initialising the largest region a config allows is a memset
// of it). SetupLock::Acquire tries it without blocking in the kernel, and
// between tries (every 0.1 ms, backing off to 10 ms):
//   - a holder that died unmarked (its record says its thread is gone, or
//     its tid now names another thread, possibly the caller's own) is
//     marked FUTEX_OWNER_DIED as the kernel would have, and the lock is then
//     taken as after any death;
//   - at the deadline, DeadlineExceeded names the holder (pid, tid, and
//     whether it is alive, as far as its record and /proc tell).
// Why poll instead of blocking in FUTEX_LOCK_PI: a FUTEX_LOCK_PI waiter sets
// FUTEX_WAITERS in the word and the kernel leaves it set after a timeout, so
// a caller that gives up would have changed a file it did not set up (a
// held-forever lock must be reported, the file left as it was); and a
// kernel waiter behind a reused tid boosts, and blocks behind, an unrelated
// thread. The price: no priority inheritance while waiting for setup (setup
// is not real-time anyway: a waiter sleeps between tries, so a lower-priority
// holder still runs unless something else hogs its CPU).
//
// Takeover, and why two takers cannot both own the lock: MarkOwnerDead is a
// compare-exchange from the exact stale word (tid T) to FUTEX_OWNER_DIED, so
// of several takers that proved T stale, one succeeds and the others fail
// (the word changed); afterwards the lock is taken by TryLock as after a
// kernel mark, which again admits one. The remaining risk is ABA: a taker
// stopped between its proof and its compare-exchange for as long as it takes
// the lock to be taken over, released, and re-taken by a new thread that got
// the very tid T (tids are reused after pid_max others, 32768 on many
// systems). A stop that long inside setup is not expected outside a
// debugger; slots have no such window (they are only claimed and marked
// under the setup lock).
//
// A holder's record is cleared (tid 0) just before it unlocks: a record
// left behind would describe the next holder that reuses the tid, until that
// holder has recorded itself, and a waiter would take the lock from it.
//
// A holder that takes the lock from a dead one keeps FUTEX_OWNER_DIED in
// the word (with its tid) until it has recorded itself, for the same
// reason: the record there is the dead holder's, which may name the same
// tid; waiters never judge a word with the mark.
//
// Not covered: a holder that dies unmarked between taking the lock and
// recording itself, or between clearing its record and unlocking (a few
// instructions each) leaves a word whose tid no record describes (or that
// still carries the mark with its tid). Its liveness cannot be proven (the tid may belong to
// another pid namespace), so it is never taken over: every setup call then
// ends in DeadlineExceeded ("has not recorded its process") until the file
// is recreated. The kernel's robust-list mark covers this window whenever
// the list is intact.
//
// Thread-safety: Acquire may be called concurrently from any thread or
// process. A SetupLock is move-only and must be destroyed (unlocks) on the
// thread that acquired it. Not RT-safe: sleeps, reads /proc.
#ifndef LOCKLESS_IPC_INTERNAL_SETUP_LOCK_H_
#define LOCKLESS_IPC_INTERNAL_SETUP_LOCK_H_

#include <chrono>
#include <optional>

#include "absl/status/statusor.h"
#include "ipc/internal/queue_layout.h"

namespace lockless {
namespace internal {

// How long a setup call waits for the lock when the caller gives no
// deadline: far beyond any live holder (see above), short enough that a
// lock held forever (a stopped or wedged process) is reported, not hung on.
inline constexpr std::chrono::seconds kDefaultSetupLockWait{10};

// The deadline for `deadline`, or now + kDefaultSetupLockWait.
std::chrono::steady_clock::time_point SetupDeadline(
    std::optional<std::chrono::steady_clock::time_point> deadline);

class SetupLock {
 public:
  // Takes `header`'s setup lock by `deadline`. Errors: DeadlineExceeded
  // naming the holder; Internal when the word is corrupt or the caller
  // already holds the lock (the word names its tid and the record is its
  // own; a word naming its tid under another thread's record is a dead
  // holder whose tid the caller reused, and is taken over).
  static absl::StatusOr<SetupLock> Acquire(
      RegionHeader* header, std::chrono::steady_clock::time_point deadline);

  SetupLock(SetupLock&& other) noexcept;
  SetupLock& operator=(SetupLock&&) = delete;
  SetupLock(const SetupLock&) = delete;
  ~SetupLock();

  // Whether the previous holder died holding it (marked by the kernel, or
  // taken over here): what it protected may be half-done.
  bool previous_holder_died() const { return previous_holder_died_; }

  // Puts back the holder record that Acquire overwrote, so that a caller
  // that changes nothing else leaves the region byte for byte as it found
  // it once the lock is released (the word returns to 0, and the record's
  // tid, which a released lock leaves 0, is cleared again on unlock).
  void RestorePreviousRecord();

 private:
  SetupLock(RegionHeader* header, bool previous_holder_died,
            const OwnerIdentity& previous_record)
      : header_(header),
        previous_holder_died_(previous_holder_died),
        previous_record_(previous_record) {}

  RegionHeader* header_;
  bool previous_holder_died_;
  OwnerIdentity previous_record_;
};

}  // namespace internal
}  // namespace lockless

#endif  // LOCKLESS_IPC_INTERNAL_SETUP_LOCK_H_
