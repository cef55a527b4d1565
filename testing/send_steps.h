// Test-only: the steps of Sender::Send (ipc/lockless_queue.cc) written one by
// one, to put a sender slot in any mid-send state a real sender can be
// stopped or killed in. Each function writes the same words, in the same
// order and with the same memory orders, as the step it names.
#ifndef LOCKLESS_TESTING_SEND_STEPS_H_
#define LOCKLESS_TESTING_SEND_STEPS_H_

#include <cstdint>
#include <cstdlib>
#include <utility>

#include "index/index.h"
#include "index/queue_index.h"
#include "ipc/internal/queue_layout.h"
#include "ipc/lockless_queue.h"
#include "testing/sender_thread.h"

namespace lockless {
namespace testing {

// What a sender records in steps a-c before its ring CAS.
struct Intent {
  uint32_t slot;
  QueueIndex queue_index;
  Index publish;
  Index to_replace;
};

// The queue index the next send publishes.
inline QueueIndex NextQueueIndex(const LocklessQueue& queue) {
  const QueueIndex latest = queue.LatestQueueIndex();
  return latest.valid() ? latest.Increment() : queue.MakeQueueIndex(0);
}

// Steps a-c for queue index `q` on sender slot `slot`, having read
// `to_replace` from the ring (possibly a while ago: that is how a stale
// intent arises).
inline Intent RecordIntent(const internal::RegionView& region, uint32_t slot,
                           QueueIndex q, Index to_replace) {
  internal::SenderSlot* const sender = region.sender(slot);
  const Index scratch = sender->scratch_index.Load();
  const Intent intent{slot, q, Index(q, scratch.message_index()), to_replace};
  sender->scratch_index.Store(intent.publish);
  region.message(scratch.message_index())->header.queue_index.Store(q);
  sender->to_replace.Store(to_replace);
  return intent;
}

// Steps a-c having just read the ring slot for `q`.
inline Intent RecordIntent(const internal::RegionView& region, uint32_t slot,
                           QueueIndex q) {
  return RecordIntent(region, slot, q, region.ring(q.Wrapped())->Load());
}

// Step d, the ring CAS. False if the slot moved on (the intent is stale).
inline bool PublishIntent(const internal::RegionView& region,
                          const Intent& intent) {
  Index expected = intent.to_replace;
  return region.ring(intent.queue_index.Wrapped())
      ->CompareAndExchangeStrong(&expected, intent.publish);
}

// What a stopped sender does when it resumes: after a successful CAS, steps
// e-g; after a failed one, it clears its intent (its retry is not emulated).
inline void ResumeIntent(const internal::RegionView& region,
                         const Intent& intent, bool published) {
  internal::SenderSlot* const sender = region.sender(intent.slot);
  if (published) {
    QueueIndex expected = intent.queue_index;
    region.header()->next_queue_index.CompareAndExchangeStrong(
        &expected, intent.queue_index.Increment());
    sender->scratch_index.Store(intent.to_replace);
  }
  sender->to_replace.Invalidate();
}

// The race most recoveries meet, built with three sender threads: `winner`
// and `loser` both read the ring slot of the next index q and record their
// intents; `winner`'s CAS goes in, then both stop there. Then `lapper` sends
// a full lap, so the slot no longer says who won q (it helped
// next_queue_index past q and took winner's message). Returns {winner's
// intent, loser's intent}. `lapper` sends 5 messages first.
inline std::pair<Intent, Intent> RaceForOneIndexThenLap(
    const LocklessQueue& queue, SenderThread& winner, SenderThread& loser,
    SenderThread& lapper) {
  const internal::RegionView& region = queue.region();
  lapper.SendNumbered(5);
  const QueueIndex q = NextQueueIndex(queue);
  const Intent lost = RecordIntent(region, loser.slot(), q);
  const Intent won = RecordIntent(region, winner.slot(), q);
  if (!PublishIntent(region, won)) std::abort();  // Nobody else sends.
  lapper.SendNumbered(static_cast<int>(queue.config().queue_size));
  return {won, lost};
}

}  // namespace testing
}  // namespace lockless

#endif  // LOCKLESS_TESTING_SEND_STEPS_H_
