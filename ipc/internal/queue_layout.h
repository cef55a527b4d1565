// The memory layout of one channel region. Internal: only ipc/ includes this.
//
//   RegionHeader                      (cache-line aligned fields, see below)
//   AtomicIndex  ring[queue_size]     which message sits in each ring slot,
//                                     interleaved over cache lines (Layout)
//   Message      messages[queue_size + num_senders * (1 + num_pinners)]
//   WatcherSlot  watchers[num_watchers]
//   SenderSlot   senders[num_senders]
//   PinnerSlot   pinners[num_pinners]
//   AtomicIndex  parked[num_senders][num_pinners]   spare messages per sender
//
// Every array starts on a cache line; every Message is padded to whole cache
// lines so a sender filling its scratch message never false-shares with a
// reader copying a neighbour. Likewise consecutive ring slots sit on
// different cache lines (see Layout::ring_lines), so a sender publishing
// slot r + 1 does not take the line from a reader still reading slot r. Nothing in the region is a pointer (each process
// maps it at its own address), except the robust-list links inside each
// RobustMutex, which only their owning thread ever follows.
//
// Ownership invariant (what makes death recovery possible without a free
// list): each of the queue_size + num_senders * (1 + num_pinners) messages is
// referenced by exactly one ring slot, one sender's scratch_index or one
// sender's parked entry, except transiently: inside a send, where the
// sender's to_replace names the other candidate, and inside a swap of a
// pinned scratch with a parked message (SenderSlot::swap_take), which names
// the parked message moving to the scratch. Every ownership move is local to
// one sender slot (its scratch, its to_replace's ring slot, its own parked
// entries): no message ever moves from one sender to another directly.
#ifndef LOCKLESS_IPC_INTERNAL_QUEUE_LAYOUT_H_
#define LOCKLESS_IPC_INTERNAL_QUEUE_LAYOUT_H_

#include <sys/types.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "index/atomic_index.h"
#include "index/index.h"
#include "ipc/queue_config.h"
#include "sync/robust_mutex.h"

namespace lockless {
namespace internal {

inline constexpr size_t kCacheLineBytes = 64;

// "LOCKLESS" in ASCII, little-endian: marks a region as ours.
inline constexpr uint64_t kRegionMagic = 0x5353454c4b434f4cull;
// Bump whenever anything in this file changes shape or meaning.
// 2: wake-up words (issue 11). 3: owner records (issue 12). 4: first queue
// index and minimum message age (issue 16). 5: ring slots interleaved over
// cache lines (issue 14). 6: guard bytes after every message's payload
// (issue 16). 7: pinner slots, parked messages and the swap intent (issue
// 16, pinning).
inline constexpr uint32_t kLayoutVersion = 7;
// Value of RegionHeader::initialized once the region is ready. Not just 1, so
// that a foreign file is unlikely to look initialised.
inline constexpr uint32_t kInitializedValue = 0x1d1e1a11u;
// Value of RegionHeader::initializing while InitializeRegion runs.
inline constexpr uint32_t kInitializingValue = 0x1a1e1d1bu;

// The configuration as stored in the region (fixed-width fields).
struct StoredConfig {
  uint32_t num_watchers;
  uint32_t num_senders;
  uint32_t queue_size;
  uint32_t index_bytes;  // sizeof(Index): 4 or 8; both sides must agree.
  uint64_t message_data_size_bytes;
  uint64_t min_message_age_ns;  // QueueConfig::min_message_age_ns.
  uint32_t num_pinners;
  uint32_t reserved0;  // 0.
};
static_assert(sizeof(StoredConfig) == 40);

// Who owns a robust mutex, as its owner describes itself (plain copy).
struct OwnerIdentity {
  int32_t tid;                // As the owner's pid namespace numbers it.
  int32_t pid;                // Its process, numbered likewise.
  uint64_t pid_namespace;     // Inode of its /proc/self/ns/pid; 0 unknown.
  uint64_t start_time_ticks;  // /proc/<pid>/task/<tid>/stat field 22; 0
                              // unknown.
};

// The same in the region, next to the mutex it describes, so that a survivor
// can tell the owner from a later thread with the same tid when the kernel did
// not mark its death (owner_liveness.h). Idle: all 0. Written only by the
// mutex's owner-to-be or owner, with StoreOwnerRecord (tid last, release);
// read with LoadOwnerRecord. A record whose tid differs from the mutex word's
// owner says nothing about that owner.
struct OwnerRecord {
  std::atomic<int32_t> tid;
  std::atomic<int32_t> pid;
  std::atomic<uint64_t> pid_namespace;
  std::atomic<uint64_t> start_time_ticks;
};
static_assert(sizeof(OwnerRecord) == 24);
static_assert(std::atomic<uint64_t>::is_always_lock_free);

struct RegionHeader {
  // Held while initialising, recovering dead senders, claiming a sender slot
  // or registering a watcher. Never touched by Send or Read. Idle: 0.
  alignas(kCacheLineBytes) RobustMutex setup_lock;
  // The setup lock's holder, written by it right after locking; its tid is
  // cleared just before unlocking (the other fields are left behind), so a
  // record never describes a later holder that reuses the tid.
  OwnerRecord setup_lock_owner;

  // Written once, under setup_lock, before `initialized`; read-only after
  // (except `initializing`, see there). A zero-filled region (fresh file)
  // has all of these zero.
  alignas(kCacheLineBytes) uint64_t magic;
  uint32_t layout_version;
  // kInitializingValue from InitializeRegion's first store until just after
  // `initialized` is set, then 0. Found set in a region that is not
  // initialised, by a taker of setup_lock whose previous holder died: that
  // initialiser died mid-way, and only then is the region initialised again
  // (anything else half-initialised is a scribbled live channel).
  uint32_t initializing;
  uint64_t total_size_bytes;
  StoredConfig config;
  // The queue index of the first message ever sent on the channel (0 except
  // in tests of the wrap; OldestQueueIndex before the first lap completes).
  uint32_t first_queue_index;
  // 0 until the region is fully initialised, then kInitializedValue (release
  // store under setup_lock; readers acquire). A death before the store leaves
  // 0 and the next opener initialises again.
  std::atomic<uint32_t> initialized;

  // The queue index the next send will publish (invalid before the first
  // send). Written by every sender with CAS; on its own cache line because it
  // is the hottest shared word. Also the futex word that Waiter::Wait sleeps
  // on (FUTEX_WAIT with the value it last saw; read-only for the kernel).
  alignas(kCacheLineBytes) AtomicQueueIndex next_queue_index;
  uint32_t reserved1;
  // Which watcher slots hold a Waiter that is (about to be) asleep on
  // next_queue_index: bit w for slot w (only slots 0..63 can hold a Waiter).
  // On next_queue_index's cache line, so the one load Send makes of it
  // costs no extra cache miss. Idle: 0. Set and cleared by the waiting
  // thread with one atomic RMW each (fetch_or / fetch_and), so a death
  // leaves it either set or clear, never half-written. A bit left set by a
  // dead waiter is cleared under setup_lock by the next MakeWatcher /
  // MakeWaiter (its slot's owner word says OWNER_DIED or is free).
  std::atomic<uint64_t> waiter_bits;
};
static_assert(offsetof(RegionHeader, waiter_bits) / kCacheLineBytes ==
                  offsetof(RegionHeader, next_queue_index) / kCacheLineBytes,
              "Send loads waiter_bits right after its CAS of "
              "next_queue_index: keep them on one cache line");
static_assert(std::atomic<uint64_t>::is_always_lock_free);

struct MessageHeader {
  // The queue index this message was published for; invalid while the
  // message is a sender's scratch (being filled). Readers check it before and
  // after copying (a seqlock with the queue index as sequence).
  AtomicQueueIndex queue_index;
  uint32_t reserved0;
  // Payload length in bytes (<= message_data_size_bytes).
  std::atomic<uint64_t> length;
  // Send times in nanoseconds (CLOCK_MONOTONIC and CLOCK_REALTIME).
  std::atomic<int64_t> monotonic_sent_time_ns;
  std::atomic<int64_t> realtime_sent_time_ns;
};
static_assert(sizeof(MessageHeader) == 32);

// One message: header, then the payload (message_data_size_bytes bytes), then
// the guard: the bytes from the end of the payload to the end of the stride
// (at least kGuardBytes of them) hold GuardByte(message_index, i), so a
// zero-copy sender that writes past max_size() changes them. The first
// kGuardBytes of them, the guard word, are what Send and CheckGuards compare
// (one unaligned 8-byte load, starting at the very first byte past the
// payload, so even a one-byte overrun is seen); the rest of the padding only
// tells the dump how far an overrun reached.
//
// Who writes the guard: InitializeRegion (before `initialized`); the owner of
// the message when it is a sender's scratch (Sender::Send on finding it
// broken, MakeSender on claiming a slot whose scratch guard is broken), never
// while the message is in the ring. Readers never copy it (they copy at most
// message_data_size_bytes). CheckGuards and the dump read it racily: a guard
// being restored may be reported broken, which it was.
struct alignas(kCacheLineBytes) Message {
  MessageHeader header;
  // Payload follows the header directly in memory.
  unsigned char* data() { return reinterpret_cast<unsigned char*>(this + 1); }
  const unsigned char* data() const {
    return reinterpret_cast<const unsigned char*>(this + 1);
  }
};

// The guard word's size: bytes that every stride has after the payload.
inline constexpr uint64_t kGuardBytes = 8;

// The guard pattern of message `message_index`: a fixed, unlikely value (no
// zero byte, no ASCII, not a small integer or a pointer) xored with the
// message's number, so that a neighbour's guard copied over this one (a
// memcpy of a whole message) does not look intact. An xor, not a hash: it
// costs Send one instruction.
inline constexpr uint64_t kGuardSeed = 0xa5c3e1f00f1e3c5aull;
inline constexpr uint64_t GuardWord(uint64_t message_index) {
  return kGuardSeed ^ message_index;
}
// Byte `i` (0 = first byte past the payload) of the guard area.
inline unsigned char GuardByte(uint64_t message_index, uint64_t i) {
  return static_cast<unsigned char>(GuardWord(message_index) >>
                                    (8 * (i % kGuardBytes)));
}

// What a registered watcher slot is waiting with.
enum WatcherKind : uint32_t {
  kSignalWatcher = 0,  // Watcher: woken by WakeUpper with a real-time signal.
  kFutexWaiter = 1,    // Waiter: sleeps on next_queue_index; never signalled.
};

struct alignas(kCacheLineBytes) WatcherSlot {
  // Owned (locked) by the watching thread for as long as it is registered:
  // the word holds its tid (as the owner's own pid namespace numbers it).
  // FUTEX_OWNER_DIED marks a watcher that died; its slot is free to reuse.
  // Idle: 0.
  RobustMutex ownership;
  // The owner (owner_liveness.h). Written like pid; left behind on release.
  OwnerRecord owner;
  // Process id and SCHED_FIFO priority of the owner. Written under
  // setup_lock before `ownership` is locked, so a waker that sees the owner's
  // tid also sees these.
  std::atomic<int32_t> pid;
  std::atomic<int32_t> priority;
  // The owner's pid namespace (inode of /proc/self/ns/pid; 0 if unknown).
  // A tid and pid only name a thread inside that namespace: a waker in any
  // other one never signals by number. Written like pid.
  std::atomic<uint64_t> pid_namespace;
  // WatcherKind of the owner. Written like pid.
  std::atomic<uint32_t> kind;
  // Wake-up pending: 0 when none; otherwise the CLOCK_MONOTONIC millisecond
  // (forced odd, so never 0) at which a waker claimed the right to queue one
  // signal. Set 0 -> stamp by a waker (CAS) before it signals, so at most one
  // wake-up is queued per watcher; cleared to 0 by the owner
  // (Watcher::Acknowledge) before it reads the queue; reset to 0 by a waker
  // whose signal failed; 0 at registration (written like pid). A stamp older
  // than kPendingRearmMs is taken as a lost wake-up (its waker died between
  // the CAS and the signal, or the owner does not drain) and re-armed by the
  // next waker (CAS old stamp -> new stamp): at most one extra queued signal
  // per watcher per kPendingRearmMs. Wakers that saw the stale-to-be stamp
  // meanwhile queued nothing: their wake-ups are lost unless a later waker
  // re-arms or the owner polls with a timeout (see Watcher).
  // Waiter::Wait also re-checks at least every kPendingRearmMs.
  std::atomic<uint32_t> pending;
};
// A pending stamp older than this is re-armed (see WatcherSlot::pending).
inline constexpr uint32_t kPendingRearmMs = 1000;

struct alignas(kCacheLineBytes) SenderSlot {
  // Owned by the thread holding the Sender. FUTEX_OWNER_DIED marks a sender
  // that died, to be recovered under setup_lock. Idle: 0.
  RobustMutex ownership;
  // The owner (owner_liveness.h). Written under setup_lock just before
  // `ownership` is locked (so a claimer's record is complete before its tid
  // appears in the word); left behind on release.
  OwnerRecord owner;
  // The sender's scratch message (message_index) and, during a send, the
  // queue index it is publishing. Always valid after initialisation.
  AtomicIndex scratch_index;
  // During a send: the ring entry the sender is about to replace. Invalid
  // when no replacement is in flight.
  AtomicIndex to_replace;
  // Swap intent (pinning, see scratch_parking.h): while valid, the sender is
  // swapping its pinned scratch with parked entry swap_parked_entry, whose
  // message (swap_take) becomes the scratch. Written by the owner only:
  // swap_parked_entry (relaxed), then swap_take (release), then
  // parked[j] := scratch, scratch_index := swap_take, swap_take := invalid.
  // Idle: invalid (and swap_parked_entry left behind). Resolved for a dead
  // owner under setup_lock (ResolveSwapIntent).
  AtomicIndex swap_take;
  std::atomic<uint32_t> swap_parked_entry;
};

struct alignas(kCacheLineBytes) PinnerSlot {
  // Owned by the thread holding the Pinner, claimed under setup_lock like a
  // sender slot. FUTEX_OWNER_DIED marks a pinner that died; its `pinned` is
  // cleared under setup_lock (ReleaseDeadPinners) and the slot reused.
  // Idle: 0.
  RobustMutex ownership;
  // The owner (owner_liveness.h), written as for SenderSlot::owner.
  OwnerRecord owner;
  // The ring entry (queue-index bits + message index) this pinner pins, or
  // is about to pin (Pin stores it before validating); invalid when none.
  // Written by the owner (release store + seq_cst fence in Pin, release in
  // Unpin) and, for a dead owner, under setup_lock. Senders load it after a
  // seq_cst fence and never hand out a message it names as scratch.
  AtomicIndex pinned;
};

// Ring entries per cache line.
inline constexpr uint32_t kRingSlotsPerLine =
    kCacheLineBytes / sizeof(AtomicIndex);
static_assert((kRingSlotsPerLine & (kRingSlotsPerLine - 1)) == 0);

// Byte offsets of each array inside the region, derived from the config.
struct Layout {
  QueueConfig config;
  uint64_t ring_offset;
  // The ring is ring_lines * kRingSlotsPerLine entries (queue_size rounded
  // up), read as a matrix of kRingSlotsPerLine rows by ring_lines columns:
  // slot r is entry (r % kRingSlotsPerLine) * ring_lines +
  // r / kRingSlotsPerLine. Consecutive slots are then ring_lines entries
  // apart, on different cache lines once ring_lines >= kRingSlotsPerLine
  // (queue_size >= 64, or 256 with 4-byte entries). Measured (README, issue
  // 14): +12% delivered throughput at 64 B, because a reader lagging a few
  // messages behind no longer shares a line with the slot being published.
  // Entries past queue_size are never used (left zero; nothing reads them).
  uint32_t ring_lines;
  uint64_t messages_offset;
  uint64_t message_stride_bytes;
  // Where a message's guard starts (its first byte past the payload) and how
  // many guard bytes follow, counted from the start of the message.
  uint64_t guard_offset_bytes;
  uint64_t guard_size_bytes;
  uint64_t num_messages;
  uint64_t watchers_offset;
  uint64_t senders_offset;
  uint64_t pinners_offset;
  uint64_t parked_offset;
  uint64_t total_size_bytes;
};

// Where ring slot `slot` (< queue_size) sits in the ring array (see
// Layout::ring_lines), and the inverse (queue_size when `entry` is unused).
inline uint64_t RingEntryOf(const Layout& layout, uint32_t slot) {
  return uint64_t{slot & (kRingSlotsPerLine - 1)} * layout.ring_lines +
         slot / kRingSlotsPerLine;
}
uint32_t RingSlotAtEntry(const Layout& layout, uint64_t entry);

// Computes the layout, or the ValidateConfig error.
absl::StatusOr<Layout> ComputeLayout(const QueueConfig& config);

// Typed view of a mapped region. Cheap to copy; does not own the memory.
class RegionView {
 public:
  RegionView() = default;
  RegionView(void* base, const Layout& layout)
      : base_(static_cast<unsigned char*>(base)), layout_(layout) {}

  const Layout& layout() const { return layout_; }
  const QueueConfig& config() const { return layout_.config; }
  uint32_t queue_size() const { return layout_.config.queue_size; }
  void* base() const { return base_; }

  RegionHeader* header() const {
    return reinterpret_cast<RegionHeader*>(base_);
  }
  AtomicIndex* ring(uint32_t slot) const {
    return reinterpret_cast<AtomicIndex*>(base_ + layout_.ring_offset) +
           RingEntryOf(layout_, slot);
  }
  // Whether `entry` (a ring slot, scratch_index or to_replace value) is
  // valid and names one of this region's messages. Anything read from the
  // region must pass this before message() is called on it: another process
  // may have scribbled on the region.
  bool NamesMessage(Index entry) const {
    return entry.valid() && entry.message_index() < layout_.num_messages;
  }
  Message* message(uint64_t message_index) const {
    return reinterpret_cast<Message*>(base_ + layout_.messages_offset +
                                      message_index *
                                          layout_.message_stride_bytes);
  }
  WatcherSlot* watcher(uint32_t i) const {
    return reinterpret_cast<WatcherSlot*>(base_ + layout_.watchers_offset) + i;
  }
  SenderSlot* sender(uint32_t i) const {
    return reinterpret_cast<SenderSlot*>(base_ + layout_.senders_offset) + i;
  }
  PinnerSlot* pinner(uint32_t i) const {
    return reinterpret_cast<PinnerSlot*>(base_ + layout_.pinners_offset) + i;
  }
  // Parked entry `j` (< num_pinners) of sender slot `s`: a spare message
  // that sender owns (SenderSlot::swap_take).
  AtomicIndex* parked(uint32_t s, uint32_t j) const {
    return reinterpret_cast<AtomicIndex*>(base_ + layout_.parked_offset) +
           uint64_t{s} * layout_.config.num_pinners + j;
  }

 private:
  unsigned char* base_ = nullptr;
  Layout layout_{};
};

// Guards (see Message). Single-owner writes: only for a message nobody else
// writes (a scratch whose sender slot the caller owns, or a region being
// initialised). The guard word is written last, so a death part-way leaves it
// broken (if it was) and the next check repairs it again.
void WriteGuard(const RegionView& region, uint64_t message_index);
// Whether the guard word of message `message_index` is intact. Reads only;
// tolerates a concurrent restore (reports what it saw).
bool GuardIntact(const RegionView& region, uint64_t message_index);
// How many bytes of message `message_index`'s guard area, counted from its
// first byte, an overrun reached: 0 when every guard byte is intact, else one
// past the last changed byte. Reads only (racily, as GuardIntact).
uint64_t GuardDamageBytes(const RegionView& region, uint64_t message_index);

// Writes a fresh, consistent queue into `region` (whose setup_lock the caller
// holds): ring slot i holds message i as if published one lap before
// `first_queue_index`, sender s owns message queue_size + s, watchers idle,
// parked entry j of sender s owns message queue_size + num_senders +
// s * num_pinners + j, then the header and finally `initialized`. `first_queue_index` is 0 except
// in tests that start near the 32-bit wrap point.
void InitializeRegion(const RegionView& region, uint32_t first_queue_index);

// The futex words of every robust mutex in the region (setup lock, watchers,
// senders, pinners), for the death-test harness.
std::vector<std::atomic<uint32_t>*> RobustFutexWords(const RegionView& region);

}  // namespace internal
}  // namespace lockless

#endif  // LOCKLESS_IPC_INTERNAL_QUEUE_LAYOUT_H_
