#include "ipc/internal/printer_reads.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>

#include "index/queue_index.h"
#include "ipc/internal/owner_liveness.h"
#include "ipc/internal/racy_copy.h"
#include "ipc/internal/sigbus_guard.h"

namespace lockless {
namespace internal {

bool ReadSlots(const RegionView& region, SlotsSnapshot* out) {
  const uint32_t queue_size = region.queue_size();
  const uint32_t num_senders = region.config().num_senders;
  const uint32_t num_watchers = region.config().num_watchers;
  // Sized before the guard: nothing is allocated inside it.
  out->ring.assign(queue_size, Index::Invalid());
  out->senders.assign(num_senders, SenderFields());
  out->watchers.assign(num_watchers, WatcherFields());
  const uint32_t num_pinners = region.config().num_pinners;
  out->pinners.assign(num_pinners, PinnerFields());
  out->parked.assign(uint64_t{num_senders} * num_pinners, Index::Invalid());
  PinnerFields* const pinners = out->pinners.data();
  Index* const parked = out->parked.data();
  Index* const ring = out->ring.data();
  SenderFields* const senders = out->senders.data();
  WatcherFields* const watchers = out->watchers.data();
  uint32_t setup_word = 0, next_raw = 0;
  OwnerIdentity setup_owner{};
  const bool ok = GuardSigbus([&] {
    setup_word = region.header()->setup_lock.RawOwnerWord();
    setup_owner = LoadOwnerRecord(region.header()->setup_lock_owner);
    // relaxed: display snapshot.
    next_raw = region.header()->next_queue_index.RelaxedLoadRaw();
    for (uint32_t slot = 0; slot < queue_size; ++slot) {
      // acquire: pairs with the publishing CAS (as LocklessQueue::Read).
      ring[slot] = region.ring(slot)->Load();
    }
    for (uint32_t s = 0; s < num_senders; ++s) {
      const SenderSlot* const sender = region.sender(s);
      senders[s].owner_word = sender->ownership.RawOwnerWord();
      senders[s].owner = LoadOwnerRecord(sender->owner);
      // relaxed: display snapshot; a live sender may change them any time.
      senders[s].scratch = sender->scratch_index.RelaxedLoad();
      senders[s].to_replace = sender->to_replace.RelaxedLoad();
      if (region.NamesMessage(senders[s].scratch)) {
        senders[s].scratch_guard_damage_bytes =
            GuardDamageBytes(region, senders[s].scratch.message_index());
      }
      senders[s].swap_take = sender->swap_take.RelaxedLoad();
      for (uint32_t j = 0; j < num_pinners; ++j) {
        // relaxed: display snapshot.
        parked[uint64_t{s} * num_pinners + j] =
            region.parked(s, j)->RelaxedLoad();
      }
    }
    for (uint32_t p = 0; p < num_pinners; ++p) {
      const PinnerSlot* const pinner = region.pinner(p);
      pinners[p].owner_word = pinner->ownership.RawOwnerWord();
      pinners[p].owner = LoadOwnerRecord(pinner->owner);
      // relaxed: display snapshot.
      pinners[p].pinned = pinner->pinned.RelaxedLoad();
    }
    for (uint32_t w = 0; w < num_watchers; ++w) {
      const WatcherSlot* const watcher = region.watcher(w);
      watchers[w].owner_word = watcher->ownership.RawOwnerWord();
      watchers[w].owner = LoadOwnerRecord(watcher->owner);
      // relaxed: display snapshot.
      watchers[w].pid = watcher->pid.load(std::memory_order_relaxed);
      watchers[w].priority = watcher->priority.load(std::memory_order_relaxed);
    }
  });
  out->setup_lock_word = setup_word;
  out->setup_lock_owner = setup_owner;
  out->next_queue_index_raw = next_raw;
  return ok;
}

bool ReadMessage(const RegionView& region, uint64_t message_index,
                 size_t max_data_bytes, MessageCopy* out,
                 void (*after_copy_for_test)(void*), void* test_context) {
  const Message* const message = region.message(message_index);
  const uint64_t capacity = region.config().message_data_size_bytes;
  const uint32_t queue_size = region.queue_size();
  // At most this many payload bytes; the buffer exists before the guard.
  const size_t max_shown =
      static_cast<size_t>(std::min<uint64_t>(capacity, max_data_bytes));
  out->data.assign(max_shown, '\0');
  char* const buffer = out->data.data();
  uint32_t before = 0, after = 0;
  uint64_t length = 0;
  int64_t monotonic_ns = 0, realtime_ns = 0;
  size_t shown = 0;
  uint64_t guard_damage_bytes = 0;
  const bool ok = GuardSigbus([&] {
    guard_damage_bytes = GuardDamageBytes(region, message_index);
    // acquire: pairs with the sender's publishing CAS / release, so the
    // fields below are at least as new.
    before = message->header.queue_index.Load(queue_size).index();
    // relaxed: validated by the queue-index re-check below.
    length = message->header.length.load(std::memory_order_relaxed);
    monotonic_ns =
        message->header.monotonic_sent_time_ns.load(std::memory_order_relaxed);
    realtime_ns =
        message->header.realtime_sent_time_ns.load(std::memory_order_relaxed);
    // `length` is checked here, once, and only this local copy is used.
    shown = static_cast<size_t>(
        std::min<uint64_t>(std::min<uint64_t>(length, capacity), max_shown));
    RacyCopy(buffer, message->data(), shown);
    if (after_copy_for_test != nullptr) after_copy_for_test(test_context);
    // acquire fence: pairs with the sender's release fence after it
    // invalidated the message's queue index and before it rewrote anything:
    // if the copy saw any rewritten byte, the load below sees the change.
    std::atomic_thread_fence(std::memory_order_acquire);
    // relaxed: ordered by the fence above.
    after = message->header.queue_index.RelaxedLoadRaw();
  });
  if (!ok) return false;
  out->data.resize(shown);
  out->queue_index_before = before;
  out->queue_index_after = after;
  out->length = length;
  out->monotonic_ns = monotonic_ns;
  out->realtime_ns = realtime_ns;
  out->guard_damage_bytes = guard_damage_bytes;
  return true;
}

bool ReadNextQueueIndexRaw(const RegionView& region, uint32_t* out) {
  uint32_t raw = 0;
  const bool ok = GuardSigbus([&] {
    // relaxed: display snapshot.
    raw = region.header()->next_queue_index.RelaxedLoadRaw();
  });
  *out = raw;
  return ok;
}

void ReleaseMessagePages(const RegionView& region) {
  const uintptr_t page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  const uintptr_t base = reinterpret_cast<uintptr_t>(region.base());
  const uintptr_t start =
      (base + region.layout().messages_offset + page - 1) / page * page;
  const uintptr_t end =
      (base + region.layout().watchers_offset) / page * page;
  if (end > start) {
    (void)madvise(reinterpret_cast<void*>(start), end - start, MADV_DONTNEED);
  }
}

}  // namespace internal
}  // namespace lockless
