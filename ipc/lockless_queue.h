// LocklessQueue: a broadcast ring of the last `queue_size` messages in a shared
// memory region, with many senders and many passive readers across processes.
//
// Algorithm (DESIGN.md sections 4-6). Ring slot i holds an Index naming the
// message published for some queue index q with q % queue_size == i. There are
// queue_size + num_senders * (1 + num_pinners) messages; each sender owns one
// spare ("scratch") message, plus num_pinners parked ones to swap a pinned
// scratch with (Pinner). To send, a sender fills its scratch, then swaps it into the ring
// slot of the next queue index with one compare-and-exchange, taking the
// message it replaced as its new scratch. Nobody waits for anybody: a sender
// that finds the slot already taken helps advance next_queue_index and
// retries. Readers copy a message and validate it by re-checking its queue
// index afterwards (a seqlock keyed by queue index), so they never block
// senders and never return torn data.
//
// Progress: Send is lock-free (a retry means another send completed); Read
// and LatestQueueIndex are wait-free. None of them takes a lock, makes a
// system call (clock_gettime is a vDSO call) or allocates.
//
// Death: a process may die at any instruction. The intent a sender records in
// its slot before touching the ring lets the next MakeSender (which runs
// recovery under the setup lock) return every message to exactly one owner.
//
// Memory ordering, in API terms: everything a sender wrote into a message
// (payload, length, times) happens-before a Read that returns GOOD for that
// message's queue index; a Read that returns GOOD saw exactly what was sent.
// LatestQueueIndex is acquire: messages up to the index it returns are
// readable (unless already overwritten).
//
// Waking readers: two ways, one handshake.
//   Waiter::Wait   the reader thread sleeps on a futex (next_queue_index
//                  itself) until a message newer than it has read is
//                  published or a deadline passes. Senders wake it from Send:
//                  no WakeUpper needed, no signal, works across pid
//                  namespaces. Use it when the thread has nothing else to
//                  wait for.
//   Watcher +      the reader gets a real-time signal through a signalfd it
//   WakeUpper      polls in its epoll loop together with its other fds; the
//                  sender decides when to wake (after a batch) and wakes in
//                  priority order with a priority boost.
// No lost wake-up (futex path). The waiter sets its bit in waiter_bits with a
// seq_cst RMW and then loads next_queue_index seq_cst; Send advances
// next_queue_index with a seq_cst CAS (or sees it advanced by a seq_cst CAS
// that failed) and then loads waiter_bits seq_cst. In the single total order
// of those four operations one of the two loads comes last and sees the
// other side's write: either the waiter sees the new index and does not
// sleep, or Send sees the bit and calls FUTEX_WAKE, and the waiter's
// FUTEX_WAIT, which compares next_queue_index with the value it saw under
// the futex bucket lock, either is woken or does not start. On x86 this costs
// Send one plain load (seq_cst loads are movs; the CAS is locked anyway).
// Signal path: MakeWatcher and Watcher::Acknowledge end with a seq_cst fence
// before the reader reads the queue; Wakeup starts with one before it reads
// the watcher slots. Either the reader's read follows the sender's publish in
// that fence order and sees the message, or Wakeup sees the registration /
// the cleared pending flag and queues a signal.
#ifndef LOCKLESS_IPC_LOCKLESS_QUEUE_H_
#define LOCKLESS_IPC_LOCKLESS_QUEUE_H_

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "index/queue_index.h"
#include "ipc/internal/fast_modulo.h"
#include "ipc/internal/held_lock.h"
#include "ipc/internal/owner_liveness.h"
#include "ipc/internal/queue_layout.h"
#include "ipc/internal/send_clock.h"
#include "ipc/queue_config.h"

namespace lockless {

// Outcome of Sender::Send.
enum class SendResult {
  kOk,
  // length > message_data_size_bytes: nothing was sent, the queue and the
  // scratch buffer are untouched.
  kMessageTooLarge,
  // The ring or a message header holds values no protocol step produces (a
  // foreign process scribbled on the channel). Nothing was published; the
  // channel needs to be recreated. Reported instead of crashing or retrying
  // forever.
  kCorrupted,
  // The calling thread does not own this Sender's slot (any more): the
  // thread that made the Sender exited (its slot was then recovered and may
  // have a new owner), or the Sender is used from another thread or a forked
  // child. Nothing was published and nothing in the channel was touched.
  kNotOwner,
  // Rate limit (QueueConfig::min_message_age_ns): the message this send
  // would overwrite is younger than the limit. Nothing was published; the
  // payload stays in the scratch buffer (data()), so the caller may retry
  // later with Send(length).
  kTooFast,
  // The scratch message's guard (the bytes right after its max_size()
  // payload bytes) was overwritten: the caller wrote past data() +
  // max_size(). Nothing was published; the guard has been restored, so the
  // next Send works (the payload bytes are still in data()). A bug in the
  // caller: fix it. Detected for any overrun of the guard word (the first 8
  // bytes past max_size()); an overrun that reaches past the end of the
  // message's stride (up to 63 + 8 bytes past max_size(), see
  // LocklessQueue::CheckGuards) has written into the next message in
  // memory, which cannot be undone.
  kGuardOverwritten,
};

// Outcome of LocklessQueue::Read.
enum class ReadResult {
  // The message was copied out and validated.
  kGood,
  // Nothing has been published at that queue index yet.
  kNothingNew,
  // The message was already gone when the read began: the reader fell more
  // than queue_size behind. Resynchronise, e.g. from OldestQueueIndex().
  kTooOld,
  // The ring names a message that cannot exist, or a length larger than the
  // configuration allows: another process corrupted the region.
  kCorrupted,
  // The message was there when the read began, but a sender replaced it
  // while it was being copied (the reader is about a whole lap behind; the
  // copy in `data` may be torn and must not be used). Nothing is lost that
  // kTooOld would not have lost: resynchronise as for kTooOld.
  kOverwrote,
};

// Outcome of Pinner::Pin.
enum class PinResult {
  // Pinned: the view's bytes stay exactly as sent until Unpin.
  kGood,
  // As ReadResult::kNothingNew: nothing published at that index yet.
  kNothingNew,
  // As ReadResult::kTooOld: already overwritten when the pin began.
  kTooOld,
  // As ReadResult::kOverwrote: there when the pin began, replaced by a
  // sender before the pin took hold. Nothing is pinned.
  kOverwrote,
  // As ReadResult::kCorrupted. Nothing is pinned.
  kCorrupted,
  // This Pinner already holds a pin: Unpin it first (one pin at a time, so
  // a view can never be invalidated behind its user's back). Untouched.
  kAlreadyPinned,
  // The calling thread does not own this Pinner's slot (as Send's
  // kNotOwner). Nothing was touched.
  kNotOwner,
};

const char* ReadResultName(ReadResult result);
const char* SendResultName(SendResult result);
const char* PinResultName(PinResult result);

// Facts about a sent or read message.
struct MessageInfo {
  std::chrono::steady_clock::time_point monotonic_sent_time;  // CLOCK_MONOTONIC
  // CLOCK_REALTIME at the instant of monotonic_sent_time, except for up to
  // 1 ms after a wall-clock step (see Sender::Send).
  std::chrono::system_clock::time_point realtime_sent_time;
  QueueIndex queue_index;
  size_t length = 0;
};

// A pinned message, read in place: `data` points at its payload inside the
// channel (info.length bytes), and stays valid and unchanged until the
// Pinner that made it unpins (Unpin, a later Pin after Unpin, destruction).
struct PinnedMessage {
  const void* data = nullptr;
  MessageInfo info;
};

class LocklessQueue;

namespace internal {
absl::StatusOr<LocklessQueue> AttachStartingAtForTest(
    void* memory, size_t size_bytes, const QueueConfig& config,
    uint32_t first_queue_index);
}  // namespace internal

// A claim on one sender slot, owned by the thread that made it. Move-only.
// Only that thread may send through it: from any other thread (or a forked
// child, or after the slot was recovered because that thread exited without
// destroying the Sender) Send returns kNotOwner and data() nullptr, and
// nothing in the channel is touched.
class Sender {
 public:
  Sender(Sender&& other) noexcept = default;
  Sender& operator=(Sender&& other) noexcept = default;
  // Releases the slot (it keeps its scratch message for the next owner) if
  // the calling thread still owns it; otherwise does nothing: the slot was
  // already reclaimed, or is reclaimed when its owning thread exits.
  ~Sender() = default;

  // Copies `length` bytes from `data` and publishes them. RT-safe: no lock, no
  // syscall, no allocation; lock-free. (The clock read goes through the
  // vDSO; on a machine whose clocksource has no vDSO support, e.g. hpet or
  // acpi_pm, the kernel makes it a system call: check
  // /sys/devices/system/clocksource/clocksource0/current_clocksource shows
  // tsc or kvm-clock.) `info`, if given, receives the send times and the
  // queue index used. The realtime send time is derived from the monotonic
  // one with the kernel's exact offset, refreshed every 1 ms of the sender's
  // sends: after a wall-clock step (NTP step, settimeofday, leap second,
  // resume from suspend) it can miss the step for up to 1 ms of monotonic
  // time, and within that window realtime stamps of different senders can be
  // out of ring order by up to the step, forward steps included
  // (internal/send_clock.h). Monotonic send times always increase along the
  // ring. Errors: kMessageTooLarge, kCorrupted, kNotOwner, kTooFast (see
  // SendResult); in each case nothing was published. kGuardOverwritten
  // (only possible after writing past data() + max_size(), see below).
  [[nodiscard]] SendResult Send(const void* data, size_t length,
                                MessageInfo* info = nullptr);

  // Zero-copy: write up to max_size() bytes into data(), then Send(length)
  // publishes them in place. data() changes after every successful send, and
  // is nullptr when the calling thread does not own the slot (see above),
  // or, with pinning, when the scratch is a pinned message that could not
  // be parked (scribbled parked entries; Send then returns kCorrupted,
  // writing nothing, until the pin is gone).
  //
  // Guard: the bytes after max_size() hold a pattern. Every Send compares
  // the first 8 of them (one load and compare, before anything is
  // published); a write past max_size() makes Send return
  // kGuardOverwritten, publish nothing and restore the pattern. Writing
  // after Send through an old data() pointer writes into a published
  // message: not detectable here (CheckGuards sees it if it reached the
  // guard).
  void* data();
  size_t max_size() const;
  [[nodiscard]] SendResult Send(size_t length, MessageInfo* info = nullptr);

  // OK, or DataLoss if, when MakeSender claimed this slot, its scratch
  // message's guard was overwritten: a previous owner of the slot wrote past
  // max_size() and died (or released the slot) before a Send could report
  // it. The guard was repaired; the message says which message and how many
  // bytes past max_size() were overwritten. For the caller to log: the
  // process that overran is gone, and this sender works normally.
  const absl::Status& inherited_guard_damage() const {
    return inherited_guard_damage_;
  }

  // Which sender slot this is (for diagnostics).
  uint32_t slot() const { return slot_; }

 private:
  friend class LocklessQueue;
  Sender(const internal::RegionView& region, uint32_t slot);
  // Pinning's step after a publish (scratch_parking.h), out of line.
  [[gnu::noinline]] bool ParkPinnedScratch();
  // Retries the park of a blocked scratch; true (and unblocked) on success.
  [[gnu::noinline]] bool UnblockScratch();

  // The scratch message's payload (no ownership check).
  void* ScratchData() const;
  // Steps 2-6 of the send protocol (lockless_queue.cc), after the checks
  // (the guard's included).
  SendResult Publish(size_t length, MessageInfo* info);
  // The slow path of the guard check: restores the guard of our scratch
  // message `message_index` and reports the overrun.
  [[gnu::noinline, gnu::cold]] SendResult RestoreGuard(uint64_t message_index);
  // The same with the rate limit's check and/or pinning's park step
  // (separate, out-of-line instantiations, so that a send with neither
  // feature configured pays one well-predicted branch for both).
  template <bool kRateLimited, bool kPinning>
  SendResult PublishSteps(size_t length, MessageInfo* info);
  [[gnu::noinline]] SendResult PublishWithFeatures(size_t length,
                                                   MessageInfo* info);
  // The rate limit's verdict on replacing the message `to_replace` names,
  // published for `replaced_queue_index` (when `replaces_a_message`), at
  // CLOCK_MONOTONIC `now_ns`. Reads only.
  enum class AgeCheck { kOldEnough, kTooYoung, kRecycled };
  AgeCheck CheckAge(Index to_replace,
                                                 bool replaces_a_message,
                                                 QueueIndex replaced_queue_index,
                                                 int64_t now_ns) const;

  internal::RegionView region_;
  uint32_t slot_ = 0;
  internal::HeldLock ownership_;
  // Process-local: the realtime offset this sender derives stamps with.
  internal::SendClock clock_;
  // index % queue_size without a div, and where queue indices wrap: Send
  // needs both on every call.
  internal::FastModulo ring_slot_of_;
  uint32_t max_index_ = 0;
  // QueueConfig::min_message_age_ns and num_pinners, and whether either is
  // set: the one well-predicted branch on a member that both cost a send
  // that uses neither.
  int64_t min_message_age_ns_ = 0;
  // Layout::guard_offset_bytes, copied for the guard check in every Send.
  uint64_t guard_offset_bytes_ = 0;
  // internal::kGuardSeed, as a member: compared from memory, it saves Send
  // the instruction that loads a 64-bit immediate.
  uint64_t guard_seed_ = 0;
  // Set by MakeSender (see inherited_guard_damage()).
  absl::Status inherited_guard_damage_;
  uint32_t num_pinners_ = 0;
  bool optional_features_ = false;
  // max_size() + 1, or 0 while the scratch is a pinned message that could
  // not be parked (only if the parked entries are scribbled): then Send
  // returns kCorrupted and data() nullptr, writing nothing, until a retry
  // parks it (UnblockScratch). Folded into the size check, so it costs the
  // hot path nothing.
  uint64_t send_limit_ = 0;
};

// Zero-copy reads: a claim on one pinner slot (QueueConfig::num_pinners),
// owned by the thread that made it. Move-only; destroying it unpins and
// releases the slot (on the owning thread).
//
// Pin(q) pins the message published at queue index q and returns a const
// view of it in place; until Unpin, no sender writes it (a sender that takes
// it out of the ring parks it and keeps sending with a spare message), so the
// view's bytes never change. Cost to senders: while num_pinners > 0 each Send
// makes one seq_cst fence and loads every pinner's word; when it took a
// pinned message, four more stores. With num_pinners == 0, one predictable
// branch. Memory: each sender keeps num_pinners spare messages.
//
// Contract: one pin at a time per Pinner (Pin while pinned returns
// kAlreadyPinned). Only the owning thread may call Pin/Unpin (else
// kNotOwner / no-op, nothing touched). Hold pins briefly: a pinned message is
// not reused, but the ring moves on without it (later Reads of its index say
// kTooOld as usual). A pinner whose thread dies keeps its message parked
// until the next MakeSender or MakePinner on the channel releases it.
// Needs a writable mapping (not ReadOnlyChannel): pinning writes the slot.
// Like Read, Pin validates against the message header's full 32-bit queue
// index, so a recycled message passes only if the pinner is preempted for
// exactly a multiple of 2^32 sends; the ring re-check alone would alias
// every 2^16 indices with 16-bit entries (LOCKLESS_32BIT_INDEX).
//
// Memory ordering: everything the sender wrote into the message
// happens-before a kGood Pin returns; the pinner's reads of the view
// happen-before any later write of those bytes by any sender (Unpin is a
// release store that the next sender to reuse the message acquires).
class Pinner {
 public:
  // The moved-from Pinner holds neither the slot nor the pin.
  Pinner(Pinner&& other) noexcept;
  Pinner& operator=(Pinner&& other) noexcept;
  // Unpins (if the calling thread owns the slot), then releases the slot.
  ~Pinner();

  // Pins the message at `queue_index` and fills `*view`. Results as Read's
  // (kGood, kNothingNew, kTooOld, kOverwrote, kCorrupted) plus
  // kAlreadyPinned and kNotOwner; only kGood leaves a pin. Wait-free,
  // RT-safe: a few loads, two stores and a fence; no syscall, no allocation.
  [[nodiscard]] PinResult Pin(QueueIndex queue_index, PinnedMessage* view);

  // Releases the pin (the view must not be used after). No-op if nothing is
  // pinned or the caller is not the owner. One release store; RT-safe.
  void Unpin();

  // Whether this Pinner holds a pin.
  bool pinning() const { return pinning_; }
  uint32_t slot() const { return slot_; }

 private:
  friend class LocklessQueue;
  Pinner(const internal::RegionView& region, uint32_t slot);

  internal::RegionView region_;
  uint32_t slot_ = 0;
  internal::HeldLock ownership_;
  internal::FastModulo ring_slot_of_;
  bool pinning_ = false;
};

// A registration of the calling thread for signal wake-ups. Move-only; the
// destructor unregisters, and must run on the registering thread.
//
// Use: create a SignalFd for WakeupSignal() on the thread, then the Watcher;
// on every wake (the signalfd readable) Drain() the signalfd, call
// Acknowledge(), then read the queue until kNothingNew. At most one wake-up
// signal is queued per watcher at a time (a pending flag in its slot), so a
// watcher that stops draining holds at most one queued signal (plus one per
// second while it stays stuck, see WatcherSlot::pending) and cannot exhaust
// the RLIMIT_SIGPENDING quota its user shares with other readers.
// The price: a waker that claimed the flag and then died, or whose signal
// failed (EPERM, EAGAIN), makes a concurrent Wakeup report already_pending
// although no signal is queued for its message; the flag is re-armed only by
// a Wakeup more than kPendingRearmMs (1 s) later, so if none comes the
// watcher is not woken for that message at all. A reader that must not miss
// the last message of a burst polls its signalfd with a timeout of at most
// 1 s and, on timeout, calls Acknowledge() and reads as on a wake-up.
//
// Signals cannot kill. MakeWatcher makes WakeupSignal() ignored process-wide
// if its disposition is the default (terminate). An ignored signal that is
// blocked (as SignalFd blocks it) still reaches the signalfd; one that
// arrives after the SignalFd unblocked it (a late or stray wake-up) is
// discarded. A program that installs its own handler for WakeupSignal()
// keeps it (it is never replaced), and must then expect that handler to run
// for late wake-ups on any thread that does not block the signal.
class Watcher {
 public:
  Watcher(Watcher&& other) noexcept = default;
  Watcher& operator=(Watcher&& other) noexcept = default;
  ~Watcher() = default;

  uint32_t slot() const { return slot_; }

  // Re-arms wake-ups: clears this watcher's pending flag, so the next Wakeup
  // queues a signal again. Call it after draining the signalfd and before
  // reading the queue (then no message published after the reads is missed:
  // see "Signal path" above). Owning thread only; one store and one fence,
  // no syscall: RT-safe.
  void Acknowledge();

 private:
  friend class LocklessQueue;
  Watcher(const internal::RegionView& region, uint32_t slot);

  internal::WatcherSlot* slot_memory_ = nullptr;
  uint32_t slot_ = 0;
  internal::HeldLock ownership_;
};

// Outcome of Waiter::Wait and LocklessQueue::WaitWithoutRegistering.
enum class WaitResult {
  // A message at or after the queue index waited for has been published
  // (it may already be overwritten: Read says kTooOld or kOverwrote then).
  kReady,
  // The deadline passed first.
  kTimedOut,
  // The calling thread does not own this Waiter's slot (another thread, a
  // forked child, or its thread exited). Nothing was touched.
  kNotOwner,
};

// A registration of the calling thread to sleep until new messages arrive,
// on a futex in the region (no signal). Move-only; the destructor
// unregisters and must run on the registering thread. Occupies one of the
// channel's watcher slots (only slots 0..63 can hold a Waiter).
//
// Cost to senders: each Send loads one word (on the cache line it writes
// anyway); only while some Waiter is inside Wait does Send make a system
// call (one FUTEX_WAKE for all of them). A Waiter whose thread dies inside
// Wait leaves its bit set: every Send then makes that FUTEX_WAKE (waking
// nobody, ~1 us) until the next MakeWatcher or MakeWaiter on the channel
// clears the bits of dead slots.
//
// A sender that dies between advancing next_queue_index and its FUTEX_WAKE
// wakes nobody: Wait therefore re-checks at least every kPendingRearmMs
// (1 s) while asleep, which bounds that delay (and costs an idle waiter one
// wake-up per second).
//
// Works across pid namespaces (the futex is keyed by the shared page, not
// by a thread id). Needs a writable mapping (Wait sets and clears its bit).
class Waiter {
 public:
  Waiter(Waiter&& other) noexcept = default;
  Waiter& operator=(Waiter&& other) noexcept = default;
  ~Waiter() = default;

  // Blocks until a message with queue index `next_to_read` or later has
  // been published (LatestQueueIndex() is at or past it), or until the
  // absolute CLOCK_MONOTONIC `deadline_ns` (see MonotonicNowNs in
  // sync/futex.h; INT64_MAX: no deadline). Returns at once when that message
  // is already there. `next_to_read` is the index the caller will Read next
  // (QueueIndex::Invalid() or index 0 on an empty queue: "any message").
  // Signals (EINTR) and spurious wake-ups are absorbed. Owning thread only.
  // Blocks; no allocation.
  [[nodiscard]] WaitResult Wait(QueueIndex next_to_read, int64_t deadline_ns);

  uint32_t slot() const { return slot_; }

 private:
  friend class LocklessQueue;
  Waiter(const internal::RegionView& region, uint32_t slot);

  internal::RegionView region_;
  uint32_t slot_ = 0;
  internal::HeldLock ownership_;
};

// What one Wakeup call did, watcher by watcher (waiter slots not counted).
struct WakeupReport {
  int signalled = 0;        // A signal was queued now.
  int already_pending = 0;  // One was queued earlier and not acknowledged.
  int quota_exhausted = 0;  // EAGAIN: the watcher's user's RLIMIT_SIGPENDING
                            // is full; nothing queued (flag left clear).
  int other_namespace = 0;  // In another pid namespace (or unknown): a tid
                            // means nothing here, so it was not signalled.
                            // Use a Waiter to reach it.
  int gone = 0;             // Exited or not ours to signal (ESRCH, EPERM).
  int unverified = 0;       // Its owner word names a thread that is not the
                            // one that registered (it died unmarked; its tid
                            // is gone or reused) or that cannot be verified
                            // (no /proc, a record that is not its owner's):
                            // not signalled. The next MakeWatcher frees the
                            // slot of a dead one.
};

// Wakes registered watchers. Holds preallocated scratch so Wakeup does not
// allocate, and this process's pid/uid (shown to the woken thread) so each
// watcher costs exactly one system call. One per thread (not thread-safe
// itself); make a new one after fork().
class WakeUpper {
 public:
  explicit WakeUpper(const LocklessQueue& queue);

  // Wakes each registered, live signal watcher in this process's pid
  // namespace, highest priority first: queues one real-time signal
  // (WakeupSignal()) to it unless one is already pending (not yet
  // Acknowledged). If `current_priority` (the caller's SCHED_FIFO priority,
  // 0 if not real-time) is > 0 and below the highest watcher's, the caller
  // is boosted to that priority while signalling (avoids priority inversion)
  // and restored afterwards. Returns how many watchers are now due to wake
  // (signalled now or already pending); `report`, if given, says what
  // happened to each. Watchers in another pid namespace are never signalled
  // by number (report->other_namespace). A watcher is signalled only after
  // this WakeUpper has verified, once per registration, that the thread its
  // slot names is the thread that registered (its start time in /proc, see
  // ipc/internal/owner_liveness.h; report->unverified otherwise), so a dead
  // watcher the kernel did not mark, whose tid was reused, is not signalled.
  // Residual risk: a watcher verified alive that later dies unmarked, whose
  // tid is then reused by a thread of the same thread group (its own
  // process, or a process that reused its pid), is signalled until the next
  // MakeWatcher frees its slot; the signal is an ignored, blocked-or-
  // discarded SIGRTMIN+2 (Watcher). Not RT-bounded: one syscall per
  // watcher signalled, plus three (open/read/close of a /proc file, a few
  // microseconds) the first time each registration is seen, plus a few to
  // read, set and restore the priority when boosting; allocates nothing.
  // Waiters are woken by Send itself.
  int Wakeup(int current_priority, WakeupReport* report = nullptr);

 private:
  struct Target {
    pid_t pid;
    pid_t tid;
    int priority;
    uint32_t slot;
    uint32_t owner_word;
  };
  internal::RegionView region_;
  pid_t pid_;
  uid_t uid_;
  uint64_t pid_namespace_;
  std::vector<Target> targets_;
  // Per watcher slot: the registration last verified, and the verdict.
  struct Verification {
    uint32_t word = 0;
    internal::OwnerIdentity record{};
    internal::OwnerLiveness liveness = internal::OwnerLiveness::kUnknown;
  };
  std::vector<Verification> verified_;
};

// The real-time signal used for wake-ups (SIGRTMIN + 2). See Watcher for
// what a program with its own handler for it must know.
int WakeupSignal();

// A view of an initialised channel region. Cheap to copy; does not own the
// memory, which must outlive it and every Sender/Watcher made from it.
// Thread-safe: every const method may be called concurrently from any thread
// or process.
class LocklessQueue {
 public:
  // Attaches to `memory` (`size_bytes` long, shared, zero-filled when new).
  // Initialises it if nobody has (safe to call concurrently from many
  // processes: one initialises under the setup lock; a death during
  // initialisation is redone here). Errors: InvalidArgument for a bad config;
  // FailedPrecondition if the region's size, magic, layout version or
  // configuration does not match (the region is left untouched). Blocks on the
  // setup lock only when the region is not yet initialised. Not RT-safe.
  //
  // The setup lock is waited for until `setup_deadline` (default: now +
  // internal::kDefaultSetupLockWait, 10 s, far beyond any live holder's
  // setup work: see ipc/internal/setup_lock.h); then DeadlineExceeded names
  // its holder (pid, tid, alive). A holder that died without the kernel
  // marking it is taken over. A region that carries our magic but whose
  // `initialized` word is neither 0 nor set, or is 0 although no
  // initialiser died, is never re-initialised: DataLoss, region untouched.
  static absl::StatusOr<LocklessQueue> Attach(
      void* memory, size_t size_bytes, const QueueConfig& config,
      std::optional<std::chrono::steady_clock::time_point> setup_deadline =
          std::nullopt);

  // Attaches to an initialised region without writing anything: no
  // initialisation, no lock. For readers that map the region PROT_READ
  // (ReadOnlyChannel): only Read, LatestQueueIndex, CheckGuards,
  // MakeQueueIndex and config() may be called on the result (MakeSender,
  // MakeWatcher and MakePinner write to the region and would fault: a
  // read-only reader cannot pin). Errors: InvalidArgument for a bad
  // config; Unavailable if the region is not initialised yet (its creator
  // is still at it, or died before finishing: a read-write opener finishes
  // it); FailedPrecondition as for Attach. Not RT-safe.
  static absl::StatusOr<LocklessQueue> AttachReadOnly(const void* memory,
                                                      size_t size_bytes,
                                                      const QueueConfig& config);

  const QueueConfig& config() const { return region_.config(); }

  // Claims a free sender slot for the calling thread, first recovering every
  // sender that died (under the setup lock), even while other senders keep
  // sending, are stopped mid-send, or die meanwhile. Errors:
  // ResourceExhausted when all num_senders slots are in use by live senders,
  // or by dead ones whose recovery depends on a live sender stopped mid-send
  // (the message says so; they are recovered by a later call once it moves);
  // DataLoss only if the region holds a state no sequence of sends and deaths
  // produces (corruption). Bounded: ~2 ms of recovery when another slot is
  // free, up to ~200 ms when none is. Not RT-safe (takes the setup lock).
  // Senders whose thread died without the kernel marking it (robust list
  // lost, OOM reaping) or whose tid now names another thread are recovered
  // like any dead sender (ipc/internal/owner_liveness.h; one /proc read per
  // live-looking slot). The setup lock is waited for until `setup_deadline`,
  // as in Attach: DeadlineExceeded names its holder.
  absl::StatusOr<Sender> MakeSender(
      std::optional<std::chrono::steady_clock::time_point> setup_deadline =
          std::nullopt) const;

  // Registers the calling thread for signal wake-ups at SCHED_FIFO
  // `priority` (0 for a non-real-time thread), and makes WakeupSignal()
  // ignored process-wide if it had its default disposition (see Watcher).
  // ResourceExhausted when all watcher slots are in use by live threads.
  // Slots of watchers that died unmarked or whose tid was reused are
  // reclaimed (as MakeSender). Waits for the setup lock up to
  // internal::kDefaultSetupLockWait (DeadlineExceeded). Not RT-safe (takes
  // the setup lock).
  absl::StatusOr<Watcher> MakeWatcher(int priority) const;

  // Registers the calling thread to wait for messages with Waiter::Wait.
  // ResourceExhausted when watcher slots 0..63 are all in use by live
  // threads; reclaims slots whose owner died unmarked, and waits for the
  // setup lock, as MakeWatcher. Not RT-safe (takes the setup lock). Both this and MakeWatcher
  // first clear the waiter bits of slots whose owner died.
  //
  // Pid namespaces: the channel's robust mutexes hold thread ids as their
  // owner's namespace numbers them. Locking, owner-death marking by the
  // kernel, Send, Read, Wait and futex wake-ups all work across namespaces,
  // and so does a contended setup lock: setup takes it with compare-exchange
  // tries (never FUTEX_LOCK_PI, which would look the holder's tid up in the
  // caller's namespace), so a caller in one namespace simply waits for a
  // holder in another to release it. What does not cross namespaces is
  // judging liveness from a tid: a holder (or slot owner) from another
  // namespace that dies without the kernel marking it is never taken over,
  // and a setup call waiting behind it gets DeadlineExceeded naming it
  // ("another pid namespace") at its deadline. Signal wake-ups never cross
  // namespaces (WakeupReport::other_namespace).
  absl::StatusOr<Waiter> MakeWaiter() const;

  // Claims a pinner slot for the calling thread (see Pinner), first
  // releasing the pins of pinners that died (also those that died unmarked,
  // as MakeSender). ResourceExhausted naming the count when all num_pinners
  // slots are held by live threads (or num_pinners is 0). Waits for the
  // setup lock up to internal::kDefaultSetupLockWait (DeadlineExceeded).
  // Not RT-safe (takes the setup lock).
  absl::StatusOr<Pinner> MakePinner() const;

  // Reads the message published at `queue_index`. On kGood, `info` holds its
  // times, index and length, and min(length, data_capacity) payload bytes
  // were copied to `data` (which may be null with capacity 0 to read only the
  // header). kTooOld: it was overwritten before the read began; kOverwrote:
  // during the copy (`data` holds garbage then; never returned as kGood).
  // Wait-free, RT-safe.
  [[nodiscard]] ReadResult Read(QueueIndex queue_index, MessageInfo* info,
                                void* data, size_t data_capacity) const;

  // Reads up to `count` consecutive messages from `first`, exactly as calling
  // Read(first + k, &infos[k], data + k * data_stride, data_capacity) for
  // k = 0, 1, ... and stopping at the first result that is not kGood would;
  // returns how many were kGood and sets *stopped_at to the result that
  // stopped it (kGood if all `count` were). Faster for a reader catching
  // up: it first looks at the ring entries of the whole batch and asks the
  // CPU to fetch every message already published there, so their cache
  // misses overlap instead of following one another. (Those looks are
  // hints; what is returned comes from the reads.) A `count` above
  // kMaxReadBatch is clamped to it: a return of kMaxReadBatch with
  // *stopped_at kGood means "call again". `infos` (or null) has room for
  // min(count, kMaxReadBatch) entries; `data` (or null, then with
  // data_capacity 0) for that many strides, with data_stride >=
  // data_capacity so no message lands on the previous one's bytes (checked
  // in debug builds). As with Read, the stride of the message that stopped
  // the batch may hold a partial copy. Wait-free, RT-safe.
  static constexpr size_t kMaxReadBatch = 32;
  [[nodiscard]] size_t ReadMany(QueueIndex first, size_t count,
                                MessageInfo* infos, void* data,
                                size_t data_stride, size_t data_capacity,
                                ReadResult* stopped_at) const;

  // Checks the guard of every message (ring and scratch; see Sender::data):
  // OK if all are intact, else DataLoss naming each broken one, where it is
  // (ring slot and queue index, or which sender's scratch) and how many
  // bytes past the payload were overwritten. A broken guard in the ring
  // means a write into a published message (a sender writing through a
  // data() pointer kept past its Send, or an overrun of more than a whole
  // message); in a live sender's scratch, an overrun its next Send will
  // report. For a periodic health check or a test. Reads only (works on a
  // read-only mapping); wait-free: one 8-byte load per message, plus the
  // description of broken ones (which allocates). Cost: about one cache
  // miss per message. Never reports a guard that nobody overwrote.
  absl::Status CheckGuards() const;

  // The newest published queue index, or QueueIndex::Invalid() if nothing was
  // ever sent. May lag by one behind a send in flight. Wait-free, RT-safe.
  QueueIndex LatestQueueIndex() const;

  // The oldest queue index the ring still holds, or QueueIndex::Invalid() if
  // nothing was ever sent: LatestQueueIndex() - (queue_size - 1) once the
  // ring has filled, the channel's first index before. A snapshot: by the
  // time the caller reads it, senders may already have overwritten it
  // (Read then says kTooOld or kOverwrote); a reader that resumes a little
  // after it (e.g. half a lap) is not overtaken at once. May lag one send in
  // flight, as LatestQueueIndex. Wait-free, RT-safe (a few loads, no
  // syscall).
  QueueIndex OldestQueueIndex() const;

  // Blocks until a message with queue index `next_to_read` or later has
  // been published, or until the absolute CLOCK_MONOTONIC `deadline_ns`, like
  // Waiter::Wait but without registering: it writes nothing, so it works on
  // a read-only mapping (ReadOnlyChannel::Wait) and needs no watcher slot.
  // It sleeps on the same futex word, so a Send wakes it at once while any
  // Waiter of the channel is registered (senders make the wake-up system
  // call only then); otherwise it notices a message within
  // `poll_interval_ns`. Prefer a Waiter where the mapping is writable.
  // Thread-safe; blocks in FUTEX_WAIT; no allocation.
  [[nodiscard]] WaitResult WaitWithoutRegistering(
      QueueIndex next_to_read, int64_t deadline_ns,
      int64_t poll_interval_ns = 1'000'000) const;

  // Makes a QueueIndex of this queue from a raw counter value.
  QueueIndex MakeQueueIndex(uint32_t raw) const {
    return QueueIndex::FromRaw(raw, region_.queue_size());
  }

  const internal::RegionView& region() const { return region_; }

 private:
  friend absl::StatusOr<LocklessQueue> internal::AttachStartingAtForTest(
      void*, size_t, const QueueConfig&, uint32_t);
  explicit LocklessQueue(const internal::RegionView& region)
      : region_(region), ring_slot_of_(region.queue_size()) {}

  // Claims a free or dead watcher slot below `limit` for the calling thread
  // (setup lock held), recording `kind` and `priority` first.
  absl::StatusOr<uint32_t> ClaimWatcherSlot(uint32_t kind, int priority,
                                            uint32_t limit) const;

  // Marks pinners that died unmarked and releases dead pinners' pins
  // (caller holds the setup lock).
  void ReleaseDeadPins() const;

  // Claims the first claimable sender slot (caller holds the setup lock);
  // nullopt if none is, DataLoss if a claimable slot is corrupted.
  absl::StatusOr<std::optional<Sender>> ClaimSenderSlot() const;

  internal::RegionView region_;
  // index % queue_size without a div (Read's ring slot).
  internal::FastModulo ring_slot_of_;
};

namespace internal {

// Test-only: attaches like LocklessQueue::Attach, but a region initialised
// by this call starts its queue index at `first_queue_index` (to test the
// 32-bit wrap without sending 2^32 messages).
absl::StatusOr<LocklessQueue> AttachStartingAtForTest(
    void* memory, size_t size_bytes, const QueueConfig& config,
    uint32_t first_queue_index);

}  // namespace internal
}  // namespace lockless

#endif  // LOCKLESS_IPC_LOCKLESS_QUEUE_H_
