// Wake-up regression tests (issue 11): a late signal must not kill a reader,
// a stuck reader must not starve the others, a waker in another pid
// namespace must never signal by number, and the futex wait must lose no
// wake-up (ping-pong between threads and between processes).
//
// Each failure case runs where a failure cannot take the test runner down
// with it (a forked child), and reports through shared memory.
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstring>
#include <new>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "ipc/lockless_queue.h"
#include "ipc/signalfd.h"
#include "sync/futex.h"
#include "testing/queue_memory.h"

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

// A zero-filled MAP_SHARED object of type T, visible to forked children.
template <typename T>
class Shared {
 public:
  Shared() {
    void* memory = mmap(nullptr, sizeof(T), PROT_READ | PROT_WRITE,
                        MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (memory == MAP_FAILED) std::abort();
    value_ = new (memory) T();
  }
  ~Shared() { munmap(value_, sizeof(T)); }
  T* operator->() const { return value_; }
  T& operator*() const { return *value_; }

 private:
  T* value_;
};

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
      watcher = absl::UnknownError("destroyed");  // Watcher first,
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
        absl::StatusOr<SignalFd> signal_fd =
            SignalFd::Create({WakeupSignal()});
        absl::StatusOr<Watcher> registration = queue.MakeWatcher(0);
        if (!signal_fd.ok() || !registration.ok()) _exit(3);
        report->registered.Set();
        report->checked.Wait();
        report->watcher_got_signal.store(signal_fd->Read().has_value());
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
}

}  // namespace
}  // namespace lockless
