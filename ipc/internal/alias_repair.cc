#include "ipc/internal/alias_repair.h"

#include "index/index.h"
#include "index/queue_index.h"

namespace lockless {
namespace internal {

int RepairAliasedPublishes(const RegionView& region) {
  // acquire: pairs with the CAS that advanced it; the slots below it are
  // published.
  return RepairAliasedPublishesFrom(
      region, region.header()->next_queue_index.Load(region.queue_size()));
}

int RepairAliasedPublishesFrom(const RegionView& region, QueueIndex next) {
  // With all 32 queue-index bits stored, a header that carries L's stored
  // bits is L itself: nothing can alias.
  if (Index::kQueueIndexMask == 0xffffffffu) return 0;
  const uint32_t queue_size = region.queue_size();
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
    // `lap` comes from `next`. Once senders have moved past it by a multiple
    // of 2^16, a legitimately published message sits here with a header
    // 2^16 laps ahead of `lap` and the same stored bits: it looks exactly
    // like an aliased publish. Only while next_queue_index still equals
    // `next` does every slot hold a lap in [next - queue_size, next], with
    // that lap (or an alias) in its message's header. A channel still
    // moving is left alone: a wedge stops next_queue_index within a lap,
    // and a later MakeSender repairs it then.
    // acquire: after the header load (itself acquire). A header a sender
    // stored (release) after loading a later next_queue_index makes this
    // load return that later value or a newer one.
    if (region.header()->next_queue_index.Load(queue_size) != next) break;
    // acq_rel (the wrapper's CAS): readers acquire the header; see the
    // header comment for why no sender can move this message meanwhile.
    if (header.CompareAndExchangeStrong(&seen, lap)) ++repaired;
  }
  return repaired;
}

}  // namespace internal
}  // namespace lockless
