// Wake-up regression tests (issue 11): a late signal must not kill a reader,
// a stuck reader must not starve the others, a waker in another pid
// namespace must never signal by number, and the futex wait must lose no
// wake-up (ping-pong between threads and between processes).
//
// Each failure case runs where a failure cannot take the test runner down
// with it (a forked child), and reports through shared memory.
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "ipc/internal/owner_liveness.h"
#include "ipc/internal/queue_layout.h"
#include "ipc/lockless_queue.h"
#include "ipc/signalfd.h"
#include "sync/futex.h"
#include "testing/queue_memory.h"
#include "testing/shared_object.h"
#include "testing/thread_state.h"

namespace lockless {
namespace {

using ::lockless::testing::QueueMemory;

QueueConfig WakeConfig() {
  QueueConfig config;
  config.num_watchers = 4;
  config.num_senders = 2;
  config.queue_size = 16;
  config.message_data_size_bytes = 16;
  return config;
}

template <typename T>
using Shared = ::lockless::testing::SharedObject<T>;

// Runs `body` in a forked child and returns its wait status. The child
// leaves through _exit(body()).
template <typename Body>
int RunInChild(Body body) {
  const pid_t child = fork();
  if (child == 0) _exit(body());
  int status = 0;
  while (waitpid(child, &status, 0) < 0 && errno == EINTR) {
  }
  return status;
}

std::string DescribeStatus(int status) {
  if (WIFEXITED(status)) return "exited " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) {
    return "killed by signal " + std::to_string(WTERMSIG(status));
  }
  return "status " + std::to_string(status);
}

// Failure 1: a thread registers and unregisters (SignalFd, then Watcher;
// destroyed in the documented order) 100k times while another thread keeps
// calling Wakeup. A wake-up that lands after the SignalFd unblocked the
// signal must be discarded, never kill the process.
TEST(WakeupTest, LateWakeupNeverKillsTheReader) {
  QueueMemory memory(WakeConfig());
  LocklessQueue queue =
      *LocklessQueue::Attach(memory.data(), memory.size_bytes(), WakeConfig());
  constexpr int kCycles = 100000;
  Shared<std::atomic<int>> cycles_done;
  const int status = RunInChild([&] {
    std::atomic<bool> stop{false};
    std::thread waker([&] {
      WakeUpper wake_upper(queue);
      while (!stop.load(std::memory_order_relaxed)) wake_upper.Wakeup(0);
    });
    for (int i = 0; i < kCycles; ++i) {
      absl::StatusOr<SignalFd> signal_fd = SignalFd::Create({WakeupSignal()});
      if (!signal_fd.ok()) return 2;
      absl::StatusOr<Watcher> watcher = queue.MakeWatcher(0);
      if (!watcher.ok()) return 3;
      watcher = absl::UnknownError("destroyed");    // Watcher first,
      signal_fd = absl::UnknownError("destroyed");  // then the SignalFd.
      cycles_done->store(i + 1, std::memory_order_relaxed);
    }
    stop.store(true, std::memory_order_relaxed);
    waker.join();
    return 0;
  });
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
      << DescribeStatus(status) << " after " << cycles_done->load()
      << " cycles";
}

// Failure 2: queued real-time signals are charged to the receiving user
// (RLIMIT_SIGPENDING). A watcher that is alive but never drains must not use
// up the quota of a watcher that does.
TEST(WakeupTest, NonDrainingWatcherDoesNotStarveOthers) {
  QueueMemory memory(WakeConfig());
  LocklessQueue queue =
      *LocklessQueue::Attach(memory.data(), memory.size_bytes(), WakeConfig());
  constexpr int kWakeups = 300;
  Shared<std::atomic<int>> received;
  const int status = RunInChild([&] {
    const rlimit low{64, 64};
    if (setrlimit(RLIMIT_SIGPENDING, &low) != 0) return 2;
    Event registered, release;
    std::thread stuck([&] {
      absl::StatusOr<SignalFd> signal_fd = SignalFd::Create({WakeupSignal()});
      absl::StatusOr<Watcher> watcher = queue.MakeWatcher(0);
      registered.Set();
      release.Wait();  // Alive, registered, never drains.
    });
    registered.Wait();
    absl::StatusOr<SignalFd> signal_fd = SignalFd::Create({WakeupSignal()});
    if (!signal_fd.ok()) return 3;
    absl::StatusOr<Watcher> watcher = queue.MakeWatcher(0);
    if (!watcher.ok()) return 4;
    WakeUpper wake_upper(queue);
    for (int i = 0; i < kWakeups; ++i) {
      wake_upper.Wakeup(0);
      // The signal is queued before Wakeup returns: readable now or never.
      if (signal_fd->Read().has_value()) received->fetch_add(1);
      watcher->Acknowledge();
    }
    release.Set();
    stuck.join();
    return 0;
  });
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
      << DescribeStatus(status);
  EXPECT_EQ(received->load(), kWakeups);
}

struct NamespaceReport {
  Event registered;
  Event checked;
  std::atomic<int> waker_signalled_itself{-1};
  std::atomic<int> wakeup_result{-1};
  std::atomic<int> watcher_got_signal{-1};
  std::atomic<int> wait_result{-1};
};

constexpr int kSkipExitCode = 77;

// Failure 3: the watcher lives in a child pid namespace (its tid there is 1),
// the waker in a sibling one (where 1 is the waker itself). Signalling "tid
// 1" would hit the wrong process; the waker must refuse and say so.
TEST(WakeupNamespaceTest, WakerInAnotherPidNamespaceNeverSignalsByNumber) {
  QueueMemory memory(WakeConfig());
  LocklessQueue queue =
      *LocklessQueue::Attach(memory.data(), memory.size_bytes(), WakeConfig());
  Shared<NamespaceReport> report;
  const int status = RunInChild([&] {
    // The waker: pid 1 of a new namespace, with the wake-up signal blocked
    // so that a misdirected one stays pending where we can see it.
    if (unshare(CLONE_NEWPID) != 0) return kSkipExitCode;
    return WEXITSTATUS(RunInChild([&] {
      sigset_t block;
      sigemptyset(&block);
      sigaddset(&block, WakeupSignal());
      sigprocmask(SIG_BLOCK, &block, nullptr);
      if (unshare(CLONE_NEWPID) != 0) return kSkipExitCode;
      const pid_t watcher = fork();
      if (watcher == 0) {
        // The watcher: pid 1 of a namespace nested in the waker's.
        absl::StatusOr<SignalFd> signal_fd = SignalFd::Create({WakeupSignal()});
        absl::StatusOr<Watcher> registration = queue.MakeWatcher(0);
        absl::StatusOr<Waiter> waiter = queue.MakeWaiter();
        if (!signal_fd.ok() || !registration.ok() || !waiter.ok()) _exit(3);
        report->registered.Set();
        report->checked.Wait();
        report->watcher_got_signal.store(signal_fd->Read().has_value());
        // The futex path reaches across namespaces.
        report->wait_result.store(static_cast<int>(
            waiter->Wait(queue.MakeQueueIndex(0),
                         MonotonicNowNs() + int64_t{20} * 1000000000)));
        _exit(0);
      }
      report->registered.Wait();
      WakeUpper wake_upper(queue);
      report->wakeup_result.store(wake_upper.Wakeup(0));
      sigset_t pending;
      sigpending(&pending);
      report->waker_signalled_itself.store(
          sigismember(&pending, WakeupSignal()));
      report->checked.Set();
      absl::StatusOr<Sender> sender = queue.MakeSender();
      if (!sender.ok() || sender->Send("x", 1) != SendResult::kOk) return 5;
      int watcher_status = 0;
      waitpid(watcher, &watcher_status, 0);
      return WIFEXITED(watcher_status) ? WEXITSTATUS(watcher_status) : 4;
    }));
  });
  if (WIFEXITED(status) && WEXITSTATUS(status) == kSkipExitCode) {
    GTEST_SKIP() << "unshare(CLONE_NEWPID) refused (needs root / "
                    "CAP_SYS_ADMIN outside a restrictive sandbox)";
  }
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
      << DescribeStatus(status);
  EXPECT_EQ(report->waker_signalled_itself.load(), 0)
      << "the waker signalled the watcher's tid in its own namespace";
  EXPECT_EQ(report->wakeup_result.load(), 0);
  EXPECT_EQ(report->watcher_got_signal.load(), 0);
  EXPECT_EQ(report->wait_result.load(), static_cast<int>(WaitResult::kReady));
}

// Robust mutexes across pid namespaces: the setup lock is held by a process
// in a child pid namespace (where its tid is 1). A setup call here waits for
// it and proceeds once it is released (setup never hands the holder's tid to
// FUTEX_LOCK_PI, which would look it up in our namespace), and one whose
// deadline passes first gets DeadlineExceeded saying the holder is from
// another pid namespace, never a takeover of a holder it cannot judge.
struct SetupAcrossNamespaces {
  Event locked;
  Event release;
};

TEST(SetupNamespaceTest, ContendedSetupLockHeldFromAnotherPidNamespace) {
  QueueMemory memory(WakeConfig());
  LocklessQueue queue =
      *LocklessQueue::Attach(memory.data(), memory.size_bytes(), WakeConfig());
  internal::RegionHeader* const header = queue.region().header();
  Shared<SetupAcrossNamespaces> sync;
  const pid_t outer = fork();
  ASSERT_GE(outer, 0);
  if (outer == 0) {
    if (unshare(CLONE_NEWPID) != 0) _exit(kSkipExitCode);
    _exit(WEXITSTATUS(RunInChild([&] {
      // pid 1 of the new namespace: holds the setup lock as a setup call
      // does (locked, then its owner record).
      if (header->setup_lock.TryLock() != TryLockResult::kAcquired) return 2;
      internal::StoreOwnerRecord(header->setup_lock_owner,
                                 internal::CurrentOwnerIdentity());
      sync->locked.Set();
      sync->release.Wait();
      header->setup_lock.Unlock();
      return 0;
    })));
  }
  // Wait for the holder, or for the child to say namespaces are refused.
  int status = 0;
  while (!sync->locked.IsSet()) {
    if (waitpid(outer, &status, WNOHANG) == outer) break;
    sched_yield();
  }
  if (!sync->locked.IsSet()) {
    if (WIFEXITED(status) && WEXITSTATUS(status) == kSkipExitCode) {
      GTEST_SKIP() << "unshare(CLONE_NEWPID) refused (needs root / "
                      "CAP_SYS_ADMIN outside a restrictive sandbox)";
    }
    FAIL() << "holder never took the lock: " << DescribeStatus(status);
  }

  // A deadline that passes while it holds the lock: reported, not taken.
  const absl::StatusOr<Sender> refused = queue.MakeSender(
      std::chrono::steady_clock::now() + std::chrono::milliseconds(50));
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_NE(refused.status().message().find("another pid namespace"),
            std::string::npos)
      << refused.status();

  // A setup call that is already waiting when the holder releases.
  std::atomic<pid_t> waiter_tid{0};
  absl::StatusOr<Sender> sender = absl::UnknownError("not run");
  std::thread waiting([&] {
    waiter_tid.store(static_cast<pid_t>(syscall(SYS_gettid)));
    sender = queue.MakeSender(std::chrono::steady_clock::now() +
                              std::chrono::seconds(20));
  });
  while (waiter_tid.load() == 0 ||
         !testing::ThreadIsSleeping(waiter_tid.load())) {
    sched_yield();  // Until it sleeps between tries of the lock.
  }
  sync->release.Set();
  waiting.join();
  ASSERT_EQ(waitpid(outer, &status, 0), outer);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
      << DescribeStatus(status);
  ASSERT_TRUE(sender.ok()) << sender.status();
  EXPECT_EQ(OwnerTid(header->setup_lock.RawOwnerWord()), 0u);
}

// ------------------------------------------------- Waiter: the futex path

// A failure bound for blocking waits in these tests (never synchronisation:
// every wait below ends because of a Send, or the test fails).
int64_t FailAfter() { return MonotonicNowNs() + int64_t{20} * 1000000000; }

TEST(WaiterTest, ReturnsAtOnceWhenPublishedAndTimesOutWhenNot) {
  QueueMemory memory(WakeConfig());
  LocklessQueue queue =
      *LocklessQueue::Attach(memory.data(), memory.size_bytes(), WakeConfig());
  absl::StatusOr<Waiter> waiter = queue.MakeWaiter();
  ASSERT_TRUE(waiter.ok()) << waiter.status();
  // Empty queue: nothing to wait for yet; a past deadline times out.
  EXPECT_EQ(waiter->Wait(QueueIndex::Invalid(), MonotonicNowNs() - 1),
            WaitResult::kTimedOut);
  EXPECT_EQ(waiter->Wait(queue.MakeQueueIndex(0), 0), WaitResult::kTimedOut);
  absl::StatusOr<Sender> sender = queue.MakeSender();
  ASSERT_TRUE(sender.ok());
  ASSERT_EQ(sender->Send("a", 1), SendResult::kOk);
  EXPECT_EQ(waiter->Wait(QueueIndex::Invalid(), 0), WaitResult::kReady);
  EXPECT_EQ(waiter->Wait(queue.MakeQueueIndex(0), 0), WaitResult::kReady);
  EXPECT_EQ(waiter->Wait(queue.MakeQueueIndex(1), 0), WaitResult::kTimedOut);
  // Bits are cleared on return: senders make no syscall.
  EXPECT_EQ(queue.region().header()->waiter_bits.load(), 0u);
}

TEST(WaiterTest, OtherThreadIsNotOwner) {
  QueueMemory memory(WakeConfig());
  LocklessQueue queue =
      *LocklessQueue::Attach(memory.data(), memory.size_bytes(), WakeConfig());
  absl::StatusOr<Waiter> waiter = queue.MakeWaiter();
  ASSERT_TRUE(waiter.ok());
  std::thread([&] {
    EXPECT_EQ(waiter->Wait(QueueIndex::Invalid(), 0), WaitResult::kNotOwner);
  }).join();
}

void NoOpHandler(int) {}

// A signal delivered to the waiting thread (EINTR) does not end the wait.
TEST(WaiterTest, SignalsDoNotEndTheWait) {
  QueueMemory memory(WakeConfig());
  LocklessQueue queue =
      *LocklessQueue::Attach(memory.data(), memory.size_bytes(), WakeConfig());
  struct sigaction action = {};
  action.sa_handler = NoOpHandler;  // No SA_RESTART: futex returns EINTR.
  sigaction(SIGUSR1, &action, nullptr);
  std::atomic<pthread_t> waiting_thread{};
  Event registered;
  std::atomic<int> result{-1};
  std::thread waiter_thread([&] {
    absl::StatusOr<Waiter> waiter = queue.MakeWaiter();
    ASSERT_TRUE(waiter.ok());
    waiting_thread.store(pthread_self());
    registered.Set();
    result.store(
        static_cast<int>(waiter->Wait(queue.MakeQueueIndex(0), FailAfter())));
  });
  registered.Wait();
  // Interrupt it until it is asleep with its bit set, a few times more, then
  // publish.
  const auto& bits = queue.region().header()->waiter_bits;
  for (int interrupts = 0; interrupts < 20;) {
    pthread_kill(waiting_thread.load(), SIGUSR1);
    if (bits.load() != 0) ++interrupts;
    std::this_thread::yield();
  }
  EXPECT_EQ(result.load(), -1);  // Still waiting.
  absl::StatusOr<Sender> sender = queue.MakeSender();
  ASSERT_TRUE(sender.ok());
  ASSERT_EQ(sender->Send("a", 1), SendResult::kOk);
  waiter_thread.join();
  EXPECT_EQ(result.load(), static_cast<int>(WaitResult::kReady));
}

TEST(WaiterTest, DeadWaitersBitIsClearedByTheNextRegistration) {
  QueueMemory memory(WakeConfig());
  LocklessQueue queue =
      *LocklessQueue::Attach(memory.data(), memory.size_bytes(), WakeConfig());
  // A child process dies inside Wait (its bit set), killed by the kernel.
  const pid_t child = fork();
  if (child == 0) {
    absl::StatusOr<Waiter> waiter = queue.MakeWaiter();
    if (!waiter.ok()) _exit(2);
    (void)waiter->Wait(queue.MakeQueueIndex(0), INT64_MAX);
    _exit(3);
  }
  auto& bits = queue.region().header()->waiter_bits;
  while (bits.load() == 0) std::this_thread::yield();
  kill(child, SIGKILL);
  int status = 0;
  waitpid(child, &status, 0);
  ASSERT_TRUE(WIFSIGNALED(status));
  EXPECT_NE(bits.load(), 0u);  // Every Send now pays a FUTEX_WAKE...
  absl::StatusOr<Waiter> waiter = queue.MakeWaiter();  // ...until this.
  ASSERT_TRUE(waiter.ok());
  EXPECT_EQ(bits.load(), 0u);
}

// Lost-wake-up ping-pong: `rounds` round trips between two parties, each
// publishing on one queue and waiting on the other. A lost wake-up shows up as
// a kTimedOut at the 20 s failure bound.
constexpr int kRounds = 100000;

struct PingPongQueues {
  PingPongQueues()
      : ping_memory(WakeConfig()),
        pong_memory(WakeConfig()),
        ping(*LocklessQueue::Attach(ping_memory.data(),
                                    ping_memory.size_bytes(), WakeConfig())),
        pong(*LocklessQueue::Attach(pong_memory.data(),
                                    pong_memory.size_bytes(), WakeConfig())) {}
  QueueMemory ping_memory;
  QueueMemory pong_memory;
  LocklessQueue ping;
  LocklessQueue pong;
};

// Futex side: `rounds` times, send on `out` (if `first`, before waiting)
// and wait for message i on `in`. Returns the number of rounds completed.
int FutexParty(const LocklessQueue& in, const LocklessQueue& out, bool first,
               int rounds) {
  absl::StatusOr<Waiter> waiter = in.MakeWaiter();
  absl::StatusOr<Sender> sender = out.MakeSender();
  if (!waiter.ok() || !sender.ok()) return -1;
  for (int i = 0; i < rounds; ++i) {
    if (first && sender->Send(&i, sizeof(i)) != SendResult::kOk) return i;
    if (waiter->Wait(in.MakeQueueIndex(static_cast<uint32_t>(i)),
                     FailAfter()) != WaitResult::kReady) {
      return i;
    }
    if (!first && sender->Send(&i, sizeof(i)) != SendResult::kOk) return i;
  }
  return rounds;
}

// Signal side: same, woken through a signalfd + Watcher + WakeUpper.
int SignalParty(const LocklessQueue& in, const LocklessQueue& out, bool first,
                int rounds) {
  absl::StatusOr<SignalFd> signal_fd = SignalFd::Create({WakeupSignal()});
  absl::StatusOr<Watcher> watcher = in.MakeWatcher(0);
  absl::StatusOr<Sender> sender = out.MakeSender();
  if (!signal_fd.ok() || !watcher.ok() || !sender.ok()) return -1;
  WakeUpper wake_upper(out);
  auto send = [&](int i) {
    if (sender->Send(&i, sizeof(i)) != SendResult::kOk) return false;
    wake_upper.Wakeup(0);
    return true;
  };
  for (int i = 0; i < rounds; ++i) {
    if (first && !send(i)) return i;
    const QueueIndex want = in.MakeQueueIndex(static_cast<uint32_t>(i));
    while (true) {
      watcher->Acknowledge();  // Before reading (see Watcher).
      int value = -1;
      MessageInfo info;
      const ReadResult read = in.Read(want, &info, &value, sizeof(value));
      if (read == ReadResult::kGood && value == i) break;
      if (read != ReadResult::kNothingNew) return i;
      pollfd poll_fd = {signal_fd->fd(), POLLIN, 0};
      if (poll(&poll_fd, 1, 20000) == 0) return i;  // Lost wake-up.
      signal_fd->Drain();
    }
    if (!first && !send(i)) return i;
  }
  return rounds;
}

template <typename Party>
void PingPongThreads(Party party) {
  PingPongQueues queues;
  // The wake-up signal is blocked before any thread starts, as a program
  // using signalfds would.
  sigset_t block;
  sigemptyset(&block);
  sigaddset(&block, WakeupSignal());
  pthread_sigmask(SIG_BLOCK, &block, nullptr);
  std::atomic<int> echoed{0};
  std::thread echo(
      [&] { echoed.store(party(queues.ping, queues.pong, false, kRounds)); });
  const int rounds = party(queues.pong, queues.ping, true, kRounds);
  echo.join();
  pthread_sigmask(SIG_UNBLOCK, &block, nullptr);
  EXPECT_EQ(rounds, kRounds);
  EXPECT_EQ(echoed.load(), kRounds);
}

template <typename Party>
void PingPongProcesses(Party party) {
  PingPongQueues queues;
  const pid_t child = fork();
  if (child == 0) {
    _exit(party(queues.ping, queues.pong, false, kRounds) == kRounds ? 0 : 1);
  }
  const int rounds = party(queues.pong, queues.ping, true, kRounds);
  int status = 0;
  waitpid(child, &status, 0);
  EXPECT_EQ(rounds, kRounds);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
      << DescribeStatus(status);
}

TEST(PingPongTest, FutexThreads) { PingPongThreads(FutexParty); }
TEST(PingPongTest, FutexProcesses) { PingPongProcesses(FutexParty); }
TEST(PingPongTest, SignalThreads) { PingPongThreads(SignalParty); }
TEST(PingPongTest, SignalProcesses) { PingPongProcesses(SignalParty); }

QueueConfig ReviewedConfig() {
  QueueConfig config;
  config.num_watchers = 4;
  config.num_senders = 2;
  config.queue_size = 16;
  config.message_data_size_bytes = 16;
  return config;
}

// Found by the review of the wake-ups: A sender that dies after step 6 (its
// seq_cst CAS advanced next_queue_index) and before step 7 (waiter_bits load +
// FUTEX_WAKE) leaves a Waiter asleep on a value that is no longer current:
// LatestQueueIndex() is past next_to_read, yet a Wait with no deadline never
// returns. Emulated by making exactly step 6's write with no step 7.
TEST(WaiterTest, SenderDeathBetweenAdvanceAndWakeStrandsNoWaiter) {
  QueueMemory memory(ReviewedConfig());
  LocklessQueue queue = *LocklessQueue::Attach(
      memory.data(), memory.size_bytes(), ReviewedConfig());
  absl::StatusOr<Sender> sender = queue.MakeSender();
  ASSERT_TRUE(sender.ok());
  ASSERT_EQ(sender->Send("a", 1), SendResult::kOk);  // index 0
  internal::RegionHeader* header = queue.region().header();
  std::atomic<int> result{-1};
  std::atomic<pid_t> waiter_tid{0};
  std::thread waiter_thread([&] {
    absl::StatusOr<Waiter> waiter = queue.MakeWaiter();
    ASSERT_TRUE(waiter.ok());
    waiter_tid.store(static_cast<pid_t>(syscall(SYS_gettid)));
    // A deadline far beyond the 1 s re-check: reaching it is the failure.
    result.store(static_cast<int>(waiter->Wait(
        queue.MakeQueueIndex(1), MonotonicNowNs() + int64_t{60} * 1000000000)));
  });
  // Until the waiter sleeps in the kernel (its task state is S), so the
  // write below cannot be seen by its pre-sleep check.
  while (header->waiter_bits.load() == 0 || waiter_tid.load() == 0 ||
         !testing::ThreadIsSleeping(waiter_tid.load())) {
    std::this_thread::yield();
  }
  // The dying sender's step 6 (after its step 5 published index 1).
  QueueIndex current = header->next_queue_index.Load(queue.config().queue_size);
  ASSERT_TRUE(header->next_queue_index.SeqCstCompareAndExchangeStrong(
      &current, current.Increment()));
  ASSERT_EQ(queue.LatestQueueIndex(), queue.MakeQueueIndex(1));
  waiter_thread.join();
  // Ready (within Wait's 1 s re-check), not at the deadline: the message was
  // published although no FUTEX_WAKE came.
  EXPECT_EQ(result.load(), static_cast<int>(WaitResult::kReady));
}

// waiter_bits scribbled with bits of slots that do not exist (>=
// num_watchers): no registration ever clears them, so every Send makes a
// FUTEX_WAKE system call forever.
TEST(WaiterTest, OutOfRangeWaiterBitsAreClearedByRegistration) {
  QueueMemory memory(ReviewedConfig());
  LocklessQueue queue = *LocklessQueue::Attach(
      memory.data(), memory.size_bytes(), ReviewedConfig());
  auto& bits = queue.region().header()->waiter_bits;
  bits.store((uint64_t{1} << 63) | (uint64_t{1} << 4));  // slots 63 and 4
  absl::StatusOr<Waiter> waiter = queue.MakeWaiter();
  ASSERT_TRUE(waiter.ok());
  EXPECT_EQ(bits.load(), 0u) << "Send will call FUTEX_WAKE on every message";
}

}  // namespace
}  // namespace lockless
