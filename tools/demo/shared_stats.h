// The state the demo's processes share besides the channel: one MAP_SHARED
// anonymous page, mapped by the parent before any fork, so every child sees
// the same SharedStats at the same address.
//
// Contract:
//   - Only lock-free (hence address-free) atomics live here; a process may
//     die at any instruction without leaving anything locked.
//   - Each field has one writer: a producer writes its own ProducerStats
//     (except burst_request, the parent's request to it) and, for the
//     replacement, recoveries; the consumer writes consumer_ready; the parent
//     everything else.
//
// Memory ordering: the hand-over flags (ready, setup_failed, consumer_ready,
// stop, producers_done, victim_killed, and burst_active when set) are
// release stores paired with acquire loads: whoever sees the flag also sees
// what its writer did before setting it. Counters, slots and phase are read
// for the summary only after their writer exited (the victim: killed and
// reaped), when waitpid has ordered them, so most of their stores are relaxed.
#ifndef LOCKLESS_TOOLS_DEMO_SHARED_STATS_H_
#define LOCKLESS_TOOLS_DEMO_SHARED_STATS_H_

#include <atomic>
#include <cstdint>

#include "tools/demo/options.h"

namespace lockless {
namespace demo {

// Where a producer was in its loop (so we can say where the victim died).
enum Phase : int32_t {
  kStarting,
  kSleeping,
  kSending,
  kSent,
  kWaking,
  kFinished,
};

// "inside Send()", "sleeping between sends", ...; "?" for anything else.
const char* PhaseName(int32_t phase);

// Written by producer `id` (its own entry only), read by everyone.
struct ProducerStats {
  std::atomic<int32_t> pid{0};
  std::atomic<int32_t> slot{-1};
  std::atomic<int32_t> ready{0};         // MakeSender succeeded
  std::atomic<int32_t> setup_failed{0};
  std::atomic<int32_t> phase{kStarting};
  std::atomic<uint64_t> attempting{0};   // sequence of the current/next Send
  std::atomic<uint64_t> sent{0};         // Sends that returned kOk
  std::atomic<uint64_t> wakeup_calls{0};
  std::atomic<uint64_t> signals_sent{0};  // sum of Wakeup() return values
  std::atomic<uint64_t> late{0};          // deadlines missed by > 10 periods
  std::atomic<int32_t> burst_request{0};  // parent: send a burst now
  std::atomic<int32_t> burst_active{0};
};

struct SharedStats {
  int64_t t0_ns = 0;                     // CLOCK_MONOTONIC start of the run
  std::atomic<int32_t> consumer_ready{0};
  std::atomic<int32_t> stop{0};          // producers: finish now
  std::atomic<int32_t> producers_done{0};  // consumer: drain and summarise
  std::atomic<int32_t> victim_killed{0};
  std::atomic<int32_t> victim_slot_owner_died{0};  // kernel set OWNER_DIED
  std::atomic<int32_t> free_slots_before_replacement{-1};
  std::atomic<int32_t> recoveries{0};   // replacements that got a dead slot
  ProducerStats producer[kMaxProducers];
};

static_assert(std::atomic<int32_t>::is_always_lock_free);
static_assert(std::atomic<uint64_t>::is_always_lock_free);

// Maps a fresh shared page holding a SharedStats whose t0_ns is now. Call
// before forking. nullptr (errno set) if mmap fails. Never unmapped: it
// lives as long as the process.
SharedStats* MapSharedStats();

}  // namespace demo
}  // namespace lockless

#endif  // LOCKLESS_TOOLS_DEMO_SHARED_STATS_H_
