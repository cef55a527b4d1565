#include "ipc/internal/scratch_parking.h"

#include <atomic>

#include "absl/strings/str_format.h"
#include "index/index.h"
#include "sync/robust_mutex.h"

namespace lockless {
namespace internal {
namespace {

bool Named(const uint64_t* named, uint32_t count, uint64_t message_index) {
  for (uint32_t i = 0; i < count; ++i) {
    if (named[i] == message_index) return true;
  }
  return false;
}

}  // namespace

bool KeepScratchUnpinned(const RegionView& region, uint32_t slot) {
  const uint32_t num_pinners = region.config().num_pinners;
  // seq_cst fence: the sender's half of the handshake with Pin (see the
  // header): our ring CAS (or, at a claim, whatever took the scratch out of
  // the ring, which happened before) precedes it, the loads below follow.
  std::atomic_thread_fence(std::memory_order_seq_cst);
  // One snapshot value per pinner (the counting argument needs exactly one).
  uint64_t named[kMaxPinners];
  uint32_t count = 0;
  for (uint32_t p = 0; p < num_pinners; ++p) {
    // acquire: a value stored by the pinner after it stopped reading a
    // message (Unpin's release, or a later Pin's) orders those reads before
    // any write we make to the message once we take it.
    const Index pinned = region.pinner(p)->pinned.Load();
    if (pinned.valid()) named[count++] = pinned.message_index();
  }
  if (count == 0) return true;  // The common case: nothing is pinned.
  SenderSlot* const sender = region.sender(slot);
  // relaxed: only this slot's owner (we) writes scratch_index and parked.
  const Index scratch = sender->scratch_index.RelaxedLoad();
  if (!Named(named, count, scratch.message_index())) return true;
  for (uint32_t j = 0; j < num_pinners; ++j) {
    const Index take = region.parked(slot, j)->RelaxedLoad();
    if (!region.NamesMessage(take) ||
        Named(named, count, take.message_index())) {
      continue;
    }
    // The swap, each step a release store so recovery (which reads a dead
    // slot after the kernel's owner-died mark) and the accounting of a live
    // slot see them in this order.
    // relaxed: published by the release store of swap_take right after.
    sender->swap_parked_entry.store(j, std::memory_order_relaxed);
    sender->swap_take.Store(take);
    region.parked(slot, j)->Store(scratch);
    sender->scratch_index.Store(take);
    sender->swap_take.Invalidate();
    return true;
  }
  return false;
}

absl::Status ResolveSwapIntent(const RegionView& region, uint32_t slot) {
  SenderSlot* const sender = region.sender(slot);
  // relaxed, all: the slot is dead, only we (under the setup lock) write it,
  // and the acquire load of its owner-died word ordered its owner's stores.
  const Index take = sender->swap_take.RelaxedLoad();
  if (!take.valid()) return absl::OkStatus();
  const uint32_t j = sender->swap_parked_entry.load(std::memory_order_relaxed);
  if (j >= region.config().num_pinners || !region.NamesMessage(take)) {
    return absl::DataLossError(absl::StrFormat(
        "dead sender slot %u: swap intent (parked entry %u, message %s) "
        "names nothing this channel has: the channel is corrupted",
        slot, j, take.DebugString()));
  }
  const Index parked = region.parked(slot, j)->RelaxedLoad();
  const Index scratch = sender->scratch_index.RelaxedLoad();
  if (parked == scratch) {
    // Died after parking the scratch, before taking `take`: finish.
    // release: before the intent is cleared (a recoverer dying in between
    // leaves scratch == take, which the next one recognises as done).
    sender->scratch_index.Store(take);
  } else if (scratch != take && parked != take) {
    return absl::DataLossError(absl::StrFormat(
        "dead sender slot %u: swap intent takes %s from parked entry %u, "
        "but that entry holds %s and the scratch is %s: the channel is "
        "corrupted",
        slot, take.DebugString(), j, parked.DebugString(),
        scratch.DebugString()));
  }
  // scratch == take: the swap completed; parked == take: it never started.
  // release: after the scratch store above, so a recoverer dying between
  // them leaves the intent for the next one (which then finds it done).
  sender->swap_take.Invalidate();
  return absl::OkStatus();
}

void ReleaseDeadPinners(const RegionView& region) {
  for (uint32_t p = 0; p < region.config().num_pinners; ++p) {
    PinnerSlot* const pinner = region.pinner(p);
    // acquire: pairs with the kernel's (or MakeSender's) owner-died mark.
    const uint32_t word =
        pinner->ownership.futex.load(std::memory_order_acquire);
    if (!OwnerDied(word)) continue;
    // relaxed: its owner is dead and we hold the setup lock; only the value
    // matters.
    if (!pinner->pinned.RelaxedLoad().valid()) continue;
    // release: senders' acquire loads of `pinned` order nothing after it
    // (the dead owner reads no more); one store, idempotent.
    pinner->pinned.Invalidate();
  }
}

bool PinnerSlotClaimable(const RegionView& region, uint32_t slot) {
  // acquire: as ReleaseDeadPinners.
  const uint32_t word =
      region.pinner(slot)->ownership.futex.load(std::memory_order_acquire);
  return word == 0 || (OwnerDied(word) && OwnerTid(word) == 0);
}

}  // namespace internal
}  // namespace lockless
