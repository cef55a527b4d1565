// The memory printer's only reads of a (possibly live, possibly shrinking)
// region: each copies what it needs into caller-owned memory, under
// GuardSigbus, and reports a fault instead of crashing. Internal to the
// printer.
//
// Memory: ReadSlots holds the ring and the sender and watcher slots
// (queue_size entries plus a few words per slot); ReadMessage one message,
// payload bounded by the caller. Nothing else of the region is copied.
//
// Memory ordering: ReadMessage is a seqlock reader, as LocklessQueue::Read:
// acquire-load the message's queue index, copy, acquire fence, reload (the
// fence pairs with the sender's release fence after it invalidated the
// queue index and before it rewrote anything). ReadSlots loads each entry
// with acquire (the ring, pairing with the publishing CAS) or relaxed (slot
// words: a display snapshot); the set of entries is not a consistent cut.
#ifndef LOCKLESS_IPC_INTERNAL_PRINTER_READS_H_
#define LOCKLESS_IPC_INTERNAL_PRINTER_READS_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "index/index.h"
#include "ipc/internal/queue_layout.h"

namespace lockless {
namespace internal {

struct SenderFields {
  uint32_t owner_word = 0;
  OwnerIdentity owner{};  // The slot's owner record (owner_liveness.h).
  Index scratch;
  Index to_replace;
  // GuardDamageBytes of the scratch message (0 when intact or unnamed).
  uint64_t scratch_guard_damage_bytes = 0;
  Index swap_take;  // Pinning: a swap of a pinned scratch in flight.
};

struct PinnerFields {
  uint32_t owner_word = 0;
  OwnerIdentity owner{};
  Index pinned;
};

struct WatcherFields {
  uint32_t owner_word = 0;
  OwnerIdentity owner{};
  int32_t pid = 0;
  int32_t priority = 0;
};

struct SlotsSnapshot {
  uint32_t setup_lock_word = 0;
  OwnerIdentity setup_lock_owner{};
  uint32_t next_queue_index_raw = 0;
  std::vector<Index> ring;
  std::vector<SenderFields> senders;
  std::vector<WatcherFields> watchers;
  std::vector<PinnerFields> pinners;
  // Parked entry j of sender s at [s * num_pinners + j].
  std::vector<Index> parked;
};

// Fills *out from the region. False if the memory faulted (file truncated).
bool ReadSlots(const RegionView& region, SlotsSnapshot* out);

struct MessageCopy {
  uint32_t queue_index_before = 0;
  uint32_t queue_index_after = 0;
  uint64_t length = 0;
  int64_t monotonic_ns = 0;
  int64_t realtime_ns = 0;
  // min(length, capacity, max_data_bytes) payload bytes.
  std::string data;
  // GuardDamageBytes (queue_layout.h): 0 if the guard after the payload is
  // intact, else how far past the payload a write reached.
  uint64_t guard_damage_bytes = 0;
  // The queue index moved between the two loads: a sender recycled the
  // message while it was copied; the fields may be torn.
  bool changed() const { return queue_index_before != queue_index_after; }
};

// Copies message `message_index` (< layout.num_messages, checked by the
// caller) seqlock-style. `after_copy_for_test`, if set, runs between the
// copy and the re-check. False if the memory faulted.
bool ReadMessage(const RegionView& region, uint64_t message_index,
                 size_t max_data_bytes, MessageCopy* out,
                 void (*after_copy_for_test)(void*) = nullptr,
                 void* test_context = nullptr);

// Reads next_queue_index (relaxed: a display snapshot). False on a fault.
bool ReadNextQueueIndexRaw(const RegionView& region, uint32_t* out);

// Gives back the pages of the messages area this process touched (the data
// stays in the file; MADV_DONTNEED on a shared mapping only drops this
// process's page-table entries), so printing a large region one message at a
// time keeps the resident set bounded.
void ReleaseMessagePages(const RegionView& region);

}  // namespace internal
}  // namespace lockless

#endif  // LOCKLESS_IPC_INTERNAL_PRINTER_READS_H_
