// The memory printer: validates and prints a channel region in readable form,
// for debugging a live robot (the `dump` tool is a thin wrapper around it).
//
// Must not be used to decide anything about a queue in production code: what
// it prints is a best-effort snapshot of memory that other processes may be
// rewriting while it reads, and it may be corrupt. Use LocklessQueue::Read for
// data you act on.
//
// Contract:
//   - Never writes and never locks: the memory is only read, through atomic
//     loads (relaxed or acquire) and memcpy, so a PROT_READ mapping is enough
//     and the printer can never corrupt or block a live channel.
//   - Trusts nothing it reads. The header is validated first
//     (ValidateRegionImage); afterwards every offset comes from the layout
//     computed from one validated copy of the configuration, and every
//     message number, length and queue index read from the arrays is
//     bounds-checked where it is used, because it may change between two
//     reads. Corrupt values are printed and flagged, never followed.
//   - Never aborts on anything found in the memory. Errors are one-line
//     absl::Status messages.
//   - SIGBUS-safe: every read of the memory is a copy into memory the
//     printer already holds, under a SIGBUS guard (internal/sigbus_guard.h),
//     so a file truncated under its mapping gives FailedPrecondition "file
//     was truncated while reading", never a crash.
//   - Bounded memory: the memory is read in place, never copied whole. The
//     printer holds the ring and sender/watcher slots (queue_size entries)
//     and one message (at most max_data_bytes of payload) at a time;
//     PrintRegionTo hands the text out piece by piece (after every ring
//     slot), and release_pages gives back the message pages it touched.
//   - On a live channel: each message is copied seqlock-style and shown as
//     "changed while reading" (and its contents not shown) if a sender
//     recycled it meanwhile. The ownership check re-checks anomalies with
//     fresh passes and reports only those that persist, and a dead sender
//     with a send in flight as "recovery pending"
//     (internal/printer_ownership.h).
//
// Thread-safety: both functions are pure with respect to the process (no
// globals) and may be called concurrently. Not real-time safe: they allocate,
// and PrintRegion's default liveness check makes one access(2) per owner.
//
// Memory ordering: ValidateRegionImage acquire-loads `initialized`, pairing
// with the release store that finishes InitializeRegion, so for an in-process
// caller the validated header fields are the ones the creator wrote. Every
// message is read seqlock-style (acquire-load its queue index, copy, acquire
// fence, reload). Ring and slot words are loaded one by one (a pass is not a
// consistent cut; the ownership check compensates by re-checking).
#ifndef LOCKLESS_IPC_QUEUE_PRINTER_H_
#define LOCKLESS_IPC_QUEUE_PRINTER_H_

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "absl/strings/string_view.h"

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "ipc/internal/queue_layout.h"
#include "ipc/queue_config.h"

namespace lockless {

// Checks that `memory` (`size_bytes` readable bytes, which may come from
// anywhere: truncated, foreign, corrupted, or being modified live) holds an
// initialised channel region, before anything in it is trusted:
//   size >= the header, suitably aligned (kCacheLineBytes), magic, layout
//   version, Index width, configuration (ValidateConfig), the total size the
//   configuration implies == the header's total size <= size_bytes, and
//   `initialized`.
// Returns the layout computed from the header's configuration, or
// FailedPrecondition (not a channel / wrong version / truncated / not
// initialised) or DataLoss (a channel header whose contents are inconsistent),
// each with a one-line message.
//
// Reads only the RegionHeader, in one guarded copy (SIGBUS: FailedPrecondition).
absl::StatusOr<internal::Layout> ValidateRegionImage(const void* memory,
                                                     size_t size_bytes);

struct PrintOptions {
  // Only the header, configuration, indices and an ownership summary; no
  // ring slots, messages, or per-slot sender/watcher lines.
  bool summary_only = false;
  // Payloads as a hex dump instead of escaped printable characters.
  bool hex_data = false;
  // Print only the message published at this queue index (raw counter
  // value). NotFound if it is no longer (or not yet) in the ring;
  // InvalidArgument if it is not a legal index for the queue.
  std::optional<uint32_t> queue_index;
  // Payload bytes printed per message; the rest is elided with a count.
  size_t max_data_bytes = 64;
  // Whether a thread id names a live thread. Empty: checks that /proc/<tid>
  // exists (access(2)), which is right for threads in this pid namespace.
  std::function<bool(pid_t)> is_alive;
  // Give back (MADV_DONTNEED) the message pages read, every 256 ring slots,
  // so a dump of a large region stays small in memory. Only for a mapping
  // of a file (the data stays in the file), never for anonymous memory;
  // costs the caller its pre-faulted pages, so tools only.
  bool release_pages = false;
  // Test hook: runs after each message is copied and before it is
  // re-checked (to overwrite it in between).
  std::function<void()> after_message_copy_for_test;
};

// Validates `memory` like ValidateRegionImage, then appends a readable
// description to `*out`:
//   - setup lock owner (tid, alive/dead, OWNER_DIED, WAITERS), layout version,
//     total size, configuration, next_queue_index and the latest index;
//   - every ring slot: the stored Index decoded (queue index bits and
//     message number, or invalid) and whether it is the entry expected there
//     for the current lap, followed by that message: number, its own queue
//     index, length, monotonic and realtime send times (UTC), payload;
//   - senders (owner tid alive/dead, scratch_index, to_replace) and watchers
//     (owner tid alive/dead, pid, priority), plus a check that every message
//     has exactly one owner (ring slot, sender scratch or parked entry).
// See PrintOptions for the reduced forms. On error `*out` is left unchanged.
absl::Status PrintRegion(const void* memory, size_t size_bytes,
                         const PrintOptions& options, std::string* out);

// The same, handing the text to `sink` piece by piece as it is produced (so
// a dump of a large region never holds all of its text). On an error found
// after printing started, the pieces already handed out stay handed out.
absl::Status PrintRegionTo(const void* memory, size_t size_bytes,
                           const PrintOptions& options,
                           const std::function<void(absl::string_view)>& sink);

// One line's worth of facts about a channel region, for listings.
struct RegionSummary {
  QueueConfig config;
  uint64_t size_bytes = 0;
  int senders_alive = 0;
  // Dead owner, or OWNER_DIED: recovered by the next MakeSender.
  int senders_dead = 0;
  int watchers_alive = 0;
  int watchers_dead = 0;
  // Pinner slots (QueueConfig::num_pinners) held by live / dead owners, and
  // pins held (a dead pinner's counts until the next MakeSender/MakePinner).
  int pinners_alive = 0;
  int pinners_dead = 0;
  int pins_held = 0;
  // Latest published queue index and its send time (realtime, ns), if any.
  std::optional<uint32_t> latest_queue_index;
  std::optional<int64_t> latest_realtime_ns;
};

// Validates like ValidateRegionImage and summarises. Reads the header, the
// slots and the latest message only (guarded, read-only, lock-free).
absl::StatusOr<RegionSummary> SummarizeRegion(
    const void* memory, size_t size_bytes,
    const std::function<bool(pid_t)>& is_alive = {});

}  // namespace lockless

#endif  // LOCKLESS_IPC_QUEUE_PRINTER_H_
