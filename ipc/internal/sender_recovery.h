// Recovery of senders that died, possibly in the middle of a send, while other
// senders keep sending, stall, or die too. Internal to ipc/; the argument is
// at the top of sender_recovery.cc.
#ifndef LOCKLESS_IPC_INTERNAL_SENDER_RECOVERY_H_
#define LOCKLESS_IPC_INTERNAL_SENDER_RECOVERY_H_

#include <chrono>

#include "absl/status/statusor.h"
#include "ipc/internal/queue_layout.h"

namespace lockless {
namespace internal {

struct RecoveryReport {
  // Dead senders made consistent by this call (their slots are claimable).
  int recovered = 0;
  // Dead senders still ambiguous at the deadline: their resolution depends on
  // a live sender that is stopped (or starved) mid-send. They stay marked
  // dead and are retried by the next recovery; never handed out meanwhile.
  int pending = 0;
  // Accounting passes (each reads every ring slot once). 0 when every dead
  // sender was decided from its own target ring slot.
  int ring_scans = 0;
  // Times accounting started over because a sender died during recovery.
  int restarts = 0;
};

// Makes every dead sender slot consistent that can be decided, giving up on
// the rest at `deadline` (they are reported as pending, not as errors). The
// caller holds the setup lock. Locks nothing itself: a dead slot stays
// FUTEX_OWNER_DIED (tid 0) until a claimer takes it. DataLoss only for states
// no sequence of sends and deaths produces (a corrupted region). Live senders
// may send throughout. Not RT-safe: reads the whole ring per accounting pass,
// allocates its bookkeeping, yields and sleeps between passes.
absl::StatusOr<RecoveryReport> RecoverDeadSenders(
    const RegionView& region, std::chrono::steady_clock::time_point deadline);

// Whether sender slot `slot` may be handed to a new owner: free (word 0), or
// dead with no replacement in flight. Caller holds the setup lock.
bool SenderSlotClaimable(const RegionView& region, uint32_t slot);

// TEST ONLY (the interleaving explorer). Called at the start of every
// recovery and before every accounting pass, with the pass number (0 for the
// start), so a test can schedule other processes between passes. Set only
// while no other thread runs recovery; nullptr (default) turns it off.
using RecoveryPassObserver = void (*)(int pass);
void SetRecoveryPassObserver(RecoveryPassObserver observer);

}  // namespace internal
}  // namespace lockless

#endif  // LOCKLESS_IPC_INTERNAL_SENDER_RECOVERY_H_
