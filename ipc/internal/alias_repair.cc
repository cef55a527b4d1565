#include "ipc/internal/alias_repair.h"

#include "index/index.h"
#include "index/queue_index.h"

namespace lockless {
namespace internal {

int RepairAliasedPublishes(const RegionView& region) {
  // With all 32 queue-index bits stored, a header that carries L's stored
  // bits is L itself: nothing can alias.
  if (Index::kQueueIndexMask == 0xffffffffu) return 0;
  const uint32_t queue_size = region.queue_size();
  // acquire: pairs with the CAS that advanced it; the slots below it are
  // published.
  const QueueIndex next = region.header()->next_queue_index.Load(queue_size);
  if (!next.valid()) return 0;  // Nothing sent yet.
  const QueueIndex lap_start = next.DecrementBy(queue_size);
  int repaired = 0;
  for (uint32_t offset = 0; offset < queue_size; ++offset) {
    // The lap this slot stands for: in [next - queue_size, next), or next
    // itself when a sender published it without advancing next_queue_index.
    const QueueIndex older = lap_start.IncrementBy(offset);
    const uint32_t slot = older.Wrapped();
    // acquire: pairs with the publishing CAS, so the header read next is at
    // least the publisher's.
    const Index entry = region.ring(slot)->Load();
    if (!region.NamesMessage(entry)) continue;  // Corruption: Send reports it.
    const QueueIndex lap = entry.IsPlausible(older) ? older
                           : entry.IsPlausible(older.IncrementBy(queue_size))
                               ? older.IncrementBy(queue_size)
                               : QueueIndex::Invalid();
    if (!lap.valid()) continue;
    AtomicQueueIndex& header =
        region.message(entry.message_index())->header.queue_index;
    QueueIndex seen = header.Load(queue_size);
    if (!seen.valid() || seen == lap) continue;
    if ((seen.index() & Index::kQueueIndexMask) !=
        (lap.index() & Index::kQueueIndexMask)) {
      continue;  // Not an aliased publish: a scribble, reported by Send.
    }
    // acq_rel (the wrapper's CAS): readers acquire the header; see the
    // header comment for why no sender can move this message meanwhile.
    if (header.CompareAndExchangeStrong(&seen, lap)) ++repaired;
  }
  return repaired;
}

}  // namespace internal
}  // namespace lockless
