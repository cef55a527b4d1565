#include "ipc/lockless_queue.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <ctime>
#include <optional>
#include <string>
#include <utility>

#include "absl/strings/str_format.h"
#include "index/internal/check.h"
#include "ipc/internal/alias_repair.h"
#include "ipc/internal/owner_liveness.h"
#include "ipc/internal/racy_copy.h"
#include "ipc/internal/scratch_parking.h"
#include "ipc/internal/sender_recovery.h"
#include "ipc/internal/setup_lock.h"
#include "ipc/internal/thread_signal.h"
#include "sync/futex.h"
#include "sync/robust_mutex.h"
#include "sync/rt_priority.h"

namespace lockless {

using internal::Message;
using internal::RegionHeader;
using internal::RegionView;
using internal::SenderSlot;
using internal::WatcherSlot;

namespace {

void FillInfo(int64_t monotonic_ns, int64_t realtime_ns, QueueIndex index,
              uint64_t length, MessageInfo* info) {
  info->monotonic_sent_time = std::chrono::steady_clock::time_point(
      std::chrono::nanoseconds(monotonic_ns));
  info->realtime_sent_time = std::chrono::system_clock::time_point(
      std::chrono::duration_cast<std::chrono::system_clock::duration>(
          std::chrono::nanoseconds(realtime_ns)));
  info->queue_index = index;
  info->length = length;
}

using Clock = std::chrono::steady_clock;

absl::Status ScribbledInitializedError(uint32_t initialized) {
  return absl::DataLossError(absl::StrFormat(
      "region's initialized word is 0x%08x although its header was written "
      "and no initialiser died mid-way: the channel file is corrupted (not "
      "re-initialising it, which would wipe a live channel); remove and "
      "recreate it",
      initialized));
}

// Reads a header field written once under the setup lock, possibly while the
// initialiser is still writing it (before `initialized` is set).
template <typename T>
T RacyHeaderLoad(const T* field) {
  // relaxed: only compared against expected constants; a torn or stale value
  // just means "not ours yet", which the caller handles by taking the lock.
  return __atomic_load_n(field, __ATOMIC_RELAXED);
}

absl::Status ValidateInitializedHeader(const RegionView& region) {
  const RegionHeader* header = region.header();
  if (header->magic != internal::kRegionMagic) {
    return absl::FailedPreconditionError(
        "region does not hold a lockless queue (bad magic)");
  }
  if (header->layout_version != internal::kLayoutVersion) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "region has layout version %u, this library uses %u",
        header->layout_version, internal::kLayoutVersion));
  }
  if (header->config.index_bytes != sizeof(Index)) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "region was built with %u-byte ring entries, this library uses %u",
        header->config.index_bytes, sizeof(Index)));
  }
  const QueueConfig stored{header->config.num_watchers,
                           header->config.num_senders,
                           header->config.queue_size,
                           header->config.message_data_size_bytes,
                           header->config.min_message_age_ns,
                           header->config.num_pinners};
  if (stored != region.config()) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "region was created with configuration %s, but this process asked "
        "for %s",
        stored.DebugString(), region.config().DebugString()));
  }
  if (header->total_size_bytes != region.layout().total_size_bytes) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "region header says %u bytes, the configuration needs %u",
        header->total_size_bytes, region.layout().total_size_bytes));
  }
  return absl::OkStatus();
}

// The layout of `config`, if a region of `size_bytes` can hold it.
absl::StatusOr<internal::Layout> LayoutFitting(size_t size_bytes,
                                               const QueueConfig& config) {
  absl::StatusOr<internal::Layout> layout = internal::ComputeLayout(config);
  if (!layout.ok()) return layout.status();
  if (size_bytes < layout->total_size_bytes) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "region is %u bytes, the configuration %s needs %u", size_bytes,
        config.DebugString(), layout->total_size_bytes));
  }
  return layout;
}

// Validates, initialises if needed, and returns a view of the region.
absl::StatusOr<RegionView> AttachRegion(void* memory, size_t size_bytes,
                                        const QueueConfig& config,
                                        uint32_t first_queue_index,
                                        Clock::time_point setup_deadline) {
  absl::StatusOr<internal::Layout> layout = LayoutFitting(size_bytes, config);
  if (!layout.ok()) return layout.status();
  const RegionView region(memory, *layout);
  RegionHeader* const header = region.header();

  // acquire: pairs with the release store at the end of InitializeRegion.
  const uint32_t initialized =
      header->initialized.load(std::memory_order_acquire);
  if (initialized != internal::kInitializedValue) {
    // Never take the lock in a region that is somebody else's file: its
    // "lock word" could name any thread.
    const uint64_t magic = RacyHeaderLoad(&header->magic);
    if (magic != 0 && magic != internal::kRegionMagic) {
      return absl::FailedPreconditionError(
          "region does not hold a lockless queue (bad magic)");
    }
    // InitializeRegion only ever stores 0 (fresh) or the final value.
    if (initialized != 0) return ScribbledInitializedError(initialized);
    absl::StatusOr<internal::SetupLock> lock =
        internal::SetupLock::Acquire(header, setup_deadline);
    if (!lock.ok()) return lock.status();
    // relaxed: under the setup lock, which orders us after any previous
    // initialiser.
    const uint32_t now_initialized =
        header->initialized.load(std::memory_order_relaxed);
    if (now_initialized != internal::kInitializedValue) {
      // Initialise only a fresh region (no layout version: InitializeRegion
      // writes the header at its very end, just before `initialized`; a
      // channel file's creator stamps only the magic) or one whose
      // initialiser died mid-way (it marked `initializing` first, and the
      // lock says its holder died). Anything else that looks
      // half-initialised is a live or finished channel whose word was
      // scribbled: re-initialising would wipe the ring under running
      // senders.
      const bool fresh = RacyHeaderLoad(&header->layout_version) == 0;
      const bool initialiser_died =
          lock->previous_holder_died() &&
          RacyHeaderLoad(&header->initializing) == internal::kInitializingValue;
      if (!fresh && !initialiser_died) {
        lock->RestorePreviousRecord();  // Leave the file as we found it.
        return ScribbledInitializedError(now_initialized);
      }
      internal::InitializeRegion(region, first_queue_index);
    }
  }
  if (absl::Status status = ValidateInitializedHeader(region); !status.ok()) {
    return status;
  }
  return region;
}

}  // namespace

const char* ReadResultName(ReadResult result) {
  switch (result) {
    case ReadResult::kGood:
      return "GOOD";
    case ReadResult::kNothingNew:
      return "NOTHING_NEW";
    case ReadResult::kTooOld:
      return "TOO_OLD";
    case ReadResult::kCorrupted:
      return "CORRUPTED";
    case ReadResult::kOverwrote:
      return "OVERWROTE";
  }
  return "UNKNOWN";
}

const char* SendResultName(SendResult result) {
  switch (result) {
    case SendResult::kOk:
      return "OK";
    case SendResult::kMessageTooLarge:
      return "MESSAGE_TOO_LARGE";
    case SendResult::kCorrupted:
      return "CORRUPTED";
    case SendResult::kNotOwner:
      return "NOT_OWNER";
    case SendResult::kTooFast:
      return "TOO_FAST";
    case SendResult::kGuardOverwritten:
      return "GUARD_OVERWRITTEN";
  }
  return "UNKNOWN";
}

const char* PinResultName(PinResult result) {
  switch (result) {
    case PinResult::kGood:
      return "GOOD";
    case PinResult::kNothingNew:
      return "NOTHING_NEW";
    case PinResult::kTooOld:
      return "TOO_OLD";
    case PinResult::kOverwrote:
      return "OVERWROTE";
    case PinResult::kCorrupted:
      return "CORRUPTED";
    case PinResult::kAlreadyPinned:
      return "ALREADY_PINNED";
    case PinResult::kNotOwner:
      return "NOT_OWNER";
  }
  return "UNKNOWN";
}

int WakeupSignal() { return SIGRTMIN + 2; }

// ---------------------------------------------------------------- Attach

absl::StatusOr<LocklessQueue> LocklessQueue::Attach(
    void* memory, size_t size_bytes, const QueueConfig& config,
    std::optional<std::chrono::steady_clock::time_point> setup_deadline) {
  absl::StatusOr<RegionView> region =
      AttachRegion(memory, size_bytes, config, /*first_queue_index=*/0,
                   internal::SetupDeadline(setup_deadline));
  if (!region.ok()) return region.status();
  return LocklessQueue(*region);
}

absl::StatusOr<LocklessQueue> LocklessQueue::AttachReadOnly(
    const void* memory, size_t size_bytes, const QueueConfig& config) {
  absl::StatusOr<internal::Layout> layout = LayoutFitting(size_bytes, config);
  if (!layout.ok()) return layout.status();
  // const_cast: RegionView has no const flavour; only loads are made
  // through it here and by the callers this is for (see the header).
  const RegionView region(const_cast<void*>(memory), *layout);
  const RegionHeader* const header = region.header();
  if (RacyHeaderLoad(&header->magic) != internal::kRegionMagic) {
    return absl::FailedPreconditionError(
        "region does not hold a lockless queue (bad magic)");
  }
  // acquire: pairs with the release store at the end of InitializeRegion,
  // so the header fields validated below are the initialiser's.
  if (header->initialized.load(std::memory_order_acquire) !=
      internal::kInitializedValue) {
    return absl::UnavailableError(
        "region is not initialised yet (its creator is still at it, or died "
        "before finishing; a read-write opener finishes it)");
  }
  if (absl::Status status = ValidateInitializedHeader(region); !status.ok()) {
    return status;
  }
  return LocklessQueue(region);
}

namespace internal {
absl::StatusOr<LocklessQueue> AttachStartingAtForTest(
    void* memory, size_t size_bytes, const QueueConfig& config,
    uint32_t first_queue_index) {
  if (config.queue_size == 0 ||
      first_queue_index >=
          QueueIndex::MaxIndex(QueueIndex::kMaxValue, config.queue_size)) {
    return absl::InvalidArgumentError("first_queue_index past the wrap point");
  }
  absl::StatusOr<RegionView> region =
      AttachRegion(memory, size_bytes, config, first_queue_index,
                   internal::SetupDeadline(std::nullopt));
  if (!region.ok()) return region.status();
  return LocklessQueue(*region);
}
}  // namespace internal

// ---------------------------------------------------------------- Senders

namespace {

// How long MakeSender lets recovery wait for live senders to move before it
// hands out another free slot: a live sender finishes a send in well under a
// microsecond unless it is preempted or stopped.
constexpr std::chrono::milliseconds kPromptRecovery{2};
// How long it keeps trying when no slot could be claimed because a dead
// sender's resolution depends on a live sender stopped (or starved) mid-send.
constexpr std::chrono::milliseconds kPatientRecovery{200};

}  // namespace

absl::StatusOr<Sender> LocklessQueue::MakeSender(
    std::optional<std::chrono::steady_clock::time_point> setup_deadline) const {
  absl::StatusOr<internal::SetupLock> lock = internal::SetupLock::Acquire(
      region_.header(), internal::SetupDeadline(setup_deadline));
  if (!lock.ok()) return lock.status();
  // Senders that died without the kernel marking them (owner_liveness.h)
  // are marked now, exactly as the kernel would have, so recovery treats
  // them like any dead sender. Under the setup lock, which every claim of a
  // slot holds too: no live owner can appear in a word between the proof
  // and the mark.
  const uint64_t pid_namespace = internal::PidNamespaceId();
  for (uint32_t s = 0; s < config().num_senders; ++s) {
    SenderSlot* const slot = region_.sender(s);
    (void)internal::MarkOwnerDeadIfStale(slot->ownership, slot->owner,
                                         pid_namespace);
  }
  ReleaseDeadPins();
  int pending = 0;
  for (const std::chrono::milliseconds patience :
       {kPromptRecovery, kPatientRecovery}) {
    absl::StatusOr<internal::RecoveryReport> report =
        internal::RecoverDeadSenders(
            region_, std::chrono::steady_clock::now() + patience);
    if (!report.ok()) return report.status();
    pending = report->pending;
    // A stale publish with 16-bit entries wedges every sender of its slot
    // (alias_repair.h); undo that before handing out a sender.
    (void)internal::RepairAliasedPublishes(region_);
    absl::StatusOr<std::optional<Sender>> sender = ClaimSenderSlot();
    if (!sender.ok()) return sender.status();
    if (sender->has_value()) return **std::move(sender);
    if (pending == 0) break;
  }
  if (pending > 0) {
    return absl::ResourceExhaustedError(absl::StrFormat(
        "all %u sender slots of this channel are in use; %d of them belong "
        "to senders that died while a live sender was stopped mid-send, and "
        "are recovered once it moves: retry later",
        config().num_senders, pending));
  }
  return absl::ResourceExhaustedError(absl::StrFormat(
      "all %u sender slots of this channel are in use", config().num_senders));
}

absl::StatusOr<std::optional<Sender>> LocklessQueue::ClaimSenderSlot() const {
  for (uint32_t s = 0; s < config().num_senders; ++s) {
    if (!internal::SenderSlotClaimable(region_, s)) continue;
    // relaxed: the slot is free or dead, so nobody writes it; the setup lock
    // orders us after its last owner and after recovery.
    const Index scratch = region_.sender(s)->scratch_index.RelaxedLoad();
    if (!region_.NamesMessage(scratch)) {
      return absl::DataLossError(absl::StrFormat(
          "free sender slot %u holds scratch %s: the channel is corrupted", s,
          scratch.DebugString()));
    }
    // Record who we are before our tid appears in the word. The lock's
    // compare-and-exchange is only an acquire: what orders the record for
    // the readers that act on it (MarkOwnerDeadIfStale in MakeSender and
    // ClaimWatcherSlot) is the setup lock, which they hold too and we
    // release after this claim. Under it nobody else writes the record, and
    // a death before the lock leaves a free or dead slot whose record nobody
    // trusts (it names another tid than its word).
    internal::StoreOwnerRecord(region_.sender(s)->owner,
                               internal::CurrentOwnerIdentity());
    // Slots are only claimed under the setup lock, so this succeeds unless
    // the slot's word is corrupt. A dead slot is taken over by the kernel
    // (kOwnerDied), which clears the mark.
    const TryLockResult result = region_.sender(s)->ownership.TryLock();
    if (result != TryLockResult::kAcquired &&
        result != TryLockResult::kOwnerDied) {
      continue;
    }
    Sender sender(region_, s);
    // A previous owner that wrote past max_size() and never sent again
    // (it died, or released the slot) left the guard broken: repair it now,
    // while the scratch is ours alone, and tell the new owner. A death
    // during the repair leaves our slot dead with the guard still broken
    // (its word is written last), so the next claimer repairs it again.
    // Read the scratch again: constructing the Sender may have parked a
    // pinned scratch and taken a spare (ParkPinnedScratch), and a pinned
    // message is never written, its guard included. relaxed: our own slot.
    const Index current = region_.sender(s)->scratch_index.RelaxedLoad();
    if (!region_.NamesMessage(current)) {
      return absl::DataLossError(absl::StrFormat(
          "sender slot %u holds scratch %s: the channel is corrupted", s,
          current.DebugString()));
    }
    const uint64_t scratch_message = current.message_index();
    // A blocked sender (send_limit_ 0) still holds a pinned scratch it could
    // not park: not ours to write, not even its guard.
    if (sender.send_limit_ != 0 &&
        !internal::GuardIntact(region_, scratch_message)) {
      const uint64_t reached =
          internal::GuardDamageBytes(region_, scratch_message);
      internal::WriteGuard(region_, scratch_message);
      sender.inherited_guard_damage_ = absl::DataLossError(absl::StrFormat(
          "sender slot %u: a previous owner wrote up to %u bytes past "
          "max_size() (%u) of its scratch message %u and never sent it "
          "(it died or released the slot); the guard is repaired%s",
          s, reached, config().message_data_size_bytes, scratch_message,
          reached == region_.layout().guard_size_bytes
              ? ", but the overrun may have reached the next message"
              : ""));
    }
    return std::optional<Sender>(std::move(sender));
  }
  return std::optional<Sender>();
}

void LocklessQueue::ReleaseDeadPins() const {
  // As for senders in MakeSender: proven-dead owners are marked as the
  // kernel would have, under the setup lock, then their pins released.
  const uint64_t pid_namespace = internal::PidNamespaceId();
  for (uint32_t p = 0; p < config().num_pinners; ++p) {
    internal::PinnerSlot* const slot = region_.pinner(p);
    (void)internal::MarkOwnerDeadIfStale(slot->ownership, slot->owner,
                                         pid_namespace);
  }
  internal::ReleaseDeadPinners(region_);
}

absl::StatusOr<Pinner> LocklessQueue::MakePinner() const {
  absl::StatusOr<internal::SetupLock> lock = internal::SetupLock::Acquire(
      region_.header(), internal::SetupDeadline(std::nullopt));
  if (!lock.ok()) return lock.status();
  ReleaseDeadPins();
  for (uint32_t p = 0; p < config().num_pinners; ++p) {
    if (!internal::PinnerSlotClaimable(region_, p)) continue;
    internal::PinnerSlot* const slot = region_.pinner(p);
    // Record who we are before our tid appears in the word (as
    // ClaimSenderSlot; the setup lock orders it for its readers).
    internal::StoreOwnerRecord(slot->owner, internal::CurrentOwnerIdentity());
    const TryLockResult result = slot->ownership.TryLock();
    if (result != TryLockResult::kAcquired &&
        result != TryLockResult::kOwnerDied) {
      continue;
    }
    // A pin left by a previous owner that released the slot without
    // unpinning (a Pinner moved over while pinned cannot, but a scribble
    // can): ours now, so drop it. relaxed load: only the owner (we) and the
    // setup lock holder (we) write it. release store: as Unpin.
    if (slot->pinned.RelaxedLoad().valid()) slot->pinned.Invalidate();
    return Pinner(region_, p);
  }
  return absl::ResourceExhaustedError(absl::StrFormat(
      "all %u pinner slots of this channel are in use by live threads "
      "(QueueConfig::num_pinners)",
      config().num_pinners));
}

Pinner::Pinner(const RegionView& region, uint32_t slot)
    : region_(region),
      slot_(slot),
      ownership_(&region.pinner(slot)->ownership),
      ring_slot_of_(region.queue_size()) {}

Pinner::Pinner(Pinner&& other) noexcept
    : region_(other.region_),
      slot_(other.slot_),
      ownership_(std::move(other.ownership_)),
      ring_slot_of_(other.ring_slot_of_),
      pinning_(std::exchange(other.pinning_, false)) {}

Pinner& Pinner::operator=(Pinner&& other) noexcept {
  if (this != &other) {
    Unpin();
    region_ = other.region_;
    slot_ = other.slot_;
    ownership_ = std::move(other.ownership_);
    ring_slot_of_ = other.ring_slot_of_;
    pinning_ = std::exchange(other.pinning_, false);
  }
  return *this;
}

Pinner::~Pinner() { Unpin(); }

void Pinner::Unpin() {
  if (!pinning_ || !ownership_.HeldByCaller()) return;
  // release: orders our reads of the pinned bytes before the acquire load of
  // `pinned` by the sender that next considers reusing the message
  // (KeepScratchUnpinned). One store: a death before it leaves the pin for
  // the next MakeSender/MakePinner to release.
  region_.pinner(slot_)->pinned.Invalidate();
  pinning_ = false;
}

Sender::Sender(const RegionView& region, uint32_t slot)
    : region_(region),
      slot_(slot),
      ownership_(&region.sender(slot)->ownership),
      ring_slot_of_(region.queue_size()),
      max_index_(QueueIndex::MaxIndex(QueueIndex::kMaxValue,
                                      region.queue_size())),
      min_message_age_ns_(
          static_cast<int64_t>(region.config().min_message_age_ns)),
      guard_offset_bytes_(region.layout().guard_offset_bytes),
      guard_seed_(internal::kGuardSeed),
      num_pinners_(region.config().num_pinners),
      optional_features_(min_message_age_ns_ != 0 || num_pinners_ != 0),
      send_limit_(region.config().message_data_size_bytes + 1) {
  SenderSlot* const sender = region_.sender(slot_);
  // relaxed: only the slot's owner writes scratch_index.
  Message* const scratch =
      region_.message(sender->scratch_index.RelaxedLoad().message_index());
  // The scratch may still carry the queue index it had in the ring (e.g.
  // after recovery: its previous owner died between its ring CAS and step
  // 6). Invalidate it before the user can write the payload, so a late
  // reader of that old index sees the change (see Send). Before parking:
  // a pinned scratch parked here comes back as a scratch in a later swap,
  // and nothing would invalidate it then. (Only the header: a pinned view
  // is the payload, and Send's step 6 writes the same word of pinned
  // messages.)
  scratch->header.queue_index.Invalidate();
  // release: orders the invalidation before any payload write that follows.
  std::atomic_thread_fence(std::memory_order_release);
  // A previous owner may have died between its publish and parking a
  // pinned scratch (recovery then handed the slot on with that scratch):
  // park it now, before the user can write into it. If that is impossible
  // (the parked entries are scribbled), the slot's sends and data() are
  // blocked (send_limit_ 0) until the scratch is unpinned: the user never
  // writes into a pinned message.
  if (num_pinners_ != 0 && !ParkPinnedScratch()) send_limit_ = 0;
}

void* Sender::data() {
  if (!ownership_.HeldByCaller()) return nullptr;
  if (__builtin_expect(send_limit_ == 0, 0) && !UnblockScratch()) {
    return nullptr;
  }
  return ScratchData();
}

bool Sender::UnblockScratch() {
  if (!ParkPinnedScratch()) return false;
  send_limit_ = max_size() + 1;
  return true;
}

void* Sender::ScratchData() const {
  // relaxed: only this sender writes its scratch_index.
  return region_
      .message(region_.sender(slot_)->scratch_index.RelaxedLoad()
                   .message_index())
      ->data();
}

size_t Sender::max_size() const {
  return region_.config().message_data_size_bytes;
}

SendResult Sender::Send(const void* data, size_t length, MessageInfo* info) {
  // One comparison for both the size limit and a blocked scratch (see
  // send_limit_): the common case pays nothing for the latter.
  if (__builtin_expect(length >= send_limit_, 0)) {
    if (length > max_size()) return SendResult::kMessageTooLarge;
    if (!ownership_.HeldByCaller()) return SendResult::kNotOwner;
    if (!UnblockScratch()) return SendResult::kCorrupted;
  }
  if (!ownership_.HeldByCaller()) return SendResult::kNotOwner;
  std::memcpy(ScratchData(), data, length);
  return Publish(length, info);
}

SendResult Sender::Send(size_t length, MessageInfo* info) {
  if (__builtin_expect(length >= send_limit_, 0)) {
    if (length > max_size()) return SendResult::kMessageTooLarge;
    if (!ownership_.HeldByCaller()) return SendResult::kNotOwner;
    // Blocked: data() returned nullptr since the park failed, so nothing
    // of the caller's is in the scratch. Try to unblock for the next one.
    (void)UnblockScratch();
    return SendResult::kCorrupted;
  }
  // One relaxed load of the slot's owner word (a line this send writes
  // anyway) and one thread-local load: see HeldLock::HeldByCaller.
  if (!ownership_.HeldByCaller()) return SendResult::kNotOwner;
  return Publish(length, info);
}

Sender::AgeCheck Sender::CheckAge(Index to_replace, bool replaces_a_message,
                                  QueueIndex replaced_queue_index,
                                  int64_t now_ns) const {
  // A never-sent initial message (invalid queue index) has no age.
  if (!replaces_a_message) return AgeCheck::kOldEnough;
  const Message* const replaced = region_.message(to_replace.message_index());
  // relaxed: validated below like a reader's copy (the queue index unchanged
  // after an acquire fence means the time is the one published with it, not
  // a recycling sender's new stamp).
  const int64_t replaced_sent_ns =
      replaced->header.monotonic_sent_time_ns.load(std::memory_order_relaxed);
  // acquire fence: pairs with the release fence a recycling sender issues
  // after invalidating the queue index and before it stamps new times.
  std::atomic_thread_fence(std::memory_order_acquire);
  // relaxed: ordered by the fence above.
  if (replaced->header.queue_index.RelaxedLoad(region_.queue_size()) !=
      replaced_queue_index) {
    return AgeCheck::kRecycled;
  }
  return now_ns - replaced_sent_ns < min_message_age_ns_ ? AgeCheck::kTooYoung
                                                         : AgeCheck::kOldEnough;
}

bool Sender::ParkPinnedScratch() {
  return internal::KeepScratchUnpinned(region_, slot_);
}

SendResult Sender::Publish(size_t length, MessageInfo* info) {
  // Without a rate limit this one well-predicted branch is all the limit
  // costs: the limited protocol is a separate instantiation, out of line,
  // so it takes no registers or instructions from the unlimited one.
  if (__builtin_expect(optional_features_, 0)) {
    return PublishWithFeatures(length, info);
  }
  return PublishSteps</*kRateLimited=*/false, /*kPinning=*/false>(length,
                                                                   info);
}

SendResult Sender::RestoreGuard(uint64_t message_index) {
  // Our scratch, written by nobody else: a single-owner write. A death here
  // leaves the guard word broken (it is written last), which the next
  // claimer of our slot repairs and reports (MakeSender).
  internal::WriteGuard(region_, message_index);
  return SendResult::kGuardOverwritten;
}

SendResult Sender::PublishWithFeatures(size_t length, MessageInfo* info) {
  if (min_message_age_ns_ != 0) {
    return num_pinners_ != 0 ? PublishSteps<true, true>(length, info)
                             : PublishSteps<true, false>(length, info);
  }
  return PublishSteps<false, true>(length, info);
}

template <bool kRateLimited, bool kPinning>
SendResult Sender::PublishSteps(size_t length, MessageInfo* info) {
  const RegionView& region = region_;
  const uint32_t queue_size = region.queue_size();
  RegionHeader* const header = region.header();
  SenderSlot* const slot = region.sender(slot_);

  // relaxed: only this sender writes its own slot.
  const Index scratch_index = slot->scratch_index.RelaxedLoad();
  Message* const scratch = region.message(scratch_index.message_index());
  // 0. The guard (Sender::data): one unaligned 8-byte load right after the
  // payload just written (same or next cache line), an xor and a compare.
  // Before anything is published, so Send never puts a broken guard into
  // the ring. Only we write our scratch, so what we read is ours or an
  // overrun's.
  uint64_t guard;
  std::memcpy(&guard,
              reinterpret_cast<const unsigned char*>(scratch) +
                  guard_offset_bytes_,
              sizeof(guard));
  if (__builtin_expect((guard ^ scratch_index.message_index()) != guard_seed_,
                       0)) {
    return RestoreGuard(scratch_index.message_index());
  }
  // 1. The payload is already in place and the header's queue index is
  // invalid (since this message became our scratch). Length is read by
  // readers only after they validated the queue index, which we set below.
  scratch->header.length.store(length, std::memory_order_relaxed);

  while (true) {
    // 2. Find the next index and what its ring slot holds.
    // acquire: pairs with the CAS that advanced it, so the ring slot of the
    // previous index is already published when we look at ours.
    const QueueIndex actual_next = header->next_queue_index.Load(queue_size);
    const QueueIndex next =
        actual_next.valid() ? actual_next : QueueIndex::Zero(queue_size);
    const QueueIndex one_lap_earlier = next.DecrementBy(queue_size);
    // next.Wrapped() and next.Increment() without their divisions.
    AtomicIndex* const ring_slot = region.ring(ring_slot_of_.Of(next.index()));
    const QueueIndex after_next = QueueIndex::FromRaw(
        next.index() + 1 == max_index_ ? 0 : next.index() + 1, queue_size);
    // acquire: pairs with the publishing CAS of whoever put it there, so the
    // message header we check next is the one they published.
    const Index to_replace = ring_slot->Load();
    if (!to_replace.IsPlausible(one_lap_earlier)) {
      if (!to_replace.IsPlausible(next)) {
        // Neither lap: legitimate only if others sent a whole lap since we
        // loaded next_queue_index, which they cannot do without advancing
        // it. acquire: as above.
        if (header->next_queue_index.Load(queue_size) == actual_next) {
          return SendResult::kCorrupted;
        }
        continue;
      }
      // Another sender already published `next` but has not advanced
      // next_queue_index yet (or died before doing so): help, then retry.
      QueueIndex expected = actual_next;
      // seq_cst: every write of next_queue_index is in the seq_cst order,
      // so the publisher whose CAS then fails can argue the handshake from
      // the value it read (see step 6).
      header->next_queue_index.SeqCstCompareAndExchangeStrong(&expected,
                                                              after_next);
      continue;
    }
    if (!region.NamesMessage(to_replace)) return SendResult::kCorrupted;
    const QueueIndex replaced_queue_index =
        region.message(to_replace.message_index())
            ->header.queue_index.Load(queue_size);
    if (replaced_queue_index.valid() &&
        replaced_queue_index != one_lap_earlier) {
      // The message was recycled after we loaded the slot, so the slot has
      // moved on: retry. If the slot still holds it, nothing moved and the
      // header is simply wrong: corrupted, not raced (retrying would spin).
      // acquire: as the loads above.
      if (ring_slot->Load() == to_replace &&
          header->next_queue_index.Load(queue_size) == actual_next) {
        return SendResult::kCorrupted;
      }
      continue;
    }

    // 3. Stamp the times; re-sampled on every retry so they increase along
    // the ring. One clock read: realtime is derived with the kernel's exact
    // offset (internal/send_clock.h), so it keeps monotonic's order.
    const internal::SendTimes times = clock_.Now();
    const int64_t monotonic_ns = times.monotonic_ns;
    const int64_t realtime_ns = times.realtime_ns;

    // Rate limit, checked on every retry against the message this attempt
    // replaces, before this attempt writes anything but its own scratch
    // message: so it adds no shared-memory write (a death here leaves what a
    // death before step 3 leaves; the recovery argument and the death suite
    // are unchanged), and kTooFast publishes nothing. The CAS in step 5
    // succeeds only if the slot still holds to_replace, so the message it
    // replaces is the one checked here.
    if constexpr (kRateLimited) {
      const AgeCheck age =
          CheckAge(to_replace, replaced_queue_index.valid(), one_lap_earlier,
                   monotonic_ns);
      if (age == AgeCheck::kRecycled) continue;
      if (age == AgeCheck::kTooYoung) return SendResult::kTooFast;
    }
    scratch->header.monotonic_sent_time_ns.store(monotonic_ns,
                                                 std::memory_order_relaxed);
    scratch->header.realtime_sent_time_ns.store(realtime_ns,
                                                std::memory_order_relaxed);

    // 4. Record intent before touching the ring. Recovery (after a death)
    // reads these three words; release keeps them in this order and after
    // the payload stores. (A dead thread's executed stores are all visible
    // to the recovering process once the kernel reported the death.)
    const Index publish(next, scratch_index.message_index());
    slot->scratch_index.Store(publish);
    scratch->header.queue_index.Store(next);
    slot->to_replace.Store(to_replace);

    // 5. Publish: swap our message into the ring.
    Index expected = to_replace;
    if (!ring_slot->CompareAndExchangeStrong(&expected, publish)) {
      // Lost the slot to another sender. Clear the intent and retry.
      slot->to_replace.Invalidate();
      continue;
    }

    // 6. Advance next_queue_index (a helper may have done it already; either
    // way it now is past `next`), then take the replaced message as our
    // scratch and clear the intent.
    // seq_cst (success and failure): one half of the wake-up handshake (see
    // step 7 and lockless_queue.h); a failed CAS is a seq_cst load showing
    // next_queue_index already past `next`.
    QueueIndex expected_next = actual_next;
    header->next_queue_index.SeqCstCompareAndExchangeStrong(&expected_next,
                                                            after_next);
    slot->scratch_index.Store(to_replace);
    slot->to_replace.Invalidate();
    // Readers may still be copying the replaced message (it was in the ring
    // until our CAS). Invalidate its queue index before anyone writes its
    // payload, so such a reader's final check fails.
    region.message(to_replace.message_index())
        ->header.queue_index.Invalidate();
    // release: the invalidation above is ordered before the next payload
    // write into this message (the user's, through data()).
    std::atomic_thread_fence(std::memory_order_release);
    // Pinning: a pinner may hold the message we just took; then swap it
    // with a free parked message (scratch_parking.h). After f and g, so the
    // publish's own recovery argument is untouched. Compiled out of the
    // instantiation used when no pinners are configured.
    // If no parked message is free (scribbled parked entries), this send
    // still published (kOk); the next ones are blocked until the scratch is
    // unpinned (send_limit_), so nothing is ever written into it.
    if constexpr (kPinning) {
      if (!ParkPinnedScratch()) send_limit_ = 0;
    }

    // 7. Wake futex waiters, only if there are any. seq_cst: the other half
    // of the handshake with Waiter::Wait (bit set, then next_queue_index
    // loaded; lockless_queue.h). Same cache line as next_queue_index, which
    // the CAS above just wrote: no extra miss. Writes nothing to the region,
    // so a death here leaves nothing to repair (a waiter not woken wakes at
    // the next Send or its deadline).
    if (header->waiter_bits.load(std::memory_order_seq_cst) != 0) {
      FutexWakeAll(header->next_queue_index.futex_word());
    }

    if (info != nullptr) {
      FillInfo(monotonic_ns, realtime_ns, next, length, info);
    }
    return SendResult::kOk;
  }
}

// ---------------------------------------------------------------- Guards

absl::Status LocklessQueue::CheckGuards() const {
  std::string broken;
  size_t count = 0;
  for (uint64_t m = 0; m < region_.layout().num_messages; ++m) {
    if (internal::GuardIntact(region_, m)) continue;
    // Where the message is, for the report (a snapshot; it may move).
    std::string where = "owner unknown (moving)";
    for (uint32_t slot = 0; slot < region_.queue_size(); ++slot) {
      // relaxed: a description only; nothing is derived from it.
      const Index entry = region_.ring(slot)->RelaxedLoad();
      if (entry.valid() && entry.message_index() == m) {
        where = absl::StrFormat("in ring slot %u", slot);
      }
    }
    for (uint32_t s = 0; s < config().num_senders; ++s) {
      // relaxed: as above.
      const Index scratch = region_.sender(s)->scratch_index.RelaxedLoad();
      if (scratch.valid() && scratch.message_index() == m) {
        where = absl::StrFormat("scratch of sender slot %u", s);
      }
      for (uint32_t j = 0; j < config().num_pinners; ++j) {
        // relaxed: as above.
        const Index parked = region_.parked(s, j)->RelaxedLoad();
        if (parked.valid() && parked.message_index() == m) {
          where = absl::StrFormat("parked entry %u of sender slot %u", j, s);
        }
      }
    }
    absl::StrAppendFormat(
        &broken, "%smessage %u (%s): %u bytes past the payload",
        count == 0 ? "" : "; ", m, where,
        internal::GuardDamageBytes(region_, m));
    ++count;
  }
  if (count == 0) return absl::OkStatus();
  return absl::DataLossError(absl::StrFormat(
      "%u message guard(s) overwritten (a write past max_size() = %u): %s",
      count, config().message_data_size_bytes, broken));
}

// ---------------------------------------------------------------- Reads

namespace {

// `queue_index` is not in the ring: either it has not been sent yet or it
// has been overwritten. next_queue_index tells which. `published_since_load`
// is how many indices just behind next still count as not sent: the caller
// saw the ring slot say "not sent yet" before this load, and a send may have
// published `queue_index` in between (0 when the slot said nothing of it).
ReadResult ClassifyMissing(const RegionView& region, QueueIndex queue_index,
                           uint32_t published_since_load = 0) {
  // acquire: see LatestQueueIndex.
  const QueueIndex next =
      region.header()->next_queue_index.Load(region.queue_size());
  if (!next.valid()) return ReadResult::kNothingNew;
  // Distance from `next` forward to `queue_index`: small means at or after
  // the next send (not sent yet); otherwise it lies behind `next`.
  const uint32_t ahead = queue_index.DistanceFrom(next);
  if (ahead < next.max_index() / 2) return ReadResult::kNothingNew;
  return next.DistanceFrom(queue_index) <= published_since_load
             ? ReadResult::kNothingNew
             : ReadResult::kTooOld;
}

}  // namespace

ReadResult LocklessQueue::Read(QueueIndex queue_index, MessageInfo* info,
                               void* data, size_t data_capacity) const {
  if (!queue_index.valid()) return ReadResult::kNothingNew;
  const uint32_t queue_size = region_.queue_size();
  // acquire: pairs with the sender's publishing CAS, so the message's header
  // and payload written before it are visible.
  const Index entry =
      region_.ring(ring_slot_of_.Of(queue_index.index()))->Load();
  if (!entry.IsPlausible(queue_index)) {
    if (entry.IsPlausible(queue_index.DecrementBy(queue_size))) {
      // Still the previous lap: not sent yet. A caught-up reader polls here,
      // touching only the ring slot's cache line.
      if (Index::kQueueIndexMask == ~uint32_t{0}) return ReadResult::kNothingNew;
      // With 16-bit entries the "previous lap" may instead be a lap that
      // aliases it modulo 2^16, far after `queue_index` (a reader that fell
      // 2^16 / queue_size laps behind): next_queue_index tells them apart.
      return ClassifyMissing(region_, queue_index,
                             /*published_since_load=*/queue_size);
    }
    return ClassifyMissing(region_, queue_index);
  }
  if (!region_.NamesMessage(entry)) return ReadResult::kCorrupted;
  const Message* const message = region_.message(entry.message_index());
  // acquire: as above, for the case the message was republished since.
  if (message->header.queue_index.Load(queue_size) != queue_index) {
    // Recycled since we loaded the slot: a newer lap replaced it.
    return ClassifyMissing(region_, queue_index);
  }
  // relaxed: validated by the queue-index re-check below.
  const uint64_t length = message->header.length.load(std::memory_order_relaxed);
  const int64_t monotonic_ns =
      message->header.monotonic_sent_time_ns.load(std::memory_order_relaxed);
  const int64_t realtime_ns =
      message->header.realtime_sent_time_ns.load(std::memory_order_relaxed);
  const uint64_t max_length = config().message_data_size_bytes;
  if (data != nullptr && length <= max_length) {
    internal::RacyCopy(data, message->data(),
                       std::min<uint64_t>(length, data_capacity));
  }
  // acquire fence: pairs with the sender's release fence after it
  // invalidated this message's queue index and before it rewrote anything:
  // if our copy saw any rewritten byte, the load below sees the invalidation.
  std::atomic_thread_fence(std::memory_order_acquire);
  // relaxed: ordered by the fence above.
  if (message->header.queue_index.RelaxedLoad(queue_size) != queue_index) {
    // It held queue_index when we looked before the copy: a sender replaced
    // it while we copied.
    return ReadResult::kOverwrote;
  }
  if (length > max_length) return ReadResult::kCorrupted;
  if (info != nullptr) {
    FillInfo(monotonic_ns, realtime_ns, queue_index, length, info);
  }
  return ReadResult::kGood;
}

namespace {

PinResult PinResultOf(ReadResult result) {
  switch (result) {
    case ReadResult::kNothingNew:
      return PinResult::kNothingNew;
    case ReadResult::kTooOld:
      return PinResult::kTooOld;
    case ReadResult::kOverwrote:
      return PinResult::kOverwrote;
    case ReadResult::kGood:
    case ReadResult::kCorrupted:
      break;
  }
  return PinResult::kCorrupted;
}

}  // namespace

PinResult Pinner::Pin(QueueIndex queue_index, PinnedMessage* view) {
  if (!ownership_.HeldByCaller()) return PinResult::kNotOwner;
  if (pinning_) return PinResult::kAlreadyPinned;
  if (!queue_index.valid()) return PinResult::kNothingNew;
  const uint32_t queue_size = region_.queue_size();
  AtomicIndex* const ring_slot =
      region_.ring(ring_slot_of_.Of(queue_index.index()));
  // acquire: pairs with the publishing CAS, so the header and payload
  // written before it are visible (as Read).
  const Index entry = ring_slot->Load();
  if (!entry.IsPlausible(queue_index)) {
    // Classified exactly as Read does (not sent yet, or overwritten).
    if (entry.IsPlausible(queue_index.DecrementBy(queue_size))) {
      if (Index::kQueueIndexMask == ~uint32_t{0}) return PinResult::kNothingNew;
      return PinResultOf(ClassifyMissing(region_, queue_index,
                                         /*published_since_load=*/queue_size));
    }
    return PinResultOf(ClassifyMissing(region_, queue_index));
  }
  if (!region_.NamesMessage(entry)) return PinResult::kCorrupted;
  const Message* const message = region_.message(entry.message_index());
  // acquire: as Read's first check.
  if (message->header.queue_index.Load(queue_size) != queue_index) {
    return PinResultOf(ClassifyMissing(region_, queue_index));
  }
  internal::PinnerSlot* const slot = region_.pinner(slot_);
  // Announce the pin, then (seq_cst fence: our half of the handshake with
  // KeepScratchUnpinned, scratch_parking.h) check the message is still in
  // the ring. Either a sender that takes it out sees this store after its
  // own fence and parks it, or we see it gone below. release: not needed by
  // the handshake (the fence carries it); keeps any earlier reads of a
  // previous pin before this store, as Unpin.
  slot->pinned.Store(entry);
  std::atomic_thread_fence(std::memory_order_seq_cst);
  // acquire, both: only the values matter (the fence orders them).
  if (ring_slot->Load() != entry ||
      message->header.queue_index.Load(queue_size) != queue_index) {
    // Replaced between our first look and the pin: as Read's kOverwrote.
    // release: as Unpin (we read nothing of the message, but keep it
    // uniform). A death before it leaves a stale name, released later.
    slot->pinned.Invalidate();
    return PinResult::kOverwrote;
  }
  // relaxed: written before the publishing CAS our acquire load saw, and
  // not written again while pinned (the message is in the ring or parked).
  const uint64_t length = message->header.length.load(std::memory_order_relaxed);
  if (length > region_.config().message_data_size_bytes) {
    slot->pinned.Invalidate();  // release: as above.
    return PinResult::kCorrupted;
  }
  FillInfo(message->header.monotonic_sent_time_ns.load(
               std::memory_order_relaxed),
           message->header.realtime_sent_time_ns.load(
               std::memory_order_relaxed),
           queue_index, length, &view->info);
  view->data = message->data();
  pinning_ = true;
  return PinResult::kGood;
}

size_t LocklessQueue::ReadMany(QueueIndex first, size_t count,
                               MessageInfo* infos, void* data,
                               size_t data_stride, size_t data_capacity,
                               ReadResult* stopped_at) const {
  // Overlapping strides would let message k + 1 overwrite the tail of
  // message k after it was validated: a torn result the reads never gave.
  LOCKLESS_DCHECK(data == nullptr || data_stride >= data_capacity);
  count = std::min(count, kMaxReadBatch);
  *stopped_at = ReadResult::kGood;
  if (count == 0) return 0;
  if (!first.valid()) {
    *stopped_at = ReadResult::kNothingNew;
    return 0;
  }
  // 1. Hints: the messages already published for the batch's indices. A
  // reader that is caught up finds only the first (the others still hold
  // the previous lap, which we leave alone: the sender is about to recycle
  // them).
  const uint32_t queue_size = region_.queue_size();
  QueueIndex index = first;
  uint32_t slot = ring_slot_of_.Of(first.index());
  for (size_t k = 0; k < count; ++k) {
    // relaxed: only a prefetch hint; Read below loads it again (acquire).
    const Index entry = region_.ring(slot)->RelaxedLoad();
    if (!entry.IsPlausible(index) || !region_.NamesMessage(entry)) break;
    const unsigned char* message = reinterpret_cast<const unsigned char*>(
        region_.message(entry.message_index()));
    // The header with the first payload bytes, and the next line.
    __builtin_prefetch(message);
    __builtin_prefetch(message + internal::kCacheLineBytes);
    index = index.Increment();
    if (++slot == queue_size) slot = 0;
  }
  // 2. The reads themselves, in order.
  index = first;
  for (size_t k = 0; k < count; ++k) {
    void* const destination =
        data == nullptr ? nullptr : static_cast<char*>(data) + k * data_stride;
    const ReadResult result =
        Read(index, infos == nullptr ? nullptr : &infos[k], destination,
             data_capacity);
    if (result != ReadResult::kGood) {
      *stopped_at = result;
      return k;
    }
    index = index.Increment();
  }
  return count;
}

QueueIndex LocklessQueue::LatestQueueIndex() const {
  // acquire: pairs with the CAS that advanced it, which happened after the
  // ring slot of the previous index was published.
  const QueueIndex next =
      region_.header()->next_queue_index.Load(region_.queue_size());
  if (!next.valid()) return QueueIndex::Invalid();
  return next.DecrementBy(1);
}

QueueIndex LocklessQueue::OldestQueueIndex() const {
  const uint32_t queue_size = region_.queue_size();
  // acquire: as LatestQueueIndex, so the ring slot loaded below is at least
  // as new as this value says.
  const QueueIndex next =
      region_.header()->next_queue_index.Load(queue_size);
  if (!next.valid()) return QueueIndex::Invalid();
  // next's ring slot holds the oldest message: the one published one lap
  // before next, or the initial entry if the first lap is not complete.
  const QueueIndex lap_before = next.DecrementBy(queue_size);
  // acquire: pairs with the publishing CAS, so the header loaded below is
  // the one published with this entry (or newer).
  const Index entry = region_.ring(ring_slot_of_.Of(next.index()))->Load();
  // A sender already published next and has not advanced next_queue_index
  // yet: lap_before is gone.
  if (entry.IsPlausible(next)) return lap_before.Increment();
  if (entry.IsPlausible(lap_before) && region_.NamesMessage(entry)) {
    // acquire: as a Read's first check. The initial entries name messages
    // whose queue index is invalid (never sent): the first lap is not
    // complete yet.
    const QueueIndex held = region_.message(entry.message_index())
                                ->header.queue_index.Load(queue_size);
    if (held == lap_before) return lap_before;
    // Invalid and still in the ring: never sent (the first lap is not
    // complete). The re-load tells it from a message a sender replaced and
    // then invalidated since we loaded the entry: that sender's CAS of the
    // slot precedes its (release) invalidation, which our acquire load
    // above saw, so this acquire re-load sees the slot changed.
    if (!held.valid() &&
        region_.ring(ring_slot_of_.Of(next.index()))->Load() == entry) {
      // Written once at initialisation, read-only since (RegionHeader).
      return QueueIndex::FromRaw(region_.header()->first_queue_index,
                                 queue_size);
    }
  }
  // The slot moved on while we looked (a send completed): the oldest is
  // now at least one later. Still a snapshot, as the contract says.
  return lap_before.Increment();
}

// ---------------------------------------------------------------- Watchers

absl::StatusOr<uint32_t> LocklessQueue::ClaimWatcherSlot(
    uint32_t kind, int priority, uint32_t limit) const {
  RegionHeader* const header = region_.header();
  const uint32_t end = std::min(limit, config().num_watchers);
  // Mark watchers that died without the kernel marking them, as MakeSender
  // does for senders (same argument: we hold the setup lock, and every claim
  // does).
  const uint64_t pid_namespace = internal::PidNamespaceId();
  for (uint32_t w = 0; w < config().num_watchers; ++w) {
    WatcherSlot* const slot = region_.watcher(w);
    (void)internal::MarkOwnerDeadIfStale(slot->ownership, slot->owner,
                                         pid_namespace);
  }
  // Clear the waiter bits that threads left set when they died inside
  // Waiter::Wait. Under the setup lock a free or dead slot cannot gain an
  // owner, so its bit cannot belong to a live waiter.
  for (uint32_t w = 0; w < std::min<uint32_t>(64, config().num_watchers);
       ++w) {
    const uint64_t bit = uint64_t{1} << w;
    // relaxed: a hint only; a stale "set" costs one fetch_and below.
    if ((header->waiter_bits.load(std::memory_order_relaxed) & bit) == 0) {
      continue;
    }
    // acquire: pairs with the kernel's owner-died marking / the unlock.
    const uint32_t word =
        region_.watcher(w)->ownership.futex.load(std::memory_order_acquire);
    if (OwnerTid(word) != 0) continue;
    // relaxed: one RMW (a death here leaves the bit set or clear, both fine:
    // the next registration looks again); it orders nothing, it only stops
    // Send's FUTEX_WAKE calls.
    header->waiter_bits.fetch_and(~bit, std::memory_order_relaxed);
  }
  // Bits of slots that cannot hold a Waiter (>= num_watchers) are scribbles:
  // nothing clears them otherwise, and each would cost every Send a
  // FUTEX_WAKE. relaxed: as above.
  const uint32_t waiter_slots = std::min<uint32_t>(64, config().num_watchers);
  const uint64_t valid_bits =
      waiter_slots == 64 ? ~uint64_t{0} : (uint64_t{1} << waiter_slots) - 1;
  if ((header->waiter_bits.load(std::memory_order_relaxed) & ~valid_bits) !=
      0) {
    header->waiter_bits.fetch_and(valid_bits, std::memory_order_relaxed);
  }
  const internal::OwnerIdentity me = internal::CurrentOwnerIdentity();
  for (uint32_t w = 0; w < end; ++w) {
    WatcherSlot* const slot = region_.watcher(w);
    const uint32_t word = slot->ownership.RawOwnerWord();
    // Free (0) or left by a thread that died (owner-died, tid cleared).
    if (word != 0 && !(OwnerDied(word) && OwnerTid(word) == 0)) continue;
    // Publish who we are before the owner word names us: a waker that sees
    // our tid must see these. relaxed is enough because the lock's
    // compare-and-exchange below is a release (and the slot shows no live
    // owner until then, so wakers ignore it). Death before the lock leaves a
    // free or dead slot whose fields nobody reads; the next claimer rewrites
    // all of them.
    slot->pid.store(getpid(), std::memory_order_relaxed);
    slot->priority.store(priority, std::memory_order_relaxed);
    slot->pid_namespace.store(pid_namespace, std::memory_order_relaxed);
    slot->kind.store(kind, std::memory_order_relaxed);
    slot->pending.store(0, std::memory_order_relaxed);
    internal::StoreOwnerRecord(slot->owner, me);
    std::atomic_thread_fence(std::memory_order_release);
    const LockResult result = slot->ownership.Lock();
    if (result == LockResult::kError) continue;
    // Only the owner of slot w sets bit w, and we are it and not waiting: a
    // bit still set is a dead waiter's whose death was marked after the scan
    // above. relaxed: as there.
    if (w < 64 &&
        (header->waiter_bits.load(std::memory_order_relaxed) &
         (uint64_t{1} << w)) != 0) {
      header->waiter_bits.fetch_and(~(uint64_t{1} << w),
                                    std::memory_order_relaxed);
    }
    // seq_cst fence: the registration side of the signal handshake
    // (lockless_queue.h): our owner word is in the fence order before
    // whatever the caller reads next.
    std::atomic_thread_fence(std::memory_order_seq_cst);
    return w;
  }
  return absl::ResourceExhaustedError(absl::StrFormat(
      "all %u %s of this channel are taken by live threads", end,
      limit < config().num_watchers ? "waiter-capable watcher slots (0..63)"
                                    : "watcher slots"));
}

absl::StatusOr<Watcher> LocklessQueue::MakeWatcher(int priority) const {
  // Before registering: from now on a wake-up may arrive at any time, and an
  // unblocked one must not kill the process.
  internal::IgnoreSignalIfDefault(WakeupSignal());
  absl::StatusOr<internal::SetupLock> lock = internal::SetupLock::Acquire(
      region_.header(), internal::SetupDeadline(std::nullopt));
  if (!lock.ok()) return lock.status();
  absl::StatusOr<uint32_t> slot = ClaimWatcherSlot(
      internal::kSignalWatcher, priority, config().num_watchers);
  if (!slot.ok()) return slot.status();
  return Watcher(region_, *slot);
}

absl::StatusOr<Waiter> LocklessQueue::MakeWaiter() const {
  absl::StatusOr<internal::SetupLock> lock = internal::SetupLock::Acquire(
      region_.header(), internal::SetupDeadline(std::nullopt));
  if (!lock.ok()) return lock.status();
  absl::StatusOr<uint32_t> slot =
      ClaimWatcherSlot(internal::kFutexWaiter, /*priority=*/0, /*limit=*/64);
  if (!slot.ok()) return slot.status();
  return Waiter(region_, *slot);
}

Watcher::Watcher(const RegionView& region, uint32_t slot)
    : slot_memory_(region.watcher(slot)),
      slot_(slot),
      ownership_(&region.watcher(slot)->ownership) {}

void Watcher::Acknowledge() {
  // relaxed store + seq_cst fence: the fence orders the clear before the
  // queue reads that follow, against the seq_cst fence at the start of
  // Wakeup (lockless_queue.h, "Signal path"). A death here needs no repair:
  // the slot's owner is gone.
  slot_memory_->pending.store(0, std::memory_order_relaxed);
  std::atomic_thread_fence(std::memory_order_seq_cst);
}

Waiter::Waiter(const RegionView& region, uint32_t slot)
    : region_(region),
      slot_(slot),
      ownership_(&region.watcher(slot)->ownership) {}

namespace {

// Whether next_queue_index (raw) shows `next_to_read` published.
bool Published(uint32_t next_raw, QueueIndex next_to_read, uint32_t queue_size) {
  // A value no send writes (corruption): report ready and let Read say
  // kCorrupted, rather than sleep on it.
  if (!QueueIndex::IsLegalRaw(next_raw, queue_size)) return true;
  const QueueIndex next = QueueIndex::FromRaw(next_raw, queue_size);
  if (!next.valid()) return false;  // Nothing sent yet.
  if (!next_to_read.valid()) return true;
  // next_to_read is published when next_queue_index is past it: 1..half a
  // wrap ahead of it (further "ahead" means it is behind: not sent yet).
  const uint32_t ahead = next.DistanceFrom(next_to_read);
  return ahead != 0 && ahead <= next.max_index() / 2;
}

}  // namespace

WaitResult LocklessQueue::WaitWithoutRegistering(
    QueueIndex next_to_read, int64_t deadline_ns,
    int64_t poll_interval_ns) const {
  const uint32_t queue_size = region_.queue_size();
  std::atomic<uint32_t>* const word =
      region_.header()->next_queue_index.futex_word();
  while (true) {
    // acquire: pairs with the CAS that advanced it, so the message is
    // readable once this says it is published.
    const uint32_t seen = word->load(std::memory_order_acquire);
    if (Published(seen, next_to_read, queue_size)) return WaitResult::kReady;
    const int64_t now_ns = MonotonicNowNs();
    if (now_ns >= deadline_ns) return WaitResult::kTimedOut;
    // FUTEX_WAIT only reads the word, so this works on a PROT_READ mapping.
    // Woken by Send's FUTEX_WAKE whenever some Waiter is registered (same
    // word, same futex key), else by the poll interval; either way the loop
    // re-checks.
    const int64_t until_ns = poll_interval_ns < deadline_ns - now_ns
                                 ? now_ns + poll_interval_ns
                                 : deadline_ns;
    (void)FutexWaitUntil(word, seen, until_ns);
  }
}

WaitResult Waiter::Wait(QueueIndex next_to_read, int64_t deadline_ns) {
  if (!ownership_.HeldByCaller()) {
    return WaitResult::kNotOwner;
  }
  RegionHeader* const header = region_.header();
  std::atomic<uint32_t>* const word = header->next_queue_index.futex_word();
  // acquire: pairs with the CAS that advanced it (fast path: no need to
  // announce ourselves when the message is already there).
  if (Published(word->load(std::memory_order_acquire), next_to_read,
                region_.queue_size())) {
    return WaitResult::kReady;
  }
  const uint64_t bit = uint64_t{1} << slot_;
  // seq_cst: first half of the handshake with Send's step 7 (the bit, then
  // next_queue_index; lockless_queue.h). One RMW: a death leaves the bit set
  // (cleared by the next MakeWatcher/MakeWaiter) or clear.
  header->waiter_bits.fetch_or(bit, std::memory_order_seq_cst);
  WaitResult result = WaitResult::kTimedOut;
  while (true) {
    // seq_cst: second half of the handshake (see above).
    const uint32_t seen = word->load(std::memory_order_seq_cst);
    if (Published(seen, next_to_read, region_.queue_size())) {
      result = WaitResult::kReady;
      break;
    }
    // Sleeps only while next_queue_index still equals `seen` (the kernel
    // compares under its bucket lock); a Send in between makes it return
    // at once. kWoken covers EINTR and spurious wake-ups: loop and re-check.
    // Each sleep lasts at most kPendingRearmMs: a sender that died between
    // advancing next_queue_index (step 6) and its FUTEX_WAKE (step 7) leaves
    // nobody to wake us, so re-check at least that often.
    const int64_t rearm_ns =
        MonotonicNowNs() + int64_t{internal::kPendingRearmMs} * 1000000;
    const bool capped = rearm_ns < deadline_ns;
    const FutexWaitResult wait =
        FutexWaitUntil(word, seen, capped ? rearm_ns : deadline_ns);
    if (wait == FutexWaitResult::kTimedOut && capped) continue;
    if (wait == FutexWaitResult::kTimedOut) {
      // acquire: as the fast path; a send that raced the timeout counts.
      result = Published(word->load(std::memory_order_acquire), next_to_read,
                region_.queue_size())
                   ? WaitResult::kReady
                   : WaitResult::kTimedOut;
      break;
    }
  }
  // relaxed: the bit only tells senders whether to make the syscall;
  // clearing it orders nothing. One RMW, death-safe as above.
  header->waiter_bits.fetch_and(~bit, std::memory_order_relaxed);
  return result;
}

WakeUpper::WakeUpper(const LocklessQueue& queue)
    : region_(queue.region()),
      pid_(getpid()),
      uid_(getuid()),
      pid_namespace_(internal::PidNamespaceId()) {
  targets_.reserve(region_.config().num_watchers);
  verified_.resize(region_.config().num_watchers);
}

namespace {

// CLOCK_MONOTONIC in milliseconds, forced odd so a pending stamp is never 0.
uint32_t PendingStamp() {
  return static_cast<uint32_t>(internal::ClockNowNs(CLOCK_MONOTONIC) /
                               1000000) |
         1u;
}

}  // namespace

int WakeUpper::Wakeup(int current_priority, WakeupReport* report) {
  WakeupReport local;
  WakeupReport& counts = report != nullptr ? *report : local;
  counts = WakeupReport();
  targets_.clear();  // Keeps capacity: no allocation below.
  // seq_cst fence: pairs with the fences that end MakeWatcher and
  // Watcher::Acknowledge (lockless_queue.h, "Signal path"): whatever the
  // caller published before this call is seen by a reader that registered or
  // acknowledged after this fence, else we see its registration / cleared
  // flag below.
  std::atomic_thread_fence(std::memory_order_seq_cst);
  for (uint32_t w = 0; w < region_.config().num_watchers; ++w) {
    WatcherSlot* const slot = region_.watcher(w);
    // acquire: pairs with the registering thread's lock (release), so the
    // fields below are the ones it wrote.
    const uint32_t word = slot->ownership.futex.load(std::memory_order_acquire);
    const pid_t tid = OwnerTid(word);
    if (tid == 0 || OwnerDied(word)) continue;
    // relaxed: validated by the re-check of the owner word below.
    const pid_t pid = slot->pid.load(std::memory_order_relaxed);
    const int priority = slot->priority.load(std::memory_order_relaxed);
    const uint64_t pid_namespace =
        slot->pid_namespace.load(std::memory_order_relaxed);
    const uint32_t kind = slot->kind.load(std::memory_order_relaxed);
    const internal::OwnerIdentity record =
        internal::LoadOwnerRecord(slot->owner);
    // acquire fence: keeps the loads above before the re-check, so a slot
    // reused while we read it (owner word changed) is discarded.
    std::atomic_thread_fence(std::memory_order_acquire);
    if (slot->ownership.futex.load(std::memory_order_relaxed) != word) continue;
    if (kind != internal::kSignalWatcher) continue;  // Send wakes waiters.
    if (pid_namespace == 0 || pid_namespace != pid_namespace_) {
      ++counts.other_namespace;  // Its tid would name another thread here.
      continue;
    }
    // Signal only a thread verified, since it registered, to be the one
    // that registered: the kernel may not have marked a dead watcher, and
    // its tid may name another thread by now. One /proc read per
    // registration (owner word and record), cached for later Wakeups.
    Verification& verification = verified_[w];
    if (verification.word != word || verification.record.tid != record.tid ||
        verification.record.pid != record.pid ||
        verification.record.start_time_ticks != record.start_time_ticks) {
      verification.word = word;
      verification.record = record;
      verification.liveness =
          record.pid == pid ? internal::JudgeOwner(tid, record, pid_namespace_)
                            : internal::OwnerLiveness::kUnknown;
    }
    if (verification.liveness != internal::OwnerLiveness::kAlive) {
      ++counts.unverified;
      continue;
    }
    targets_.push_back(Target{pid, tid, priority, w, word});
  }
  if (targets_.empty()) return 0;
  std::sort(targets_.begin(), targets_.end(),
            [](const Target& a, const Target& b) {
              return a.priority > b.priority;
            });
  // Boost to the highest waiter's priority while signalling, so a waiter
  // above us is not stuck behind whatever preempts us.
  std::optional<ScopedPriorityBoost> boost;
  if (current_priority > 0 && targets_.front().priority > current_priority) {
    boost.emplace(targets_.front().priority);
  }
  const uint32_t stamp = PendingStamp();
  for (const Target& target : targets_) {
    std::atomic<uint32_t>& pending = region_.watcher(target.slot)->pending;
    // Claim the right to queue this watcher's one signal: 0 -> stamp, or a
    // stale stamp (a lost wake-up, see WatcherSlot::pending) -> stamp.
    // relaxed: the flag orders nothing by itself; the handshake is carried
    // by the seq_cst fences (here above, and in Acknowledge).
    uint32_t seen = pending.load(std::memory_order_relaxed);
    bool claimed = false;
    while (seen == 0 || stamp - seen >= internal::kPendingRearmMs) {
      // A death right after this CAS leaves a stamp and no signal: the
      // watcher's wake-ups resume when it acknowledges, or after
      // kPendingRearmMs at the latest.
      if (pending.compare_exchange_weak(seen, stamp,
                                        std::memory_order_relaxed)) {
        claimed = true;
        break;
      }
    }
    if (!claimed) {
      ++counts.already_pending;
      continue;
    }
    const internal::QueueSignalResult result = internal::SendQueuedSignal(
        target.pid, target.tid, WakeupSignal(), pid_, uid_);
    if (result == internal::QueueSignalResult::kQueued) {
      ++counts.signalled;
      continue;
    }
    // Nothing was queued: give the flag back (if still ours) so the next
    // Wakeup tries again. relaxed: as above. One CAS: a death before it
    // leaves our stamp, re-armed after kPendingRearmMs.
    uint32_t ours = stamp;
    pending.compare_exchange_strong(ours, 0, std::memory_order_relaxed);
    if (result == internal::QueueSignalResult::kQuotaExhausted) {
      ++counts.quota_exhausted;
    } else {
      ++counts.gone;
    }
  }
  return counts.signalled + counts.already_pending;
}

}  // namespace lockless
