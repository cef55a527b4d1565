// Wakeup's priority boost, observed with real SCHED_FIFO threads.
//
// Everything runs on one CPU. The waker runs at FIFO 10; watcher W1 at FIFO
// 30 and W2 at FIFO 20 block on their signalfds. Wakeup signals the highest
// priority first. Without the boost, W1 preempts the waker the moment its
// signal is sent, so W2 has not been signalled yet when W1 runs. With the
// boost (the waker runs at W1's priority while signalling), the waker finishes
// signalling everyone before W1 gets the CPU. W1 tells the two apart by
// looking at W2's pending signals (/proc/self/task/<tid>/status, SigPnd) as
// soon as it wakes: the scheduler makes the outcome deterministic.
//
// Needs permission for SCHED_FIFO (root or CAP_SYS_NICE, outside Bazel's
// sandbox: the target is tagged no-sandbox); skips with a message otherwise.
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <fstream>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "gtest/gtest.h"
#include "ipc/lockless_queue.h"
#include "ipc/signalfd.h"
#include "sync/futex.h"
#include "sync/rt_priority.h"
#include "testing/queue_memory.h"

namespace lockless {
namespace {

constexpr int kWakerPriority = 10;
constexpr int kHighWatcherPriority = 30;
constexpr int kLowWatcherPriority = 20;

pid_t CurrentTid() { return static_cast<pid_t>(syscall(SYS_gettid)); }

// Whether `signal` is pending for thread `tid` of this process.
bool SignalPendingForThread(pid_t tid, int signal) {
  std::ifstream status("/proc/self/task/" + std::to_string(tid) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("SigPnd:", 0) == 0) {
      const unsigned long long mask = std::stoull(line.substr(7), nullptr, 16);
      return (mask >> (signal - 1)) & 1;
    }
  }
  ADD_FAILURE() << "no SigPnd line for thread " << tid;
  return false;
}

// A watcher thread: FIFO `priority`, registered, blocked on its signalfd.
// When woken, records whether `other_tid` (if set by then) still had a
// wake-up pending.
struct WatcherThread {
  int priority = 0;
  std::atomic<pid_t> tid{0};
  Event registered;
  std::atomic<pid_t> other_tid{0};
  std::atomic<bool> saw_other_pending{false};
  std::atomic<bool> ok{false};

  void Run(const LocklessQueue& queue) {
    tid.store(CurrentTid());
    if (absl::Status s = SetFifoPriority(priority); !s.ok()) {
      ADD_FAILURE() << s;
      registered.Set();
      return;
    }
    absl::StatusOr<SignalFd> signal_fd = SignalFd::Create({WakeupSignal()});
    absl::StatusOr<Watcher> watcher = queue.MakeWatcher(priority);
    registered.Set();
    if (!signal_fd.ok() || !watcher.ok()) {
      ADD_FAILURE() << signal_fd.status() << " / " << watcher.status();
      return;
    }
    pollfd poll_fd = {signal_fd->fd(), POLLIN, 0};
    while (poll(&poll_fd, 1, /*timeout_ms=*/10'000) < 0 && errno == EINTR) {
    }
    // First thing after waking: is the other watcher's signal already sent?
    if (const pid_t other = other_tid.load(); other != 0) {
      saw_other_pending.store(SignalPendingForThread(other, WakeupSignal()));
    }
    ok.store(signal_fd->Drain() == 1);
    // The watcher, declared after the signalfd, unregisters before the
    // signalfd unblocks the signal (SignalFd's contract).
  }
};

// Runs the scenario with Wakeup(current_priority) and returns whether W1,
// when it ran, found W2 already signalled. Skips if SCHED_FIFO is refused.
struct Outcome {
  bool skipped = false;
  int woken = 0;
  bool high_saw_low_pending = false;
  SchedulingState waker_after;
};

Outcome RunScenario(int current_priority) {
  Outcome outcome;
  QueueConfig config;
  config.num_watchers = 2;
  config.num_senders = 1;
  config.queue_size = 4;
  config.message_data_size_bytes = 8;
  ::lockless::testing::QueueMemory memory(config);
  const LocklessQueue queue =
      *LocklessQueue::Attach(memory.data(), memory.size_bytes(), config);

  // The waker: pinned to the CPU it is on, at FIFO 10. Threads it starts
  // inherit both.
  cpu_set_t saved_affinity;
  CPU_ZERO(&saved_affinity);
  if (sched_getaffinity(0, sizeof(saved_affinity), &saved_affinity) != 0) {
    ADD_FAILURE() << "sched_getaffinity: " << errno;
    return outcome;
  }
  cpu_set_t one_cpu;
  CPU_ZERO(&one_cpu);
  CPU_SET(sched_getcpu(), &one_cpu);
  const absl::StatusOr<SchedulingState> saved_scheduling = CurrentScheduling();
  if (!saved_scheduling.ok()) {
    ADD_FAILURE() << saved_scheduling.status();
    return outcome;
  }
  if (absl::Status s = SetFifoPriority(kWakerPriority); !s.ok()) {
    EXPECT_TRUE(absl::IsPermissionDenied(s)) << s;
    outcome.skipped = true;
    return outcome;
  }
  if (sched_setaffinity(0, sizeof(one_cpu), &one_cpu) != 0) {
    ADD_FAILURE() << "sched_setaffinity: " << errno;
  }

  WatcherThread high;
  high.priority = kHighWatcherPriority;
  WatcherThread low;
  low.priority = kLowWatcherPriority;
  // Block the wake-up signal before starting threads: it must only ever be
  // consumed through the signalfds, never delivered to its default action.
  sigset_t block, previous;
  sigemptyset(&block);
  sigaddset(&block, WakeupSignal());
  pthread_sigmask(SIG_BLOCK, &block, &previous);
  std::thread low_thread([&] { low.Run(queue); });
  low.registered.Wait();
  high.other_tid.store(low.tid.load());
  std::thread high_thread([&] { high.Run(queue); });
  high.registered.Wait();
  // Both watchers outrank us on our only CPU, so by the time we run again
  // they are blocked in poll.

  WakeUpper wake_upper(queue);
  outcome.woken = wake_upper.Wakeup(current_priority);
  outcome.waker_after = CurrentScheduling().value_or(SchedulingState{});

  high_thread.join();
  low_thread.join();
  EXPECT_TRUE(high.ok.load());
  EXPECT_TRUE(low.ok.load());
  outcome.high_saw_low_pending = high.saw_other_pending.load();
  pthread_sigmask(SIG_SETMASK, &previous, nullptr);
  EXPECT_TRUE(RestoreScheduling(*saved_scheduling).ok());
  sched_setaffinity(0, sizeof(saved_affinity), &saved_affinity);
  return outcome;
}

// The premise: without a boost, the highest watcher preempts the waker as
// soon as it is signalled, before the others are.
TEST(WakeupPriorityTest, WithoutBoostTheFirstWokenWatcherPreemptsTheWaker) {
  const Outcome outcome = RunScenario(/*current_priority=*/0);
  if (outcome.skipped) {
    GTEST_SKIP() << "SCHED_FIFO not permitted here (run as root / with "
                    "CAP_SYS_NICE, outside a sandbox)";
  }
  EXPECT_EQ(outcome.woken, 2);
  EXPECT_FALSE(outcome.high_saw_low_pending);
}

// With the boost, every watcher is signalled before any of them runs, and
// the waker is back at its own priority afterwards.
TEST(WakeupPriorityTest, BoostSignalsEveryWatcherBeforeTheFirstRuns) {
  const Outcome outcome = RunScenario(kWakerPriority);
  if (outcome.skipped) {
    GTEST_SKIP() << "SCHED_FIFO not permitted here (run as root / with "
                    "CAP_SYS_NICE, outside a sandbox)";
  }
  EXPECT_EQ(outcome.woken, 2);
  EXPECT_TRUE(outcome.high_saw_low_pending);
  EXPECT_EQ(outcome.waker_after.policy & ~SCHED_RESET_ON_FORK, SCHED_FIFO);
  EXPECT_EQ(outcome.waker_after.priority, kWakerPriority);
}

}  // namespace
}  // namespace lockless
