#include "ipc/internal/setup_lock.h"

#include <atomic>
#include <thread>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_format.h"
#include "ipc/internal/owner_liveness.h"
#include "ipc/internal/thread_signal.h"
#include "sync/robust_mutex.h"

namespace lockless {
namespace internal {
namespace {

using Clock = std::chrono::steady_clock;

constexpr std::chrono::microseconds kFirstBackoff{100};
constexpr std::chrono::microseconds kMaxBackoff{10'000};

absl::Status CorruptWordError() {
  return absl::InternalError(
      "could not take the region's setup lock: its word is corrupt, or the "
      "calling thread already holds it");
}

absl::Status HeldError(uint32_t word, const OwnerIdentity& record,
                       OwnerLiveness liveness) {
  const pid_t tid = OwnerTid(word);
  if (record.tid != tid || tid == 0) {
    return absl::DeadlineExceededError(absl::StrFormat(
        "the channel's setup lock is held by thread %d (word 0x%08x), which "
        "has not recorded its process (it is taking the lock right now, or "
        "died doing so, or is from an older library): alive unknown; gave up "
        "waiting for it",
        tid, word));
  }
  return absl::DeadlineExceededError(absl::StrFormat(
      "the channel's setup lock is held by pid %d tid %d (%s%s); gave up "
      "waiting for it. If that process is stopped or wedged, resume or kill "
      "it",
      record.pid, tid, OwnerLivenessName(liveness),
      liveness == OwnerLiveness::kUnknown
          ? ": another pid namespace, or /proc unreadable"
          : ""));
}

}  // namespace

Clock::time_point SetupDeadline(std::optional<Clock::time_point> deadline) {
  return deadline.has_value() ? *deadline
                              : Clock::now() + kDefaultSetupLockWait;
}

absl::StatusOr<SetupLock> SetupLock::Acquire(RegionHeader* header,
                                             Clock::time_point deadline) {
  RobustMutex& lock = header->setup_lock;
  const uint64_t pid_namespace = PidNamespaceId();
  std::chrono::microseconds backoff = kFirstBackoff;
  while (true) {
    // After a death the word keeps FUTEX_OWNER_DIED (with our tid) until we
    // have recorded ourselves: the record there is the dead holder's, and it
    // may name our very tid (reused). Waiters never judge a word with the
    // mark, so none judges us by it.
    const TryLockResult result = lock.TryLockKeepingOwnerDied();
    if (result == TryLockResult::kAcquired ||
        result == TryLockResult::kOwnerDied) {
      const OwnerIdentity previous = LoadOwnerRecord(header->setup_lock_owner);
      // Only holders write the record, and we hold the lock. A death between
      // the lock and the end of this store leaves a record that is not ours
      // (judged kUnknown: waiters then report us, alive unknown, at their
      // deadline, unless the kernel marked us). After a clean release the
      // record's tid is 0 (see ~SetupLock), so it names nobody meanwhile.
      StoreOwnerRecord(header->setup_lock_owner, CurrentOwnerIdentity());
      if (result == TryLockResult::kOwnerDied) lock.ClearOwnerDiedMark();
      return SetupLock(header, result == TryLockResult::kOwnerDied, previous);
    }
    if (result == TryLockResult::kError) {
      // The word names our own tid, or is corrupt. Our tid may be a dead
      // holder's, reused by us (it died unmarked): its record then names
      // another thread, and it is taken over like any dead holder. If the
      // record is ours, we do hold the lock (a recursive Acquire).
      // acquire: as for the busy word below.
      const uint32_t word = lock.futex.load(std::memory_order_acquire);
      const pid_t tid = OwnerTid(word);
      if (tid != CurrentTid() || tid == 0 || OwnerDied(word)) {
        return CorruptWordError();
      }
      const OwnerLiveness liveness = JudgeOwner(
          tid, LoadOwnerRecord(header->setup_lock_owner), pid_namespace);
      if (liveness != OwnerLiveness::kGone &&
          liveness != OwnerLiveness::kReplaced) {
        return CorruptWordError();
      }
      (void)lock.MarkOwnerDead(word);
      continue;
    }
    // Busy. acquire: this value was written by the holder's lock, an RMW
    // that continues the previous holder's unlock (release) sequence, so the
    // record read next is no older than that holder's clearing of its tid:
    // tid 0, or the current holder's own record (LoadOwnerRecord pairs with
    // its release store of the tid). A word still marked FUTEX_OWNER_DIED
    // (a taker not yet recorded) is never judged.
    const uint32_t word = lock.futex.load(std::memory_order_acquire);
    const OwnerIdentity record = LoadOwnerRecord(header->setup_lock_owner);
    OwnerLiveness liveness = OwnerLiveness::kUnknown;
    if (OwnerTid(word) != 0 && !OwnerDied(word)) {
      liveness = JudgeOwner(OwnerTid(word), record, pid_namespace);
      if (liveness == OwnerLiveness::kGone ||
          liveness == OwnerLiveness::kReplaced) {
        // As the kernel would have at the holder's death; then TryLock
        // again (see the header for why only one taker gets it).
        (void)lock.MarkOwnerDead(word);
        continue;
      }
    }
    const Clock::time_point now = Clock::now();
    if (now >= deadline) return HeldError(word, record, liveness);
    std::this_thread::sleep_for(
        std::min<Clock::duration>(backoff, deadline - now));
    backoff = std::min(backoff * 2, kMaxBackoff);
  }
}

SetupLock::SetupLock(SetupLock&& other) noexcept
    : header_(std::exchange(other.header_, nullptr)),
      previous_holder_died_(other.previous_holder_died_),
      previous_record_(other.previous_record_) {}

SetupLock::~SetupLock() {
  if (header_ == nullptr) return;
  // The record describes a holder only while the word names it. Left behind,
  // it would also describe the next holder that reuses our tid, in the few
  // instructions between its TryLock and its own StoreOwnerRecord, and a
  // waiter would judge that live holder by our record: gone, or replaced,
  // and take the lock over. So the tid goes first.
  // relaxed: ordered before the unlock's release compare-exchange; a waiter
  // that sees a later holder's tid in the word (acquire) reads from that
  // holder's lock, which continues this unlock's release sequence, so it
  // sees tid 0 here or the later holder's own record.
  header_->setup_lock_owner.tid.store(0, std::memory_order_relaxed);
  header_->setup_lock.Unlock();
}

void SetupLock::RestorePreviousRecord() {
  // Without its tid: the unlock clears it anyway (what a clean release left
  // was 0 already), and meanwhile the word names us, so a restored tid of a
  // dead holder that had ours (reused) would describe us by its record.
  OwnerIdentity previous = previous_record_;
  previous.tid = 0;
  StoreOwnerRecord(header_->setup_lock_owner, previous);
}

}  // namespace internal
}  // namespace lockless
