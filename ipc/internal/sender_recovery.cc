// Recovery of senders that died, possibly in the middle of a send, while
// other senders keep sending, are stopped mid-send, or die too.
//
// Setting. Recovery runs under the setup lock (MakeSender), so no other
// recovery and no slot claim runs at the same time. Every other sender may be
// anywhere in Send, may stop there forever (SIGSTOP, a debugger), or may die
// at any moment, including while we recover. A sender slot is
//   live  its word names a thread and FUTEX_OWNER_DIED is clear;
//   dead  FUTEX_OWNER_DIED is set: the kernel marked it when the owner died,
//         or MakeSender did, under the setup lock before recovery, after
//         proving from the owner's record that its thread is gone or its
//         tid now names another thread (owner_liveness.h). Both are the same
//         fact (the owner will never write again), so nothing below cares
//         which. An owner that died unmarked and is not proven dead counts
//         as live: recovery already tolerates live senders stopped forever.
//   free  its word is 0.
// Dead is permanent until a claimer (under the setup lock) takes the slot, so
// a slot seen dead stays dead for the rest of the recovery. Recovery never
// locks a dead slot: it repairs the slot's words in place and leaves the mark,
// so a recovery that is itself killed leaves the slot dead for the next one.
//
// Send (lockless_queue.cc) writes, in order:
//   a. scratch_index := S = Index(q, own message)   (what we will publish)
//   b. own message's header queue index := q
//   c. to_replace := T, the ring entry read for q - queue_size
//   d. CAS ring[q % queue_size]: T -> S   (on failure: to_replace := invalid)
//   e. CAS next_queue_index forward
//   f. scratch_index := T                 (the replaced one is ours)
//   g. to_replace := invalid
// and, only with pinning (num_pinners > 0; scratch_parking.h), if the
// scratch it took is pinned:
//   h. swap_parked_entry := j, swap_take := P (parked[j], named by no pin)
//   i. parked[j] := its scratch
//   j. scratch_index := P
//   k. swap_take := invalid
// (The same h..k run when a slot is claimed, by the claimer holding it.)
// Ownership invariant: every message is owned by exactly one ring slot, one
// sender's scratch or one sender's parked entry. A sender owns S's message
// until d succeeds and T's message from then on; the ring slot owns S's
// message from d on. Steps h..k only move messages among one sender's own
// scratch and parked entries, so a dead sender first gets its swap resolved
// from its own words (state 0), and then is in exactly the states it would be
// in without pinning:
//
//   State 0: swap_take P valid (died in h..k). parked[j] == scratch: died
//            after i, finish with j. scratch == P: died after j. parked[j]
//            == P: died before i. Then clear swap_take (k). Each write is
//            idempotent, so a recoverer's death just repeats it.
//   State 1: T invalid (died before c, after g, or after a failed d).
//            Owns S's message. Consistent; nothing to do.
//   State 2: T == S (died between f and g). Owns it; clear T.
//   State 3: T valid and != S (died between c and f). Owns T's message if its
//            d happened, else S's message. The other one (call it C) is owned
//            by someone else: the ring, a live sender, or another dead sender.
//            The owned one (call it O) is referenced by nobody else, ever:
//            only its owner could give it away, and the owner is dead.
//
// State 3, decided from the target slot. Let E be ring[q % queue_size] now
// (the dead sender's d can no longer happen):
//   3a. E == S: d happened (S's message is in the ring, and only its owner
//       can have put it there). Owns T's message: scratch_index := T, then
//       clear T (Send's own f, g; a death between them leaves state 2).
//   3b. E == T: d never happened (had it, T's message would be its own, out
//       of the ring for good). Owns S's message: clear T.
//   3c. Anything else: the slot moved on, and who won q is not written
//       there. Accounting.
// 3a and 3b rest on who may put a message into the ring, not on the slot's
// lap, so they hold even after the 32-bit queue index wrapped (or, with
// 16-bit entries, aliased) while the sender lay dead. "E was published for q
// but is not S, so another sender won" would not: after a full wrap of the
// counter the slot holds q's bits again. Such cases go to accounting too.
// Neither needs any other sender to move, nor can one fool it.
//
// 3c, accounting. Start an epoch with the set of dead senders known now, and
// mark every message seen in a place that only ever holds messages in
// circulation, i.e. never the O of a sender dead since before the epoch:
//   - every ring slot (O left the ring, if ever, before its owner died);
//   - the scratch_index of a free slot (its last owner's), and of every
//     sender not known dead whose to_replace is invalid (before c: its own
//     message; a publish after our read comes after every known death, so
//     no dead sender took it) or equal to it (after f: the message it took);
//   - the scratch_index of every dead sender already made consistent (it owns
//     it; O's are exclusive);
//   - every parked entry of every slot, and the swap_take of every sender not
//     known dead mid-swap (both name messages that slot owns at the time of
//     the read; parked entries are never a sender's S or T, and a swap
//     happens only after g, so a 3c sender's O is never among them). A
//     sender stopped forever inside a swap thus hides nothing: its scratch,
//     its parked entries and its swap_take together name all its messages;
//   - for a sender not known dead in the middle (to_replace T valid and
//     != S): read T, S, T again (equal, so S and T come from one attempt)
//     and look at ring[q % queue_size]. Holding S: its publish went in and
//     is still in place, so S's message (ring) and T's (taken) both count.
//     Holding T, and T unchanged after: not published yet, S's message is
//     its own. Anything else: nothing counts. Its scratch_index may name a
//     message it published laps ago and a dead sender has since taken (that
//     sender's O, if the sender stopped between d and f), and its to_replace
//     may be stale (recorded before a CAS that will fail): counting either
//     is how a live sender fooled the first recovery.
// Then, for each 3c sender: C is eventually marked and O never is. S's
// message marked -> d happened (as 3a); T's message marked -> it did not
// (as 3b); both marked -> the region is corrupted (DataLoss). Each decision
// marks the decided O too, which can decide another dead sender that raced
// for the same slot: chains resolve within a pass.
// A sender that dies during recovery was live when the epoch's marks were
// taken (its own scratch may be marked, although it may now be its O), so
// when the dead set grows the epoch starts over with fresh marks; the dead
// set only grows, and at most num_senders times.
// Marks accumulate across the passes of an epoch, because a message in
// circulation can be missed by one pass (moved from a slot not yet read to a
// sender already read) but is never falsely seen.
//
// Progress. With no live sender, one pass sees everything, and a dependency
// chain cannot cycle (along it the intended queue index never decreases and
// strictly increases at a sender that published), so an undecided 3c sender
// after a complete pass means corruption: DataLoss. With live senders, C is
// marked as soon as a pass sees it at rest, except when C is held by a live
// sender stopped between its d and f whose slot has since been lapped (its
// publish cannot be proven). Such a dead sender waits: at the deadline it is
// reported pending, keeps its mark, and is never handed out until a later
// recovery decides it. No decision ever waits for a live sender to move.
//
// Cost: 3a and 3b read one ring slot per dead sender. A 3c epoch reads the
// ring once per pass (sequential loads; ~1 ms per 2^20 slots) and usually
// needs one or two passes.
//
// Finally next_queue_index is advanced past any slot a dead sender published
// without advancing it, so LatestQueueIndex() is exact again.
#include "ipc/internal/sender_recovery.h"

#include <sched.h>
#include <time.h>

#include <atomic>
#include <cstdint>
#include <optional>
#include <vector>

#include "absl/strings/str_format.h"
#include "index/index.h"
#include "index/queue_index.h"
#include "ipc/internal/scratch_parking.h"
#include "sync/robust_mutex.h"

namespace lockless {
namespace internal {
namespace {

using Clock = std::chrono::steady_clock;

// Test only; written while no other thread runs recovery (see the header).
RecoveryPassObserver g_pass_observer = nullptr;

void ObservePass(int pass) {
  if (g_pass_observer != nullptr) g_pass_observer(pass);
}

struct SlotWords {
  Index scratch_index;
  Index to_replace;
};

enum class SlotState { kFree, kLive, kDead };

SlotState StateOf(const SenderSlot* slot) {
  // acquire: a dead owner's stores to its slot (made before the kernel set
  // FUTEX_OWNER_DIED at its death) are visible once we see the bit.
  const uint32_t word = slot->ownership.futex.load(std::memory_order_acquire);
  if (OwnerDied(word)) return SlotState::kDead;
  return word == 0 ? SlotState::kFree : SlotState::kLive;
}

SlotWords ReadDeadSlot(const SenderSlot* slot) {
  // relaxed: nobody but us writes a dead slot, and the acquire in StateOf
  // ordered these loads after its dead owner's stores.
  return SlotWords{slot->scratch_index.RelaxedLoad(),
                   slot->to_replace.RelaxedLoad()};
}

// Send's f and g for a dead sender whose publish happened.
void FinishPublished(SenderSlot* slot, Index replaced) {
  // release, both: keep f before g, as in Send, so a death between them
  // leaves state 2 for the next recovery.
  slot->scratch_index.Store(replaced);
  slot->to_replace.Invalidate();
}

// For a dead sender whose publish never happened and never will.
void AbandonReplacement(SenderSlot* slot) { slot->to_replace.Invalidate(); }

// The full queue index a sender slot's scratch_index was written for, given
// `next` (next_queue_index, or 0 if invalid, loaded after that scratch_index
// was written). With 32 queue-index bits per entry it is stored whole. With
// 16 bits it is the latest index at or before `next` carrying those bits
// (wrong if another 2^16 sends happened since; nullopt when even that does
// not fit, near the wrap point). A wrong index only points at a slot that
// proves nothing, which sends the decision to accounting: 3a, 3b and the
// proof of a live sender's publish hold whatever slot they look at.
std::optional<QueueIndex> IntendedQueueIndex(Index scratch, QueueIndex next) {
  const uint32_t queue_size = next.queue_size();
  if (Index::kQueueIndexMask == ~uint32_t{0}) {
    // All ones is a legal raw value but means "no index" (a slot that never
    // sent, or a scribble): it has no ring slot.
    if (scratch.queue_index() == QueueIndex::kInvalidValue ||
        !QueueIndex::IsLegalRaw(scratch.queue_index(), queue_size)) {
      return std::nullopt;
    }
    return QueueIndex::FromRaw(scratch.queue_index(), queue_size);
  }
  const uint32_t behind =
      (next.index() - scratch.queue_index()) & Index::kQueueIndexMask;
  const QueueIndex candidate = next.DecrementBy(behind);
  if (!scratch.IsPlausible(candidate)) return std::nullopt;
  return candidate;
}

QueueIndex NextOrZero(const RegionView& region) {
  // acquire: pairs with the CAS that advanced it (not needed for
  // correctness here: any value at or after the dead sender's load works).
  const QueueIndex next =
      region.header()->next_queue_index.Load(region.queue_size());
  return next.valid() ? next : QueueIndex::Zero(region.queue_size());
}

enum class Outcome { kPublished, kNotPublished, kUnknown };

// States 3a-3c above: what the dead sender's target ring slot says.
Outcome DecideFromTargetSlot(const RegionView& region, const SlotWords& words) {
  const std::optional<QueueIndex> intended =
      IntendedQueueIndex(words.scratch_index, NextOrZero(region));
  if (!intended.has_value()) return Outcome::kUnknown;
  // acquire: not needed for the decision (only the value matters), kept so
  // the ring entry and whatever it names are read consistently if printed.
  const Index entry = region.ring(intended->Wrapped())->Load();
  if (entry == words.scratch_index) return Outcome::kPublished;  // 3a
  if (entry == words.to_replace) return Outcome::kNotPublished;  // 3b
  return Outcome::kUnknown;                                      // 3c
}

// Yields at first (a live sender finishes a send in well under a
// microsecond), then sleeps briefly, so that a live sender of lower real-time
// priority preempted on this CPU gets to run even if we are SCHED_FIFO.
void BackOff(int pass) {
  if (pass < 8) {
    sched_yield();
    return;
  }
  const timespec pause = {0, 20'000};
  nanosleep(&pause, nullptr);
}

class Recovery {
 public:
  explicit Recovery(const RegionView& region)
      : region_(region),
        num_senders_(region.config().num_senders),
        known_dead_(num_senders_, false),
        marks_(region.layout().num_messages, false) {}

  absl::StatusOr<RecoveryReport> Run(Clock::time_point deadline) {
    ObservePass(0);
    int pass = 0;
    while (true) {
      absl::StatusOr<bool> grew = AdmitNewlyDead();
      if (!grew.ok()) return grew.status();
      if (undecided_.empty()) break;
      if (*grew) {
        // New epoch: marks taken while a now-dead sender was live may name
        // its own message.
        if (epoch_started_) ++report_.restarts;
        epoch_started_ = true;
        std::fill(marks_.begin(), marks_.end(), false);
      }
      if (pass > 0 && Clock::now() >= deadline) break;
      ObservePass(++pass);
      bool complete_view = true;
      if (absl::Status status = MarkCirculation(&complete_view); !status.ok()) {
        return status;
      }
      absl::StatusOr<bool> progress = DecideByAccounting();
      if (!progress.ok()) return progress.status();
      if (!undecided_.empty() && complete_view && !*progress) {
        const Undecided& first = undecided_.front();
        return absl::DataLossError(absl::StrFormat(
            "sender slot %u died owning scratch %s or to_replace %s, and "
            "neither is owned anywhere else although no sender is live: "
            "the channel is corrupted",
            first.slot, first.words.scratch_index.DebugString(),
            first.words.to_replace.DebugString()));
      }
      if (!undecided_.empty()) BackOff(pass);
    }
    report_.pending = static_cast<int>(undecided_.size());
    if (epoch_started_ || report_.recovered > 0) AdvanceNextQueueIndex();
    return report_;
  }

 private:
  // Adds every sender that died since the last call to the dead set and
  // decides what it can from its own slot (states 1, 2, 3a, 3b); the rest
  // joins undecided_. Returns whether the dead set grew.
  absl::StatusOr<bool> AdmitNewlyDead() {
    bool grew = false;
    for (uint32_t s = 0; s < num_senders_; ++s) {
      if (known_dead_[s]) continue;
      SenderSlot* const slot = region_.sender(s);
      if (StateOf(slot) != SlotState::kDead) continue;
      known_dead_[s] = true;
      grew = true;
      // Pinning's swap first (state 0 above): afterwards the slot's
      // scratch and parked entries are its own again, and its publish is
      // in state 1, 2 or 3 exactly as without pinning.
      if (absl::Status status = ResolveSwapIntent(region_, s); !status.ok()) {
        return status;
      }
      const SlotWords words = ReadDeadSlot(slot);
      if (!region_.NamesMessage(words.scratch_index)) {
        return absl::DataLossError(absl::StrFormat(
            "dead sender slot %u: scratch_index %s names no message: the "
            "channel is corrupted",
            s, words.scratch_index.DebugString()));
      }
      if (!words.to_replace.valid()) {  // State 1.
        ++report_.recovered;
        continue;
      }
      if (words.to_replace == words.scratch_index) {  // State 2.
        AbandonReplacement(slot);
        ++report_.recovered;
        continue;
      }
      if (!region_.NamesMessage(words.to_replace)) {
        return absl::DataLossError(absl::StrFormat(
            "dead sender slot %u: to_replace %s names no message: the "
            "channel is corrupted",
            s, words.to_replace.DebugString()));
      }
      switch (DecideFromTargetSlot(region_, words)) {
        case Outcome::kPublished:
          FinishPublished(slot, words.to_replace);
          ++report_.recovered;
          break;
        case Outcome::kNotPublished:
          AbandonReplacement(slot);
          ++report_.recovered;
          break;
        case Outcome::kUnknown:
          undecided_.push_back(Undecided{s, words});
          break;
      }
    }
    return grew;
  }

  void Mark(Index entry) {
    if (region_.NamesMessage(entry)) marks_[entry.message_index()] = true;
  }

  bool IsUndecided(uint32_t s) const {
    for (const Undecided& u : undecided_) {
      if (u.slot == s) return true;
    }
    return false;
  }

  // Marks what a slot not known dead (free, live, or dead since the epoch
  // began) proves to be in circulation (see the top of the file).
  void MarkSlotNotKnownDead(const SenderSlot* slot) {
    // acquire, all loads: pair with the sender's release stores (a, c, f, g),
    // so equal to_replace reads around the scratch_index read mean both come
    // from one send attempt (a precedes c; the next attempt's a follows g).
    const Index replaced = slot->to_replace.Load();
    const Index scratch = slot->scratch_index.Load();
    if (!replaced.valid() || scratch == replaced) {
      // Before c (its own scratch; a publish after our load of to_replace
      // happens after every known death, so no dead sender can have taken
      // it), or after f (the message it took).
      Mark(scratch);
      return;
    }
    if (!region_.NamesMessage(replaced) || !region_.NamesMessage(scratch) ||
        slot->to_replace.Load() != replaced) {
      return;
    }
    const std::optional<QueueIndex> intended =
        IntendedQueueIndex(scratch, NextOrZero(region_));
    if (!intended.has_value()) return;
    // acquire: only the value matters (which message is there).
    const Index entry = region_.ring(intended->Wrapped())->Load();
    if (entry == scratch) {
      // Published and still in place: the replaced message is its own.
      marks_[scratch.message_index()] = true;
      marks_[replaced.message_index()] = true;
    } else if (entry == replaced && slot->to_replace.Load() == replaced) {
      // Not published yet: the scratch is still its own.
      marks_[scratch.message_index()] = true;
    }
    // Otherwise nothing: its scratch_index may name a message it published
    // long ago that a dead sender has since taken (that dead sender's O),
    // and its to_replace may be stale.
  }

  // Pinning: a slot's parked entries name messages only it owns (a dead
  // slot's as much as a live one's: they are never its S or T), and a slot
  // not known dead that is mid-swap owns its swap_take too (its resolution,
  // for a known dead one, ran at admission). Each value read names a
  // message in circulation at the time it was read: never the O of a
  // sender dead since before the epoch.
  void MarkParked(uint32_t s) {
    for (uint32_t j = 0; j < region_.config().num_pinners; ++j) {
      // acquire: pairs with the swap's release stores (only the value
      // matters).
      Mark(region_.parked(s, j)->Load());
    }
    if (!known_dead_[s]) {
      // acquire: as above.
      const Index take = region_.sender(s)->swap_take.Load();
      if (take.valid()) Mark(take);
    }
  }

  // One accounting pass (see the top of the file). `complete_view` is
  // cleared if any sender was live, i.e. the pass may have missed a moving
  // message.
  absl::Status MarkCirculation(bool* complete_view) {
    ++report_.ring_scans;
    for (uint32_t s = 0; s < num_senders_; ++s) {
      const SenderSlot* const slot = region_.sender(s);
      MarkParked(s);
      if (known_dead_[s]) {
        if (!IsUndecided(s)) Mark(ReadDeadSlot(slot).scratch_index);
        continue;
      }
      // State first: a slot seen free stays free (claims need the setup
      // lock), so the reads after it see its final words.
      if (StateOf(slot) != SlotState::kFree) *complete_view = false;
      MarkSlotNotKnownDead(slot);
    }
    for (uint32_t i = 0; i < region_.queue_size(); ++i) {
      // acquire: pairs with the publishing CAS (only the value matters).
      const Index entry = region_.ring(i)->Load();
      if (!region_.NamesMessage(entry)) {
        return absl::DataLossError(absl::StrFormat(
            "ring slot %u holds %s, which names no message: the channel is "
            "corrupted",
            i, entry.DebugString()));
      }
      marks_[entry.message_index()] = true;
    }
    // Senders again: a message that moved from a ring slot we had not read
    // yet into a sender we had already read is seen here.
    for (uint32_t s = 0; s < num_senders_; ++s) {
      if (!known_dead_[s]) MarkSlotNotKnownDead(region_.sender(s));
    }
    return absl::OkStatus();
  }

  // Decides every undecided sender whose candidates the marks tell apart,
  // repeating while a decision (which marks the decided sender's message)
  // enables another. Returns whether anything was decided.
  absl::StatusOr<bool> DecideByAccounting() {
    bool progress = false;
    bool changed = true;
    while (changed) {
      changed = false;
      std::vector<Undecided> still;
      for (const Undecided& u : undecided_) {
        // The words validated at admission: nobody else writes a dead slot
        // (a scribbler might, and must not make us index out of bounds).
        SenderSlot* const slot = region_.sender(u.slot);
        const uint32_t scratch = u.words.scratch_index.message_index();
        const uint32_t replaced = u.words.to_replace.message_index();
        if (marks_[scratch] && marks_[replaced]) {
          return absl::DataLossError(absl::StrFormat(
              "dead sender slot %u: both its scratch %s and its to_replace "
              "%s are owned elsewhere: the channel is corrupted",
              u.slot, u.words.scratch_index.DebugString(),
              u.words.to_replace.DebugString()));
        }
        if (marks_[scratch]) {
          FinishPublished(slot, u.words.to_replace);
          marks_[replaced] = true;
        } else if (marks_[replaced]) {
          AbandonReplacement(slot);
          marks_[scratch] = true;
        } else {
          still.push_back(u);
          continue;
        }
        ++report_.recovered;
        changed = progress = true;
      }
      undecided_.swap(still);
    }
    return progress;
  }

  // A dead sender may have published its slot (d) without advancing
  // next_queue_index (e); advance it so LatestQueueIndex is exact. Live
  // senders do the same when they find it, so losing this CAS is fine.
  void AdvanceNextQueueIndex() {
    RegionHeader* const header = region_.header();
    const uint32_t queue_size = region_.queue_size();
    for (uint32_t i = 0; i <= num_senders_; ++i) {
      // acquire: pairs with the CAS that advanced it.
      QueueIndex actual_next = header->next_queue_index.Load(queue_size);
      const QueueIndex next =
          actual_next.valid() ? actual_next : QueueIndex::Zero(queue_size);
      // acquire: only the value matters.
      if (!region_.ring(next.Wrapped())->Load().IsPlausible(next)) break;
      header->next_queue_index.CompareAndExchangeStrong(&actual_next,
                                                        next.Increment());
    }
  }

  const RegionView& region_;
  const uint32_t num_senders_;
  std::vector<bool> known_dead_;
  std::vector<bool> marks_;
  // Dead senders in state 3c, with their words as validated at admission.
  struct Undecided {
    uint32_t slot;
    SlotWords words;
  };
  std::vector<Undecided> undecided_;
  bool epoch_started_ = false;
  RecoveryReport report_;
};

}  // namespace

absl::StatusOr<RecoveryReport> RecoverDeadSenders(
    const RegionView& region, std::chrono::steady_clock::time_point deadline) {
  return Recovery(region).Run(deadline);
}

bool SenderSlotClaimable(const RegionView& region, uint32_t slot) {
  const SenderSlot* const sender = region.sender(slot);
  // acquire: a slot whose owner just died must show us that owner's last
  // to_replace (ordered before the kernel's FUTEX_OWNER_DIED mark), not an
  // older invalid one, or we would hand out a slot caught mid-send.
  const uint32_t word =
      sender->ownership.futex.load(std::memory_order_acquire);
  if (word == 0) return true;
  if (!OwnerDied(word) || OwnerTid(word) != 0) return false;
  // relaxed: written only under the setup lock (recovery) or by the dead
  // owner, whose stores the kernel's marking ordered before ours. A swap
  // intent left by a dead owner must be resolved first (recovery does).
  return !sender->to_replace.RelaxedLoad().valid() &&
         !sender->swap_take.RelaxedLoad().valid();
}

void SetRecoveryPassObserver(RecoveryPassObserver observer) {
  g_pass_observer = observer;
}

}  // namespace internal
}  // namespace lockless
