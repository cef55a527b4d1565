// RunChaos: the chaos suite's supervisor. Test-only.
//
// DESIGN.md section 6 promises that any process may be SIGKILLed at any
// instruction, and the next MakeSender repairs the channel, also when deaths
// are concurrent and a live sender is stopped mid-send. RunChaos tests that
// with real processes (testing/chaos_children.h):
//   - it creates a channel in /dev/shm on a small ring, with a few more
//     sender slots than senders, and forks a reader and `sender_processes`
//     sender processes of `threads_per_process` Senders each;
//   - for `duration`, every 0-max_kill_gap_us microseconds it SIGKILLs one
//     sender process, or a burst of several back to back, and forks a
//     replacement for each at once (before the victim is even reaped); or it
//     SIGSTOPs a sender (1 ms to max_stop_ms, then SIGCONT, or SIGKILL while
//     still stopped) or briefly the reader. Victims are mostly processes
//     that are sending; a fifth of the processes may also die while starting
//     or inside MakeSender. Sending processes are not killed while
//     sender_processes - 1 replacements are still on their way to Send (and
//     stopped ones not until their stop ends), so live senders keep sending
//     around a slow recovery, and a MakeSender that takes seconds, or returns
//     DataLoss, lives long enough to be seen;
//   - it reaps children as they end: a sender that ends other than by our
//     SIGKILL failed (its reason is on the board), or hung (SIGALRM from its
//     watchdog), or crashed; the run stops at the first failure;
//   - then it continues whoever is stopped and waits (bounded) until every
//     surviving sender process has made its senders and sent again;
//   - at the end it kills every sender, stops the reader, runs the final
//     check in a child (every slot claimable, ring read back) and checks
//     that every message has exactly one owner (testing/queue_invariants.h).
// Every wait is bounded; every child is in one process group that is killed
// whatever happens (testing/chaos_processes.h). Wall-clock figures are
// reported, never asserted.
#ifndef LOCKLESS_TESTING_CHAOS_SUPERVISOR_H_
#define LOCKLESS_TESTING_CHAOS_SUPERVISOR_H_

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace lockless {
namespace testing {

struct ChaosOptions {
  int sender_processes = 3;
  int threads_per_process = 1;
  // Sender slots beyond sender_processes * threads_per_process, so a
  // replacement finds a free slot while dead ones still wait for recovery.
  uint32_t spare_sender_slots = 2;
  uint32_t queue_size = 64;
  uint64_t message_data_size_bytes = 128;
  std::chrono::milliseconds duration{6000};
  uint64_t seed = 1;
  // Longest pause between two supervisor actions (kills, stops).
  int max_kill_gap_us = 5000;
  // SIGSTOP senders (and the reader) too.
  bool stops = true;
  // Longest SIGSTOP of a sender. Must stay well below hang_s (a stopped
  // process's watchdog alarm keeps running).
  int max_stop_ms = 2000;
  // A child making no progress for this long dies of its alarm: a hang.
  int hang_s = 20;
};

struct ChaosReport {
  ChaosOptions options;
  uint32_t num_sender_slots = 0;
  // Processes.
  uint64_t sender_processes_started = 0;
  uint64_t kills = 0;  // SIGKILLs of sender processes during the run.
  uint64_t burst_kill_events = 0;  // Kills of 2+ processes back to back.
  uint64_t kills_in_bursts = 0;
  uint64_t kills_starting = 0;  // ... by where they landed.
  uint64_t kills_in_make_sender = 0;
  uint64_t kills_sending = 0;
  uint64_t kills_while_stopped = 0;
  uint64_t stops = 0;
  uint64_t stops_while_sending = 0;
  // A process stopped in MakeSender may hold the setup lock: every other
  // MakeSender waits for it (long per-call times are expected then).
  uint64_t stops_in_make_sender = 0;
  uint64_t continues = 0;
  uint64_t reader_stops = 0;
  // MakeSender, per call (any outcome) as measured in the children.
  uint64_t make_sender_calls = 0;
  uint64_t senders_made = 0;
  uint64_t resource_exhausted = 0;
  uint64_t call_durations_logged = 0;
  int64_t make_sender_p50_ns = 0;
  int64_t make_sender_p99_ns = 0;
  int64_t make_sender_max_ns = 0;
  int64_t longest_claim_ns = 0;  // First call to success, retries included.
  // Messages.
  uint64_t messages_sent = 0;
  uint64_t good_reads = 0;
  uint64_t too_old_reads = 0;
  uint64_t nothing_new_reads = 0;
  // Final check.
  uint32_t final_claims = 0;
  uint32_t final_ring_good = 0;
  bool ownership_ok = false;  // CheckEveryMessageOwnedOnce at the end.
  // The memory printer's summary of the channel, when anything failed.
  std::string channel_summary;
  // Empty when everything held.
  std::vector<std::string> failures;
};

// Runs one chaos session. An error status only when the harness itself could
// not run (mmap, fork, channel creation); what the queue did wrong is in
// report.failures.
absl::StatusOr<ChaosReport> RunChaos(const ChaosOptions& options);

// A few lines: workload, MakeSender figures, messages, final state,
// failures.
std::string FormatChaosReport(const ChaosReport& report);

}  // namespace testing
}  // namespace lockless

#endif  // LOCKLESS_TESTING_CHAOS_SUPERVISOR_H_
