// Recovery of senders that died, possibly in the middle of a send.
//
// A dead sender is one whose slot's robust mutex carries FUTEX_OWNER_DIED
// (set by the kernel when the owning thread exited). Recovery runs under the
// setup lock (MakeSender), so no other recovery or slot claim runs at the same
// time; live senders may keep sending throughout.
//
// Send (lockless_queue.cc) writes, in order:
//   a. scratch_index := Index(next, scratch)     (intent: what we publish)
//   b. scratch header queue index := next
//   c. to_replace := the ring entry we replace
//   d. CAS ring slot: to_replace -> scratch_index
//   e. scratch_index := to_replace                (the replaced one is ours)
//   f. to_replace := invalid
// so a dead sender is found in one of these states:
//
//   State 1: to_replace invalid (died before c, after f, or after a failed d
//            cleared it). scratch_index names its scratch message.
//   State 2: to_replace == scratch_index (died between e and f).
//            scratch_index names its scratch message.
//   State 3: to_replace valid and different (died between c and e). Either d
//            happened (its scratch is now to_replace's message) or it did not
//            (its scratch is still scratch_index's message). Exactly one of
//            the two messages is owned elsewhere — by a ring slot or by another
//            sender — and the other one is the dead sender's.
//
// States 1 and 2 are fixed by clearing to_replace. State 3 is decided by
// accounting: mark every message referenced by the ring and by every sender
// that is not an unresolved dead one (for a live sender, both scratch_index
// and a valid to_replace, since it may be between d and e). A candidate that is
// unmarked is the dead sender's. Deciding one dead sender can decide another
// (its message is now accounted for), so repeat until every dead sender is
// resolved. Live senders move messages while we scan; a scan is trusted only
// if every live sender's slot reads the same before and after it, and an
// ambiguous result caused by a live sender mid-send is retried. A pass that
// decides nothing although no live sender is mid-send means the region is
// corrupted: report it, never loop.
//
// Finally next_queue_index is advanced if a dead sender published a slot but
// died before advancing it, so LatestQueueIndex() is exact again.
#include <sched.h>
#include <time.h>

#include <vector>

#include "absl/strings/str_format.h"
#include "ipc/internal/queue_layout.h"
#include "ipc/lockless_queue.h"
#include "sync/robust_mutex.h"

namespace lockless {
namespace internal {
namespace {

// Live-sender snapshots are retried this many times before giving up. After
// the first few, each retry sleeps 50 us (BackOff), so this is about 5 s: only
// reached if a live sender is stuck mid-send (stopped, or starved for that
// long) — or the region is corrupted.
constexpr int kMaxScanAttempts = 100000;

struct SlotWords {
  Index scratch_index;
  Index to_replace;
  bool operator==(const SlotWords& other) const {
    return scratch_index == other.scratch_index &&
           to_replace == other.to_replace;
  }
};

SlotWords ReadSlot(const SenderSlot* slot) {
  // acquire: pairs with the sender's release stores of its intent, so a
  // to_replace we see comes with the scratch_index stored before it.
  return SlotWords{slot->scratch_index.Load(), slot->to_replace.Load()};
}

// The same two words in the opposite order, for the second snapshot of a
// live slot. A scan is trusted when the first snapshot (scratch, then
// to_replace) equals this one (to_replace, then scratch). scratch_index
// never returns to an earlier value, so equal scratch words mean the sender
// made no scratch change (steps a, f of Send) during the whole scan. Without
// those it can only set to_replace (c) and publish, or clear it (g, or after
// losing the ring CAS, which changes no ownership). A publish happens after
// c and before f, so if it fell inside the scan, to_replace changed between
// the two to_replace loads and the snapshots differ. Reading both snapshots
// in the same order would miss a whole c..g (to_replace invalid at both
// loads) and trust a scan that lost the message the sender just took.
SlotWords ReadSlotReversed(const SenderSlot* slot) {
  // acquire: as above, and keeps the scratch load after the to_replace load.
  const Index to_replace = slot->to_replace.Load();
  return SlotWords{slot->scratch_index.Load(), to_replace};
}

// Waits before the next scan when one made no progress: yields at first (a
// live sender finishes a send in well under a microsecond), then sleeps, so
// that a live sender of lower real-time priority preempted on this CPU gets
// to run even if we are SCHED_FIFO (sched_yield would never let it).
void BackOff(int attempt) {
  if (attempt < 64) {
    sched_yield();
    return;
  }
  const timespec pause = {0, 50'000};
  nanosleep(&pause, nullptr);
}

}  // namespace

absl::StatusOr<int> RecoverDeadSenders(const RegionView& region) {
  const QueueConfig& config = region.config();
  const uint64_t num_messages = region.layout().num_messages;

  // Take ownership of every dead sender's slot.
  std::vector<uint32_t> dead;
  for (uint32_t s = 0; s < config.num_senders; ++s) {
    SenderSlot* const slot = region.sender(s);
    if (!OwnerDied(slot->ownership.RawOwnerWord())) continue;
    // The dead owner cannot hold it and claims happen under the setup lock
    // we hold, so this does not block.
    if (slot->ownership.Lock() == LockResult::kError) {
      return absl::DataLossError(absl::StrFormat(
          "sender slot %u: could not take its lock (corrupted owner word "
          "0x%08x)",
          s, slot->ownership.RawOwnerWord()));
    }
    dead.push_back(s);
  }
  if (dead.empty()) return 0;

  // States 1 and 2.
  std::vector<uint32_t> unresolved;
  for (uint32_t s : dead) {
    SenderSlot* const slot = region.sender(s);
    const SlotWords words = ReadSlot(slot);
    if (!region.NamesMessage(words.scratch_index)) {
      return absl::DataLossError(absl::StrFormat(
          "sender slot %u: scratch_index %s names no message", s,
          words.scratch_index.DebugString()));
    }
    if (!words.to_replace.valid() || words.to_replace == words.scratch_index) {
      slot->to_replace.Invalidate();
    } else if (!region.NamesMessage(words.to_replace)) {
      return absl::DataLossError(absl::StrFormat(
          "sender slot %u: to_replace %s names no message", s,
          words.to_replace.DebugString()));
    } else {
      unresolved.push_back(s);
    }
  }

  // State 3.
  std::vector<bool> is_unresolved(config.num_senders, false);
  std::vector<bool> accounted(num_messages);
  std::vector<SlotWords> before(config.num_senders);
  int attempts = 0;
  while (!unresolved.empty()) {
    if (++attempts > kMaxScanAttempts) {
      return absl::DataLossError(absl::StrFormat(
          "sender recovery made no progress after %d scans; %u dead senders "
          "remain ambiguous (corrupted region?)",
          kMaxScanAttempts, unresolved.size()));
    }
    std::fill(is_unresolved.begin(), is_unresolved.end(), false);
    for (uint32_t s : unresolved) is_unresolved[s] = true;
    std::fill(accounted.begin(), accounted.end(), false);

    bool live_mid_send = false;
    for (uint32_t s = 0; s < config.num_senders; ++s) {
      before[s] = ReadSlot(region.sender(s));
    }
    for (uint32_t i = 0; i < config.queue_size; ++i) {
      // acquire: a message we see in the ring was placed there by a CAS.
      const Index entry = region.ring(i)->Load();
      if (!region.NamesMessage(entry)) {
        return absl::DataLossError(absl::StrFormat(
            "ring slot %u holds %s, which names no message", i,
            entry.DebugString()));
      }
      accounted[entry.message_index()] = true;
    }
    bool stable = true;
    for (uint32_t s = 0; s < config.num_senders; ++s) {
      if (is_unresolved[s]) continue;
      const SlotWords words = ReadSlotReversed(region.sender(s));
      if (!(words == before[s])) {
        stable = false;
        break;
      }
      if (region.NamesMessage(words.scratch_index)) {
        accounted[words.scratch_index.message_index()] = true;
      }
      if (region.NamesMessage(words.to_replace)) {
        accounted[words.to_replace.message_index()] = true;
        live_mid_send = true;
      }
    }
    if (!stable) {
      BackOff(attempts);
      continue;
    }

    bool progress = false;
    std::vector<uint32_t> still;
    for (uint32_t s : unresolved) {
      SenderSlot* const slot = region.sender(s);
      const SlotWords words = ReadSlot(slot);
      const bool scratch_owned = accounted[words.scratch_index.message_index()];
      const bool replaced_owned = accounted[words.to_replace.message_index()];
      if (scratch_owned && !replaced_owned) {
        // The CAS happened: the replaced message is ours. Same writes, same
        // order, as steps e and f of Send.
        slot->scratch_index.Store(words.to_replace);
        slot->to_replace.Invalidate();
        accounted[words.to_replace.message_index()] = true;
        progress = true;
      } else if (!scratch_owned && replaced_owned) {
        // The CAS never happened: scratch_index still names ours.
        slot->to_replace.Invalidate();
        accounted[words.scratch_index.message_index()] = true;
        progress = true;
      } else {
        still.push_back(s);
      }
    }
    unresolved.swap(still);
    if (!progress && !unresolved.empty() && !live_mid_send) {
      return absl::DataLossError(absl::StrFormat(
          "sender slot %u: cannot tell which message it owns (scratch %s, "
          "to_replace %s both %s): corrupted region",
          unresolved.front(),
          ReadSlot(region.sender(unresolved.front())).scratch_index
              .DebugString(),
          ReadSlot(region.sender(unresolved.front())).to_replace.DebugString(),
          accounted[ReadSlot(region.sender(unresolved.front()))
                        .scratch_index.message_index()]
              ? "owned elsewhere"
              : "unowned"));
    }
    if (!progress) BackOff(attempts);
  }

  // A dead sender may have published its slot (step d) without advancing
  // next_queue_index; advance it so LatestQueueIndex is exact. Live senders
  // do the same when they find it, so losing this CAS is fine.
  RegionHeader* const header = region.header();
  const uint32_t queue_size = config.queue_size;
  for (uint32_t i = 0; i <= config.num_senders; ++i) {
    QueueIndex actual_next = header->next_queue_index.Load(queue_size);
    const QueueIndex next =
        actual_next.valid() ? actual_next : QueueIndex::Zero(queue_size);
    if (!region.ring(next.Wrapped())->Load().IsPlausible(next)) break;
    header->next_queue_index.CompareAndExchangeStrong(&actual_next,
                                                      next.Increment());
  }

  // The dead senders' slots are consistent again: free them.
  for (uint32_t s : dead) region.sender(s)->ownership.Unlock();
  return static_cast<int>(dead.size());
}

}  // namespace internal
}  // namespace lockless
