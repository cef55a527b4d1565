// LocklessQueue: a broadcast ring of the last `queue_size` messages in a shared
// memory region, with many senders and many passive readers across processes.
//
// Algorithm (DESIGN.md sections 4-6). Ring slot i holds an Index naming the
// message published for some queue index q with q % queue_size == i. There are
// queue_size + num_senders messages; each sender owns one spare ("scratch")
// message. To send, a sender fills its scratch, then swaps it into the ring
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
#include "ipc/internal/held_lock.h"
#include "ipc/internal/queue_layout.h"
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
};

// Outcome of LocklessQueue::Read.
enum class ReadResult {
  // The message was copied out and validated.
  kGood,
  // Nothing has been published at that queue index yet.
  kNothingNew,
  // The message was overwritten (the reader fell more than queue_size behind,
  // or a sender replaced it during the copy). Resynchronise from
  // LatestQueueIndex().
  kTooOld,
  // The ring names a message that cannot exist, or a length larger than the
  // configuration allows: another process corrupted the region.
  kCorrupted,
};

const char* ReadResultName(ReadResult result);
const char* SendResultName(SendResult result);

// Facts about a sent or read message.
struct MessageInfo {
  std::chrono::steady_clock::time_point monotonic_sent_time;  // CLOCK_MONOTONIC
  std::chrono::system_clock::time_point realtime_sent_time;   // CLOCK_REALTIME
  QueueIndex queue_index;
  size_t length = 0;
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
  // syscall, no allocation; lock-free. (The two clock reads go through the
  // vDSO; on a machine whose clocksource has no vDSO support, e.g. hpet or
  // acpi_pm, the kernel makes them system calls: check
  // /sys/devices/system/clocksource/clocksource0/current_clocksource shows
  // tsc or kvm-clock.) `info`, if given, receives the send times and the
  // queue index used. Errors: kMessageTooLarge, kCorrupted, kNotOwner (see
  // SendResult); in each case nothing was published.
  [[nodiscard]] SendResult Send(const void* data, size_t length,
                                MessageInfo* info = nullptr);

  // Zero-copy: write up to max_size() bytes into data(), then Send(length)
  // publishes them in place. data() changes after every successful send, and
  // is nullptr when the calling thread does not own the slot (see above).
  void* data();
  size_t max_size() const;
  [[nodiscard]] SendResult Send(size_t length, MessageInfo* info = nullptr);

  // Which sender slot this is (for diagnostics).
  uint32_t slot() const { return slot_; }

 private:
  friend class LocklessQueue;
  Sender(const internal::RegionView& region, uint32_t slot);

  // The scratch message's payload (no ownership check).
  void* ScratchData() const;
  // Steps 2-6 of the send protocol (lockless_queue.cc), after the checks.
  SendResult Publish(size_t length, MessageInfo* info);

  internal::RegionView region_;
  uint32_t slot_ = 0;
  internal::HeldLock ownership_;
};

// A registration of the calling thread for wake-ups. Move-only; the
// destructor unregisters, and must run on the registering thread.
class Watcher {
 public:
  Watcher(Watcher&& other) noexcept = default;
  Watcher& operator=(Watcher&& other) noexcept = default;
  ~Watcher() = default;

  uint32_t slot() const { return slot_; }

 private:
  friend class LocklessQueue;
  Watcher(const internal::RegionView& region, uint32_t slot);

  uint32_t slot_ = 0;
  internal::HeldLock ownership_;
};

// Wakes registered watchers. Holds preallocated scratch so Wakeup does not
// allocate, and this process's pid/uid (shown to the woken thread) so each
// watcher costs exactly one system call. One per thread (not thread-safe
// itself); make a new one after fork().
class WakeUpper {
 public:
  explicit WakeUpper(const LocklessQueue& queue);

  // Sends one queued real-time signal (WakeupSignal()) to each registered,
  // live watcher thread, highest priority first. If `current_priority` (the
  // caller's SCHED_FIFO priority, 0 if not real-time) is > 0 and below the
  // highest watcher's, the caller is boosted to that priority while
  // signalling (avoids priority inversion) and restored afterwards. Returns
  // how many threads were signalled. Not RT-bounded: makes one syscall per
  // watcher (plus a few to read, set and restore the priority when
  // boosting); allocates nothing.
  int Wakeup(int current_priority);

 private:
  struct Target {
    pid_t pid;
    pid_t tid;
    int priority;
  };
  internal::RegionView region_;
  pid_t pid_;
  uid_t uid_;
  std::vector<Target> targets_;
};

// The real-time signal used for wake-ups (SIGRTMIN + 2).
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
  static absl::StatusOr<LocklessQueue> Attach(void* memory, size_t size_bytes,
                                              const QueueConfig& config);

  // Attaches to an initialised region without writing anything: no
  // initialisation, no lock. For readers that map the region PROT_READ
  // (ReadOnlyChannel): only Read, LatestQueueIndex, MakeQueueIndex and
  // config() may be called on the result (MakeSender and MakeWatcher write
  // to the region and would fault). Errors: InvalidArgument for a bad
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
  absl::StatusOr<Sender> MakeSender() const;

  // Registers the calling thread for wake-ups at SCHED_FIFO `priority` (0 for
  // a non-real-time thread). ResourceExhausted when all watcher slots are in
  // use by live threads. Not RT-safe.
  absl::StatusOr<Watcher> MakeWatcher(int priority) const;

  // Reads the message published at `queue_index`. On kGood, `info` holds its
  // times, index and length, and min(length, data_capacity) payload bytes
  // were copied to `data` (which may be null with capacity 0 to read only the
  // header). Wait-free, RT-safe.
  [[nodiscard]] ReadResult Read(QueueIndex queue_index, MessageInfo* info,
                                void* data, size_t data_capacity) const;

  // The newest published queue index, or QueueIndex::Invalid() if nothing was
  // ever sent. May lag by one behind a send in flight. Wait-free, RT-safe.
  QueueIndex LatestQueueIndex() const;

  // Makes a QueueIndex of this queue from a raw counter value.
  QueueIndex MakeQueueIndex(uint32_t raw) const {
    return QueueIndex::FromRaw(raw, region_.queue_size());
  }

  const internal::RegionView& region() const { return region_; }

 private:
  friend absl::StatusOr<LocklessQueue> internal::AttachStartingAtForTest(
      void*, size_t, const QueueConfig&, uint32_t);
  explicit LocklessQueue(const internal::RegionView& region)
      : region_(region) {}

  // Claims the first claimable sender slot (caller holds the setup lock);
  // nullopt if none is, DataLoss if a claimable slot is corrupted.
  absl::StatusOr<std::optional<Sender>> ClaimSenderSlot() const;

  internal::RegionView region_;
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
