// Repair of ring slots that hold a message published for an aliased lap, a
// hazard of 16-bit queue-index bits in ring entries (LOCKLESS_32BIT_INDEX).
//
// How it arises. A sender records its intent for queue index q, having read
// T (the entry of q - queue_size) from the ring slot, and is stopped before
// its ring CAS. While it is stopped, the channel sends so much that the slot
// holds exactly T again: the same message number, and a lap whose low 16
// bits equal those of q - queue_size (every 2^16 queue indices the bits
// repeat; messages circulate through the slots). Its CAS then succeeds: the
// slot holds its message, whose header says q, at a lap L that merely
// aliases q. Ownership is intact (it took T's message as its scratch, as
// always), but every later sender for that slot checks the message's header
// against L, finds q, and returns kCorrupted; fresh senders too. Forever.
//
// Repair (RepairAliasedPublishes, from MakeSender under the setup lock): for
// each ring slot whose entry is plausible for the lap L it stands for (the
// one next_queue_index implies) and whose message header holds a valid
// index that is not L but carries L's stored bits, compare-and-exchange the
// header to L, provided next_queue_index has not moved since the repair
// loaded it (re-checked after reading the header: a channel that moved on
// by a multiple of 2^16 meanwhile has legitimately published messages that
// look exactly like aliased ones from the old lap; a wedged channel's
// next_queue_index stands still). The message then reads as published at L, which is where the
// ring has it; sends resume. Why this cannot disturb a live sender: no
// sender can take that message out of the slot while its header is stale
// (Send checks the header before recording intent and returns kCorrupted),
// and a legitimately published message always carries its own lap in its
// header, so only an aliased publish matches. One CAS per repaired slot: a
// death before it leaves the wedge for the next MakeSender, after it the
// repair is done.
//
// Residual risk of 16-bit entries, not repaired: the repaired message keeps
// the send times stamped before the stop (older than its neighbours'), and
// between the aliased publish and the repair, Send returns kCorrupted for
// that slot's laps and readers see TOO_OLD there. With 64-bit entries the
// full 32-bit queue index is stored and this cannot happen (the function
// then returns at once).
//
// Cost: one ring load and one message-header load per slot (with 16-bit
// entries only); setup time, never on the hot path.
#ifndef LOCKLESS_IPC_INTERNAL_ALIAS_REPAIR_H_
#define LOCKLESS_IPC_INTERNAL_ALIAS_REPAIR_H_

#include "ipc/internal/queue_layout.h"

namespace lockless {
namespace internal {

// Returns how many slots it repaired. Caller holds the setup lock.
int RepairAliasedPublishes(const RegionView& region);

// The same, given `next`, a value of next_queue_index loaded before the call
// (RepairAliasedPublishes loads it itself): what a repairer sees when it is
// preempted right after that load while the channel keeps sending. For
// tests of that window; same contract otherwise.
int RepairAliasedPublishesFrom(const RegionView& region, QueueIndex next);

}  // namespace internal
}  // namespace lockless

#endif  // LOCKLESS_IPC_INTERNAL_ALIAS_REPAIR_H_
