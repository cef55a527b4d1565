// Pinning's ownership moves, all local to one sender slot. Internal to ipc/.
//
// A Pinner (lockless_queue.h) pins a message that is in the ring; it may stay
// pinned after a sender replaces it. The sender that takes a pinned message as
// its scratch must not hand it to its user, so it swaps it with one of its
// num_pinners parked messages that no pinner names. Pinned messages thus end
// up parked, never written, until unpinned; and every move stays inside one
// sender slot (scratch <-> own parked entry), so recovering a dead sender
// needs only that slot's words (ResolveSwapIntent), never global accounting.
//
// The handshake with Pin (store->load, "Dekker"): Pin stores `pinned`, issues
// a seq_cst fence, then re-loads the ring slot; a sender CASes the ring slot,
// issues a seq_cst fence (KeepScratchUnpinned), then loads every `pinned`. In
// the fence order one comes first, so either the pinner sees the message gone
// from the ring (and refuses the pin) or the sender sees the pin (and parks
// the message).
//
// Why a free parked message always exists: the scan takes one snapshot value
// per pinner, so at most num_pinners of the sender's 1 + num_pinners messages
// are named. Why an unnamed one is really free: a parked message is not in
// the ring, so a pinner naming it later is refused by its ring re-check (a
// stale name); and a pin that was valid on it was stored before the CAS that
// took it out of the ring, so the snapshot sees that pin or a later store by
// the same pinner (a release store after its reads of the bytes).
#ifndef LOCKLESS_IPC_INTERNAL_SCRATCH_PARKING_H_
#define LOCKLESS_IPC_INTERNAL_SCRATCH_PARKING_H_

#include <cstdint>

#include "absl/status/status.h"
#include "ipc/internal/queue_layout.h"

namespace lockless {
namespace internal {

// Makes sure sender slot `slot`'s scratch message is named by no pinner,
// swapping it with an unnamed parked message if needed (writes, in order:
// swap_parked_entry, swap_take, parked[j], scratch_index, swap_take cleared;
// a death anywhere leaves a state ResolveSwapIntent finishes). Called by the
// slot's owner after its publish (Send) and when claiming the slot, and only
// when num_pinners > 0. Starts with the seq_cst fence of the handshake.
// Returns false only if no parked message is free, which the counting
// argument above excludes unless the region is corrupted. Lock-free, no
// syscall, no allocation.
bool KeepScratchUnpinned(const RegionView& region, uint32_t slot);

// Finishes or undoes the swap a dead sender of slot `slot` was making (see
// SenderSlot::swap_take). Caller holds the setup lock and the slot is dead.
// Every write is idempotent, so a recoverer that dies is simply redone.
// DataLoss if the words match no state the swap produces (corruption).
absl::Status ResolveSwapIntent(const RegionView& region, uint32_t slot);

// Clears `pinned` of every pinner slot whose owner is marked dead (the caller
// marked unmarked dead owners first, owner_liveness.h). Caller holds the
// setup lock. One store per slot, idempotent.
void ReleaseDeadPinners(const RegionView& region);

// Whether pinner slot `slot` may be claimed: free, or dead (its pin then
// released by ReleaseDeadPinners). Caller holds the setup lock.
bool PinnerSlotClaimable(const RegionView& region, uint32_t slot);

}  // namespace internal
}  // namespace lockless

#endif  // LOCKLESS_IPC_INTERNAL_SCRATCH_PARKING_H_
