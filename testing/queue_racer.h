// QueueRacer: a multithreaded stress harness for LocklessQueue (DESIGN.md
// section 9). Test-only.
//
// One iteration (RunIteration):
//   1. `num_threads` writer threads each claim their own Sender (inside the
//      thread: the sender slot's robust mutex is owned by the creating
//      thread), meet at a spin barrier, and send numbered messages as fast as
//      they can. Message k of writer t carries the payload {t, k} plus filler
//      bytes derived from (t, k), and a length that varies with (t, k), so a
//      torn or mislabelled read is detected byte for byte.
//   2. While they run, a poller checks that LatestQueueIndex() is bracketed by
//      the writes finished before it and the writes started after it (see
//      PollLatest in the .cc for the derivation of the bracket), and that
//      CheckGuards finds no broken guard (no false reports mid-send).
//   3. Every queue index of the iteration is read back, either after the
//      writers finish or by a reader racing them (`race_reads`).
//   4. Checks: Send's reported queue indices of all writers are exactly the
//      iteration's range (each once); every readable message has the payload,
//      length and send times its writer recorded; per-writer counters are
//      gap-free in queue order when the ring did not wrap, and a gap-free
//      suffix (ending at the writer's last message) of the ring tail when it
//      did; monotonic send times strictly increase and realtime send times
//      never decrease along the queue (the latter assumes nobody steps the
//      wall clock during the run: see Sender::Send); GOOD + TOO_OLD reads == messages sent;
//      LatestQueueIndex() afterwards == first index + total - 1 exactly;
//      CheckGuards() afterwards is OK.
//
// Iterations can be repeated on the same queue (the racer starts from whatever
// LatestQueueIndex() says), including a queue whose counter starts just before
// the 32-bit wrap point (internal::AttachStartingAtForTest).
//
// Threads: RunIteration is called from one thread at a time; it starts and
// joins all its threads before returning. Nothing else may send on the queue
// during an iteration (the exact checks assume the racer's writers are the
// only senders). Synchronisation is by std::atomic only (spin barrier and
// flags; spinning yields the CPU, nothing sleeps), so the harness adds no
// happens-before edge between writers and readers besides the queue's own,
// except where documented.
//
// Failures are returned as an absl::Status (Internal for a queue misbehaving,
// InvalidArgument for unusable options) carrying the first few problems
// found; the racer stops its threads early after the first one.
#ifndef LOCKLESS_TESTING_QUEUE_RACER_H_
#define LOCKLESS_TESTING_QUEUE_RACER_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "ipc/lockless_queue.h"
#include "ipc/queue_config.h"
#include "testing/queue_memory.h"

namespace lockless {
namespace testing {

struct RacerOptions {
  // Writer threads, each with its own Sender. 1 <= num_threads <= the queue's
  // num_senders (minus any senders held elsewhere).
  int num_threads = 4;
  // Messages each writer sends per iteration with write_wrap_count == 0.
  uint64_t num_messages_per_thread = 1000;
  // Run the LatestQueueIndex poller while the writers run.
  bool poll_latest = true;
};

// Counts from the last iteration, for tests that want to assert the shape of
// a run (e.g. that a wrapping run really produced TOO_OLD reads).
struct RacerStats {
  uint64_t messages_sent = 0;
  uint64_t good_reads = 0;      // Reads after the writers finished.
  uint64_t too_old_reads = 0;
  uint64_t racing_good_reads = 0;  // Reads racing the writers.
  uint64_t racing_too_old_reads = 0;
  uint64_t nothing_new_spins = 0;  // Racing reader waits for a writer.
  uint64_t polls = 0;              // LatestQueueIndex brackets checked.
  bool wrapped = false;
};

class QueueRacer {
 public:
  // `queue` must outlive the racer. Its message_data_size_bytes must be at
  // least kMinMessageBytes (checked by RunIteration).
  QueueRacer(const LocklessQueue& queue, const RacerOptions& options);

  static constexpr size_t kMinMessageBytes = 16;

  // Messages each writer sends in an iteration with `write_wrap_count`:
  // num_messages_per_thread plus, for each requested lap, enough to fill the
  // whole ring once more (ceil(queue_size / num_threads) per writer). So
  // write_wrap_count >= 1 always overwrites the ring at least that many
  // times; write_wrap_count == 0 wraps only if num_threads *
  // num_messages_per_thread > queue_size.
  uint64_t MessagesPerThread(int write_wrap_count) const;
  uint64_t TotalMessages(int write_wrap_count) const;
  // True when an iteration sends more messages than the ring holds, so its
  // oldest messages are overwritten (read TOO_OLD).
  bool Wraps(int write_wrap_count) const;

  // Runs one iteration (see the file comment). OK when every check passed.
  absl::Status RunIteration(bool race_reads, int write_wrap_count);

  const RacerStats& last_stats() const { return stats_; }

 private:
  LocklessQueue queue_;
  RacerOptions options_;
  RacerStats stats_;
};


}  // namespace testing
}  // namespace lockless

#endif  // LOCKLESS_TESTING_QUEUE_RACER_H_
