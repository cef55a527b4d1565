// Test-only checks of a quiescent channel's invariants, shared by the death
// suite, the recovery tests, the interleaving explorer and the chaos suite.
#ifndef LOCKLESS_TESTING_QUEUE_INVARIANTS_H_
#define LOCKLESS_TESTING_QUEUE_INVARIANTS_H_

#include "absl/status/status.h"
#include "ipc/lockless_queue.h"

namespace lockless {
namespace testing {

// Every message is owned exactly once: by a ring slot, by a sender slot's
// scratch_index or by one of its parked entries (live, free or dead alike),
// and no sender has a replacement or a swap of a pinned scratch in flight;
// every parked message's header holds no queue index. Only meaningful when no send is in progress and every dead
// sender has been recovered (e.g. right after a MakeSender with no live
// sender mid-send). DataLoss naming the first violation otherwise.
absl::Status CheckEveryMessageOwnedOnce(const LocklessQueue& queue);

}  // namespace testing
}  // namespace lockless

#endif  // LOCKLESS_TESTING_QUEUE_INVARIANTS_H_
