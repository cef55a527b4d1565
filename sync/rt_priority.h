// Read, set and restore the calling thread's real-time (SCHED_FIFO)
// scheduling. Setup-time helpers: not for the real-time loop itself.
//
// Every function acts on the calling thread only (Linux's pid 0 in the
// sched_* calls), so all are thread-safe in the sense that threads do not
// interfere. Real-time safety: each makes one or two short syscalls; none
// blocks or allocates on success (error paths build a Status message).
//
// Raising a thread to SCHED_FIFO needs privilege: root or CAP_SYS_NICE, or an
// RLIMIT_RTPRIO at least the requested priority (`ulimit -r`, or rtprio in
// /etc/security/limits.conf). Without it the kernel answers EPERM, reported as
// absl::PermissionDeniedError saying so. Sandboxes (e.g. Bazel's
// linux-sandbox) may refuse it even to root.
#ifndef LOCKLESS_SYNC_RT_PRIORITY_H_
#define LOCKLESS_SYNC_RT_PRIORITY_H_

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace lockless {

// A thread's scheduling policy and static priority, as sched_getscheduler /
// sched_getparam report them (policy may include SCHED_RESET_ON_FORK).
struct SchedulingState {
  int policy = 0;    // SCHED_OTHER, SCHED_FIFO, SCHED_RR, ...
  int priority = 0;  // 1..99 for SCHED_FIFO/SCHED_RR, 0 otherwise.
};

// The calling thread's current scheduling.
absl::StatusOr<SchedulingState> CurrentScheduling();

// Switches the calling thread to SCHED_FIFO at `priority` (1..99).
// InvalidArgument for an out-of-range priority; PermissionDenied without the
// privilege (see above).
absl::Status SetFifoPriority(int priority);

// Puts the calling thread back to `state` (from CurrentScheduling). Lowering
// is always permitted; raising needs privilege as above.
absl::Status RestoreScheduling(const SchedulingState& state);

// Boosts the calling thread to SCHED_FIFO `priority` for its lifetime if that
// is higher than the thread's current real-time priority (a thread already
// at SCHED_FIFO/SCHED_RR with priority >= `priority` is left alone), and
// restores the previous scheduling on destruction. Must be destroyed on the
// thread that created it. Check status(): a failed boost leaves the thread
// unchanged and the destructor does nothing. A failed restore is reported on
// stderr (there is nobody to return it to).
class ScopedPriorityBoost {
 public:
  explicit ScopedPriorityBoost(int priority);
  ~ScopedPriorityBoost();

  ScopedPriorityBoost(const ScopedPriorityBoost&) = delete;
  ScopedPriorityBoost& operator=(const ScopedPriorityBoost&) = delete;

  // OK if the thread now runs at >= `priority` (boosted or already there).
  const absl::Status& status() const { return status_; }
  // Whether the constructor changed the scheduling (and the destructor will
  // restore it).
  bool boosted() const { return boosted_; }

 private:
  absl::Status status_;
  SchedulingState saved_;
  bool boosted_ = false;
};

}  // namespace lockless

#endif  // LOCKLESS_SYNC_RT_PRIORITY_H_
