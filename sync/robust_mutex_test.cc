#include "sync/robust_mutex.h"

#include <linux/futex.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <new>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "sync/futex.h"
#include "sync/internal/syscalls.h"
#include "sync/test_hooks.h"

namespace lockless {
namespace {

// Anonymous MAP_SHARED memory, zero-filled, shared with forked children.
template <typename T>
class SharedMemory {
 public:
  SharedMemory() {
    void* memory = mmap(nullptr, sizeof(T), PROT_READ | PROT_WRITE,
                        MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (memory == MAP_FAILED) std::abort();
    value_ = static_cast<T*>(memory);  // Zero-filled = initialised.
  }
  ~SharedMemory() { munmap(value_, sizeof(T)); }
  T* operator->() { return value_; }
  T& operator*() { return *value_; }

 private:
  T* value_;
};

// Forks; the child runs `body` and _exits with its return value. Returns the
// child's pid.
pid_t ForkChild(const std::function<int()>& body) {
  const pid_t pid = fork();
  if (pid == 0) _exit(body());
  return pid;
}

// Waits for `pid`; returns its raw wait status.
int WaitFor(pid_t pid) {
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
  }
  return status;
}

TEST(RobustMutexTest, ZeroInitialisedIsUnlocked) {
  RobustMutex mutex{};
  EXPECT_EQ(mutex.RawOwnerWord(), 0u);
  EXPECT_FALSE(mutex.IsLockedByMe());
}

TEST(RobustMutexTest, LockUnlock) {
  RobustMutex mutex{};
  ASSERT_EQ(mutex.Lock(), LockResult::kAcquired);
  EXPECT_TRUE(mutex.IsLockedByMe());
  EXPECT_EQ(OwnerTid(mutex.RawOwnerWord()), internal::SysGetTid());
  EXPECT_FALSE(OwnerDied(mutex.RawOwnerWord()));
  EXPECT_NE(mutex.robust_next, nullptr);  // Linked while held.
  mutex.Unlock();
  EXPECT_EQ(mutex.RawOwnerWord(), 0u);
  EXPECT_EQ(mutex.robust_next, nullptr);
  EXPECT_EQ(mutex.robust_prev, nullptr);
  EXPECT_FALSE(mutex.IsLockedByMe());
  ASSERT_EQ(mutex.Lock(), LockResult::kAcquired);
  mutex.Unlock();
}

TEST(RobustMutexTest, RelockingIsAnError) {
  RobustMutex mutex{};
  ASSERT_EQ(mutex.Lock(), LockResult::kAcquired);
  EXPECT_EQ(mutex.Lock(), LockResult::kError);
  EXPECT_EQ(mutex.TryLock(), TryLockResult::kError);
  EXPECT_TRUE(mutex.IsLockedByMe());
  mutex.Unlock();
}

TEST(RobustMutexTest, TryLock) {
  RobustMutex mutex{};
  ASSERT_EQ(mutex.TryLock(), TryLockResult::kAcquired);
  std::thread other([&] { EXPECT_EQ(mutex.TryLock(), TryLockResult::kBusy); });
  other.join();
  mutex.Unlock();
  std::thread again([&] {
    ASSERT_EQ(mutex.TryLock(), TryLockResult::kAcquired);
    mutex.Unlock();
  });
  again.join();
}

TEST(RobustMutexTest, ManyLocksHeldAtOnce) {
  RobustMutex mutexes[8] = {};
  for (auto& mutex : mutexes) ASSERT_EQ(mutex.Lock(), LockResult::kAcquired);
  // Unlock out of order: middle, last, first, rest.
  for (int i : {3, 7, 0, 1, 2, 4, 5, 6}) mutexes[i].Unlock();
  for (auto& mutex : mutexes) EXPECT_EQ(mutex.RawOwnerWord(), 0u);
}

TEST(RobustMutexTest, UnlockByNonOwnerAborts) {
  RobustMutex mutex{};
  EXPECT_DEATH(mutex.Unlock(), "does not own");
}

TEST(RobustMutexTest, ThreadsCountExactly) {
  constexpr int kThreads = 4;
  constexpr int kIterations = 20000;
  RobustMutex mutex{};
  int64_t counter = 0;  // Protected by mutex (plain: TSan checks the lock).
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kIterations; ++i) {
        if (i % 2 == 0) {
          ASSERT_EQ(mutex.Lock(), LockResult::kAcquired);
        } else {
          TryLockResult result;
          while ((result = mutex.TryLock()) == TryLockResult::kBusy) {
          }
          ASSERT_EQ(result, TryLockResult::kAcquired);
        }
        ++counter;
        mutex.Unlock();
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(counter, int64_t{kThreads} * kIterations);
  EXPECT_EQ(mutex.RawOwnerWord(), 0u);
}

struct SharedCounter {
  RobustMutex mutex;
  int64_t counter;
};

TEST(RobustMutexTest, ProcessesCountExactly) {
  constexpr int kIterations = 20000;
  SharedMemory<SharedCounter> shared;
  auto work = [&] {
    for (int i = 0; i < kIterations; ++i) {
      if (shared->mutex.Lock() != LockResult::kAcquired) return 1;
      ++shared->counter;
      shared->mutex.Unlock();
    }
    return 0;
  };
  const pid_t child = ForkChild(work);
  ASSERT_GT(child, 0);
  EXPECT_EQ(work(), 0);
  const int status = WaitFor(child);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  EXPECT_EQ(shared->counter, 2 * kIterations);
  EXPECT_EQ(shared->mutex.RawOwnerWord(), 0u);
}

TEST(RobustMutexTest, ThreadExitingWhileHoldingIsDetected) {
  RobustMutex mutex{};
  std::thread owner([&] { ASSERT_EQ(mutex.Lock(), LockResult::kAcquired); });
  owner.join();
  // The kernel cleared the TID and set OWNER_DIED at the thread's exit.
  EXPECT_TRUE(OwnerDied(mutex.RawOwnerWord()));
  EXPECT_EQ(OwnerTid(mutex.RawOwnerWord()), 0);
  ASSERT_EQ(mutex.Lock(), LockResult::kOwnerDied);
  EXPECT_FALSE(OwnerDied(mutex.RawOwnerWord()));  // Cleared for the caller.
  mutex.Unlock();
  EXPECT_EQ(mutex.RawOwnerWord(), 0u);
  ASSERT_EQ(mutex.Lock(), LockResult::kAcquired);
  mutex.Unlock();
}

// A thread that dies holding the mutex after its robust list was
// unregistered: the kernel leaves its tid in the word (FUTEX_LOCK_PI would
// fail with ESRCH). MarkOwnerDead does what the kernel did not, once, and
// the next taker sees kOwnerDied.
TEST(RobustMutexTest, MarkOwnerDeadStandsInForTheKernel) {
  RobustMutex mutex{};
  std::thread owner([&] {
    ASSERT_EQ(mutex.Lock(), LockResult::kAcquired);
    ASSERT_EQ(
        internal::SysSetRobustList(nullptr, sizeof(struct robust_list_head)),
        0);
  });
  owner.join();
  const uint32_t stale = mutex.RawOwnerWord();
  ASSERT_NE(OwnerTid(stale), 0);
  ASSERT_FALSE(OwnerDied(stale));
  EXPECT_EQ(mutex.TryLock(), TryLockResult::kBusy);

  EXPECT_FALSE(mutex.MarkOwnerDead(stale + 1));  // Not the word: no change.
  EXPECT_EQ(mutex.RawOwnerWord(), stale);
  EXPECT_TRUE(mutex.MarkOwnerDead(stale));
  EXPECT_EQ(mutex.RawOwnerWord(), static_cast<uint32_t>(FUTEX_OWNER_DIED));
  EXPECT_FALSE(mutex.MarkOwnerDead(stale));  // A second taker fails.
  ASSERT_EQ(mutex.TryLock(), TryLockResult::kOwnerDied);
  mutex.Unlock();
  EXPECT_EQ(mutex.RawOwnerWord(), 0u);
}

// TryLockKeepingOwnerDied leaves the mark in the word (naming the new
// owner) until ClearOwnerDiedMark; others still see it busy meanwhile.
TEST(RobustMutexTest, TryLockKeepingOwnerDiedLeavesTheMarkToTheOwner) {
  RobustMutex mutex{};
  std::thread owner([&] { ASSERT_EQ(mutex.Lock(), LockResult::kAcquired); });
  owner.join();  // Exits holding it: the kernel marks it.
  ASSERT_EQ(mutex.RawOwnerWord(), static_cast<uint32_t>(FUTEX_OWNER_DIED));
  ASSERT_EQ(mutex.TryLockKeepingOwnerDied(), TryLockResult::kOwnerDied);
  const uint32_t held = mutex.RawOwnerWord();
  EXPECT_EQ(OwnerTid(held), internal::CurrentTid());
  EXPECT_TRUE(OwnerDied(held));
  std::thread([&] { EXPECT_EQ(mutex.TryLock(), TryLockResult::kBusy); }).join();
  mutex.ClearOwnerDiedMark();
  EXPECT_EQ(mutex.RawOwnerWord(), static_cast<uint32_t>(internal::CurrentTid()));
  mutex.Unlock();
  EXPECT_EQ(mutex.RawOwnerWord(), 0u);
}

TEST(RobustMutexTest, TryLockReportsDeadOwner) {
  RobustMutex mutex{};
  std::thread owner([&] { ASSERT_EQ(mutex.Lock(), LockResult::kAcquired); });
  owner.join();
  ASSERT_EQ(mutex.TryLock(), TryLockResult::kOwnerDied);
  mutex.Unlock();
  ASSERT_EQ(mutex.TryLock(), TryLockResult::kAcquired);
  mutex.Unlock();
}

TEST(RobustMutexTest, BlockedWaiterGetsOwnerDied) {
  RobustMutex mutex{};
  Event locked{};
  Event may_exit{};
  std::thread owner([&] {
    ASSERT_EQ(mutex.Lock(), LockResult::kAcquired);
    locked.Set();
    may_exit.Wait();
  });
  locked.Wait();
  LockResult result = LockResult::kError;
  std::thread waiter([&] {
    result = mutex.Lock();
    if (result != LockResult::kError) mutex.Unlock();
  });
  // The waiter is asleep in the kernel once it set FUTEX_WAITERS (polling a
  // state, not sleeping for a guessed time).
  while (!HasWaiters(mutex.RawOwnerWord())) std::this_thread::yield();
  may_exit.Set();
  owner.join();
  waiter.join();
  EXPECT_EQ(result, LockResult::kOwnerDied);
  EXPECT_EQ(mutex.RawOwnerWord(), 0u);
}

TEST(RobustMutexTest, WaitersAreHandedTheLock) {
  RobustMutex mutex{};
  ASSERT_EQ(mutex.Lock(), LockResult::kAcquired);
  int64_t counter = 0;
  std::vector<std::thread> waiters;
  for (int i = 0; i < 3; ++i) {
    waiters.emplace_back([&] {
      ASSERT_EQ(mutex.Lock(), LockResult::kAcquired);
      ++counter;
      mutex.Unlock();
    });
  }
  while (!HasWaiters(mutex.RawOwnerWord())) std::this_thread::yield();
  mutex.Unlock();  // Through FUTEX_UNLOCK_PI.
  for (auto& waiter : waiters) waiter.join();
  EXPECT_EQ(counter, 3);
  EXPECT_EQ(mutex.RawOwnerWord(), 0u);
}

struct SharedLockAndEvent {
  RobustMutex mutex;
  Event held;
};

TEST(RobustMutexTest, KilledProcessIsDetected) {
  SharedMemory<SharedLockAndEvent> shared;
  const pid_t child = ForkChild([&] {
    if (shared->mutex.Lock() != LockResult::kAcquired) return 1;
    shared->held.Set();
    for (;;) pause();
  });
  ASSERT_GT(child, 0);
  shared->held.Wait();
  EXPECT_EQ(OwnerTid(shared->mutex.RawOwnerWord()), child);
  ASSERT_EQ(kill(child, SIGKILL), 0);
  const int status = WaitFor(child);
  ASSERT_TRUE(WIFSIGNALED(status));
  ASSERT_EQ(shared->mutex.Lock(), LockResult::kOwnerDied);
  shared->mutex.Unlock();
  ASSERT_EQ(shared->mutex.Lock(), LockResult::kAcquired);
  shared->mutex.Unlock();
}

TEST(RobustMutexTest, ProcessKilledWhileParentWaitsIsDetected) {
  SharedMemory<SharedLockAndEvent> shared;
  const pid_t child = ForkChild([&] {
    if (shared->mutex.Lock() != LockResult::kAcquired) return 1;
    shared->held.Set();
    for (;;) pause();
  });
  ASSERT_GT(child, 0);
  shared->held.Wait();
  LockResult result = LockResult::kError;
  std::thread waiter([&] { result = shared->mutex.Lock(); });
  while (!HasWaiters(shared->mutex.RawOwnerWord())) std::this_thread::yield();
  ASSERT_EQ(kill(child, SIGKILL), 0);
  waiter.join();
  WaitFor(child);
  EXPECT_EQ(result, LockResult::kOwnerDied);
  // The waiter thread exited holding it: detected again.
  ASSERT_EQ(shared->mutex.Lock(), LockResult::kOwnerDied);
  shared->mutex.Unlock();
}

// --- Observers. ---

struct ObservedWrite {
  bool after;
  void* address;
};
ObservedWrite g_writes[64];
std::atomic<int> g_write_count{0};
// When non-null, the child dies in the `after` observer once this word holds
// its tid (used by DeathBetweenCasAndLink).
std::atomic<uint32_t>* g_die_when_owned = nullptr;

void Record(bool after, void* address) {
  // Relaxed: single-threaded use.
  const int index = g_write_count.fetch_add(1, std::memory_order_relaxed);
  if (index < 64) g_writes[index] = {after, address};
}
void RecordBefore(void* address) { Record(false, address); }
void RecordAfter(void* address) { Record(true, address); }

class ObserverTest : public ::testing::Test {
 protected:
  void SetUp() override {
    g_write_count = 0;
    internal::SetFutexWriteObservers(&RecordBefore, &RecordAfter);
  }
  void TearDown() override { internal::SetFutexWriteObservers(nullptr, nullptr); }

  // Expects exactly `pairs` before/after pairs on `word` since the last call.
  void ExpectPairs(void* word, int pairs) {
    ASSERT_EQ(g_write_count.load(), 2 * pairs);
    for (int i = 0; i < 2 * pairs; ++i) {
      EXPECT_EQ(g_writes[i].after, i % 2 == 1) << i;
      EXPECT_EQ(g_writes[i].address, word) << i;
    }
    g_write_count = 0;
  }
};

TEST_F(ObserverTest, LockUnlockTryLock) {
  RobustMutex mutex{};
  ASSERT_EQ(mutex.Lock(), LockResult::kAcquired);
  ExpectPairs(&mutex.futex, 1);
  mutex.Unlock();
  ExpectPairs(&mutex.futex, 1);
  ASSERT_EQ(mutex.TryLock(), TryLockResult::kAcquired);
  ExpectPairs(&mutex.futex, 1);
  mutex.Unlock();
  ExpectPairs(&mutex.futex, 1);
}

TEST_F(ObserverTest, OwnerDiedPath) {
  RobustMutex mutex{};
  internal::SetFutexWriteObservers(nullptr, nullptr);
  std::thread owner([&] { ASSERT_EQ(mutex.Lock(), LockResult::kAcquired); });
  owner.join();
  internal::SetFutexWriteObservers(&RecordBefore, &RecordAfter);
  // Failed CAS, FUTEX_LOCK_PI, clearing OWNER_DIED.
  ASSERT_EQ(mutex.Lock(), LockResult::kOwnerDied);
  ExpectPairs(&mutex.futex, 3);
  mutex.Unlock();
  ExpectPairs(&mutex.futex, 1);
}

void DieIfOwned(void* address) {
  if (g_die_when_owned != nullptr && address == g_die_when_owned &&
      OwnerTid(g_die_when_owned->load()) != 0) {
    _exit(0);
  }
}

TEST(RobustMutexDeathTest, DeathBetweenCasAndLinkIsDetected) {
  SharedMemory<SharedCounter> shared;
  const pid_t child = ForkChild([&] {
    g_die_when_owned = &shared->mutex.futex;
    internal::SetFutexWriteObservers(nullptr, &DieIfOwned);
    (void)shared->mutex.Lock();
    return 1;  // Not reached.
  });
  ASSERT_GT(child, 0);
  const int status = WaitFor(child);
  ASSERT_TRUE(WIFEXITED(status));
  ASSERT_EQ(WEXITSTATUS(status), 0);
  // Owned but never linked: only list_op_pending named it.
  EXPECT_EQ(shared->mutex.robust_next, nullptr);
  ASSERT_EQ(shared->mutex.Lock(), LockResult::kOwnerDied);
  shared->mutex.Unlock();
}

TEST(RobustMutexDeathTest, DeathDuringUnlockIsDetected) {
  // Die in the `before` observer of Unlock's CAS: already unlinked, still
  // owned; only list_op_pending names it.
  SharedMemory<SharedCounter> shared;
  const pid_t child = ForkChild([&] {
    if (shared->mutex.Lock() != LockResult::kAcquired) return 1;
    g_die_when_owned = &shared->mutex.futex;
    internal::SetFutexWriteObservers(&DieIfOwned, nullptr);
    shared->mutex.Unlock();
    return 1;  // Not reached.
  });
  ASSERT_GT(child, 0);
  const int status = WaitFor(child);
  ASSERT_TRUE(WIFEXITED(status));
  ASSERT_EQ(WEXITSTATUS(status), 0);
  ASSERT_EQ(shared->mutex.Lock(), LockResult::kOwnerDied);
  shared->mutex.Unlock();
}

}  // namespace
}  // namespace lockless
