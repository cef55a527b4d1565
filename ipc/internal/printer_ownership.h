// The memory printer's ownership check: every message must be in exactly one
// ring slot or one sender's scratch (queue_layout.h). Internal to the
// printer.
//
// On a live channel one pass is not a consistent cut: the ring and the
// sender slots are read one word after another while senders swap messages
// between them, so a single pass can show "message 578 has no owner, message
// 580 has 2 owners" on a perfectly healthy channel. So:
//   1. A message named by a sender whose to_replace is valid is explained:
//      that sender is mid-send (live) or died mid-send (dead owner or
//      OWNER_DIED: "recovery pending", repaired by the next MakeSender),
//      and the protocol allows its scratch and to_replace to share owners
//      transiently.
//   2. Every other anomaly is re-checked with fresh passes; only one seen in
//      every pass (up to kMaxPasses) is reported. A concurrent send explains
//      an anomaly only for the instant the reads straddle it, so a healthy
//      channel converges to no problem; corruption persists.
#ifndef LOCKLESS_IPC_INTERNAL_PRINTER_OWNERSHIP_H_
#define LOCKLESS_IPC_INTERNAL_PRINTER_OWNERSHIP_H_

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "ipc/internal/queue_layout.h"

namespace lockless {
namespace internal {

struct OwnershipReport {
  uint64_t num_messages = 0;
  int passes = 0;
  // Anomalies seen in some pass that a later pass no longer showed.
  int transient = 0;
  // Persisted through every pass: corruption (or a sender stopped for the
  // whole check between its steps without recording its intent, which no
  // protocol step does).
  std::vector<std::string> problems;
  // Dead senders with a send in flight: recovery pending.
  std::vector<std::string> pending;
  // Live senders with a send in flight in the last pass.
  int in_flight = 0;
};

inline constexpr int kMaxPasses = 8;

// Runs the check on `region`. False if the memory faulted.
bool CheckOwnership(const RegionView& region,
                    const std::function<bool(pid_t)>& is_alive,
                    OwnershipReport* report);

}  // namespace internal
}  // namespace lockless

#endif  // LOCKLESS_IPC_INTERNAL_PRINTER_OWNERSHIP_H_
