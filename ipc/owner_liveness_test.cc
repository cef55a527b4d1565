// Owners the kernel did not mark dead (robust list unregistered, then
// SIGKILL), owner records naming reused tids, the bounded setup wait, and
// never re-initialising a live channel.
#include "ipc/internal/owner_liveness.h"

#include <linux/futex.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_format.h"
#include "gtest/gtest.h"
#include "ipc/lockless_queue.h"
#include "ipc/queue_printer.h"
#include "ipc/shm_channel.h"
#include "sync/test_hooks.h"
#include "testing/queue_memory.h"

namespace lockless {
namespace {

using internal::OwnerIdentity;
using internal::OwnerLiveness;
using ::lockless::testing::QueueMemory;

QueueConfig OneOfEach() {
  QueueConfig config;
  config.num_watchers = 1;
  config.num_senders = 1;
  config.queue_size = 8;
  config.message_data_size_bytes = 16;
  return config;
}

// What the kernel would walk at this thread's death: nothing from now on.
// (The kernel accepts only len == sizeof(struct robust_list_head) even for
// a null head; set_robust_list(NULL, 0) fails with EINVAL.)
void UnregisterRobustList() {
  const long result =
      syscall(SYS_set_robust_list, nullptr, sizeof(struct robust_list_head));
  if (result != 0) {
    std::perror("set_robust_list");
    _exit(3);
  }
}

// Forks a child that runs `claim` (which must take something in the
// region), unregisters its robust list, reports, and waits to be killed;
// then SIGKILLs and reaps it. Returns the child's pid.
template <typename Claim>
pid_t ClaimUnregisterAndKill(Claim claim) {
  int ready[2];
  if (pipe(ready) != 0) std::abort();
  const pid_t child = fork();
  if (child == 0) {
    close(ready[0]);
    if (!claim()) _exit(2);
    UnregisterRobustList();
    const char byte = 1;
    if (write(ready[1], &byte, 1) != 1) _exit(4);
    while (true) pause();
  }
  close(ready[1]);
  char byte = 0;
  const ssize_t got = read(ready[0], &byte, 1);
  close(ready[0]);
  kill(child, SIGKILL);
  int status = 0;
  waitpid(child, &status, 0);
  EXPECT_EQ(got, 1) << "child failed to claim (exit status " << status << ")";
  return child;
}

// Takes `header`'s setup lock the way SetupLock::Acquire leaves it held:
// locked, then the holder's owner record written. False if not taken.
bool HoldSetupLockAsSetupDoes(internal::RegionHeader* header) {
  if (header->setup_lock.Lock() != LockResult::kAcquired) return false;
  internal::StoreOwnerRecord(header->setup_lock_owner,
                             internal::CurrentOwnerIdentity());
  return true;
}

// A live thread of this process holding a region's setup lock from
// construction until destruction (which releases it on that thread).
class SetupLockHolderThread {
 public:
  explicit SetupLockHolderThread(internal::RegionHeader* header)
      : thread_([this, header] {
          const bool taken = HoldSetupLockAsSetupDoes(header);
          held_.set_value(taken);
          release_.get_future().wait();
          if (taken) header->setup_lock.Unlock();
        }) {
    EXPECT_TRUE(held_.get_future().get()) << "could not take the setup lock";
  }
  ~SetupLockHolderThread() {
    release_.set_value();
    thread_.join();
  }

 private:
  std::promise<bool> held_;
  std::promise<void> release_;
  std::thread thread_;
};

// The word still names a tid and says nothing about a death: the kernel
// did not mark it (the premise of the tests below).
void ExpectUnmarked(const RobustMutex& mutex) {
  const uint32_t word = mutex.RawOwnerWord();
  EXPECT_NE(OwnerTid(word), 0);
  EXPECT_FALSE(OwnerDied(word)) << std::hex << word;
}

TEST(JudgeOwnerTest, OwnAndOtherThreads) {
  const uint64_t ns = internal::CurrentOwnerIdentity().pid_namespace;
  ASSERT_NE(ns, 0u) << "no /proc";
  const OwnerIdentity me = internal::CurrentOwnerIdentity();
  ASSERT_NE(me.start_time_ticks, 0u);
  EXPECT_EQ(internal::JudgeOwner(me.tid, me, ns), OwnerLiveness::kAlive);

  OwnerIdentity other_start = me;
  other_start.start_time_ticks += 1;
  EXPECT_EQ(internal::JudgeOwner(me.tid, other_start, ns),
            OwnerLiveness::kReplaced);

  // The record is not the word's owner's, or from another namespace.
  EXPECT_EQ(internal::JudgeOwner(me.tid + 1, me, ns), OwnerLiveness::kUnknown);
  EXPECT_EQ(internal::JudgeOwner(me.tid, me, ns + 1), OwnerLiveness::kUnknown);

  // A thread that has exited (joined: reaped). Gone; or, had its tid been
  // reused meanwhile (after pid_max other threads), replaced: never alive.
  OwnerIdentity exited{};
  std::thread([&exited] { exited = internal::CurrentOwnerIdentity(); }).join();
  const OwnerLiveness verdict = internal::JudgeOwner(exited.tid, exited, ns);
  EXPECT_TRUE(verdict == OwnerLiveness::kGone ||
              verdict == OwnerLiveness::kReplaced)
      << internal::OwnerLivenessName(verdict);
}

TEST(OwnerLivenessTest, SenderWhoseRobustListWasUnregisteredIsRecovered) {
  QueueMemory region(OneOfEach());
  LocklessQueue queue =
      *LocklessQueue::Attach(region.data(), region.size_bytes(), OneOfEach());
  ClaimUnregisterAndKill([&queue] {
    absl::StatusOr<Sender> sender = queue.MakeSender();
    if (!sender.ok()) return false;
    const char payload[] = "from the child";
    if (sender->Send(payload, sizeof(payload)) != SendResult::kOk) return false;
    // Never released: the child "dies" holding it.
    new Sender(*std::move(sender));
    return true;
  });
  ExpectUnmarked(queue.region().sender(0)->ownership);

  // The only slot is taken over.
  absl::StatusOr<Sender> sender = queue.MakeSender();
  ASSERT_TRUE(sender.ok()) << sender.status();
  const char payload[] = "after";
  ASSERT_EQ(sender->Send(payload, sizeof(payload)), SendResult::kOk);
  char buffer[32];
  MessageInfo info;
  ASSERT_EQ(queue.Read(queue.MakeQueueIndex(0), &info, buffer, sizeof(buffer)),
            ReadResult::kGood);
  EXPECT_STREQ(buffer, "from the child");
  ASSERT_EQ(queue.Read(queue.MakeQueueIndex(1), &info, buffer, sizeof(buffer)),
            ReadResult::kGood);
  EXPECT_STREQ(buffer, "after");
}

TEST(OwnerLivenessTest, WatcherWhoseRobustListWasUnregisteredIsReclaimed) {
  QueueMemory region(OneOfEach());
  LocklessQueue queue =
      *LocklessQueue::Attach(region.data(), region.size_bytes(), OneOfEach());
  ClaimUnregisterAndKill([&queue] {
    absl::StatusOr<Watcher> watcher = queue.MakeWatcher(/*priority=*/0);
    if (!watcher.ok()) return false;
    new Watcher(*std::move(watcher));
    return true;
  });
  ExpectUnmarked(queue.region().watcher(0)->ownership);

  // The dead watcher is not signalled...
  WakeUpper waker(queue);
  WakeupReport report;
  EXPECT_EQ(waker.Wakeup(/*current_priority=*/0, &report), 0);
  EXPECT_EQ(report.signalled, 0);
  EXPECT_EQ(report.unverified, 1);
  // ...and its only slot is taken over.
  absl::StatusOr<Waiter> waiter = queue.MakeWaiter();
  ASSERT_TRUE(waiter.ok()) << waiter.status();
}

TEST(OwnerLivenessTest, SetupLockWhoseHolderDiedUnmarkedIsTakenOver) {
  QueueMemory region(OneOfEach());
  LocklessQueue queue =
      *LocklessQueue::Attach(region.data(), region.size_bytes(), OneOfEach());
  ClaimUnregisterAndKill([&queue] {
    // A holder in the middle of setup: as SetupLock::Acquire leaves it.
    return HoldSetupLockAsSetupDoes(queue.region().header());
  });
  ExpectUnmarked(queue.region().header()->setup_lock);

  absl::StatusOr<Sender> sender = queue.MakeSender(
      std::chrono::steady_clock::now() + std::chrono::seconds(1));
  ASSERT_TRUE(sender.ok()) << sender.status();
  EXPECT_EQ(OwnerTid(queue.region().header()->setup_lock.RawOwnerWord()), 0);
}

TEST(OwnerLivenessTest, InitialiserThatDiedUnmarkedIsRedone) {
  QueueMemory region(OneOfEach());
  ClaimUnregisterAndKill([&region] {
    auto* header = static_cast<internal::RegionHeader*>(region.data());
    if (!HoldSetupLockAsSetupDoes(header)) return false;
    // Half-way through InitializeRegion.
    header->initializing = internal::kInitializingValue;
    header->layout_version = internal::kLayoutVersion;
    return true;
  });
  absl::StatusOr<LocklessQueue> queue = LocklessQueue::Attach(
      region.data(), region.size_bytes(), OneOfEach(),
      std::chrono::steady_clock::now() + std::chrono::seconds(1));
  ASSERT_TRUE(queue.ok()) << queue.status();
  EXPECT_TRUE(queue->MakeSender().ok());
}

// A helper thread that stays alive until told to exit: a live, unrelated
// thread whose tid a stale record can collide with.
class LiveThread {
 public:
  LiveThread() {
    thread_ = std::thread([this] {
      sigset_t wake;
      sigemptyset(&wake);
      sigaddset(&wake, WakeupSignal());
      pthread_sigmask(SIG_BLOCK, &wake, nullptr);
      identity_.set_value(internal::CurrentOwnerIdentity());
      exit_.get_future().wait();
      sigset_t pending;
      sigpending(&pending);
      got_wakeup_ = sigismember(&pending, WakeupSignal()) == 1;
    });
    identity = identity_.get_future().get();
  }
  // Joins; whether a wake-up signal was pending for the thread.
  bool JoinAndReportWakeup() {
    exit_.set_value();
    thread_.join();
    return got_wakeup_;
  }

  OwnerIdentity identity{};

 private:
  std::promise<OwnerIdentity> identity_;
  std::promise<void> exit_;
  std::thread thread_;
  bool got_wakeup_ = false;
};

// A record whose owner had `live`'s tid but started at another time: the
// owner died unmarked and its tid now names `live`.
OwnerIdentity ReusedTidRecord(const OwnerIdentity& live) {
  OwnerIdentity record = live;
  record.start_time_ticks = live.start_time_ticks - 1;
  return record;
}

TEST(OwnerLivenessTest, SenderSlotNamingAReusedTidIsRecovered) {
  QueueMemory region(OneOfEach());
  LocklessQueue queue =
      *LocklessQueue::Attach(region.data(), region.size_bytes(), OneOfEach());
  LiveThread live;
  internal::SenderSlot* const slot = queue.region().sender(0);
  internal::StoreOwnerRecord(slot->owner, ReusedTidRecord(live.identity));
  slot->ownership.futex.store(static_cast<uint32_t>(live.identity.tid));

  absl::StatusOr<Sender> sender = queue.MakeSender();
  ASSERT_TRUE(sender.ok()) << sender.status();
  EXPECT_EQ(sender->slot(), 0u);
  live.JoinAndReportWakeup();
}

// The setup lock's holder records itself only after its TryLock, so for a
// few instructions the word names a holder that no record describes. If the
// record an earlier holder left behind names the same tid (tids are reused:
// here an earlier thread of this process with our tid, as the start time
// says), a waiter must not judge the new, live holder by it: taking the lock
// over would give it two holders.
TEST(OwnerLivenessTest, UnrecordedHolderIsNotJudgedByAnEarlierHoldersRecord) {
  QueueMemory region(OneOfEach());
  LocklessQueue queue =
      *LocklessQueue::Attach(region.data(), region.size_bytes(), OneOfEach());
  internal::RegionHeader* const header = queue.region().header();
  // The earlier holder: takes and releases the lock through the API...
  ASSERT_TRUE(queue.MakeSender().ok());
  // ...and was another thread with our tid (what it left says so).
  header->setup_lock_owner.start_time_ticks.fetch_sub(1);

  // We take the lock as SetupLock::Acquire does, and have not recorded
  // ourselves yet.
  ASSERT_EQ(header->setup_lock.TryLock(), TryLockResult::kAcquired);
  const uint32_t ours = header->setup_lock.RawOwnerWord();
  std::thread([&queue] {
    const absl::StatusOr<Sender> sender = queue.MakeSender(
        std::chrono::steady_clock::now() + std::chrono::milliseconds(50));
    EXPECT_EQ(sender.status().code(), absl::StatusCode::kDeadlineExceeded)
        << "took over the setup lock from its live holder: "
        << sender.status();
  }).join();
  EXPECT_EQ(header->setup_lock.RawOwnerWord(), ours);
  if (header->setup_lock.RawOwnerWord() == ours) header->setup_lock.Unlock();
}

// Writes `text` to the file at `path`; false on any error.
bool WriteFile(const char* path, const std::string& text) {
  const int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return false;
  const bool ok = write(fd, text.data(), text.size()) ==
                  static_cast<ssize_t>(text.size());
  close(fd);
  return ok;
}

// /proc numbers threads as the pid namespace it was mounted from. Two
// processes of one pid namespace can see different /procs (one entered the
// namespace without mounting its own: nsenter -p, unshare -p without
// --mount-proc). The owner records itself through a /proc of its namespace;
// a judge whose /proc is an outer namespace's reads, under the owner's
// numbers, an unrelated outer thread (here: this test's LiveThread, whose
// tid the owner is given through ns_last_pid), finds another start time,
// and must not conclude that the owner's tid was reused.
TEST(OwnerLivenessTest, ProcOfAnotherPidNamespaceProvesNothing) {
  QueueMemory region(OneOfEach());
  LocklessQueue queue =
      *LocklessQueue::Attach(region.data(), region.size_bytes(), OneOfEach());
  LiveThread outer;  // Its tid: the inner owner's pid and tid.
  int ready[2];
  ASSERT_EQ(pipe(ready), 0);
  const uid_t uid = getuid();
  const gid_t gid = getgid();
  const pid_t child = fork();
  if (child == 0) {
    close(ready[1]);
    // 77: namespaces unavailable here (the test is skipped).
    if (unshare(CLONE_NEWUSER | CLONE_NEWPID) != 0) _exit(77);
    if (!WriteFile("/proc/self/setgroups", "deny") ||
        !WriteFile("/proc/self/uid_map", absl::StrFormat("0 %d 1", uid)) ||
        !WriteFile("/proc/self/gid_map", absl::StrFormat("0 %d 1", gid))) {
      _exit(77);
    }
    int owner_ready[2];
    if (pipe(owner_ready) != 0) _exit(2);
    const pid_t init = fork();  // Pid 1 of the new namespace.
    if (init == 0) {
      close(owner_ready[0]);
      // Its own mount namespace with a /proc of the new pid namespace.
      if (unshare(CLONE_NEWNS) != 0 ||
          mount("none", "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0 ||
          mount("proc", "/proc", "proc", 0, nullptr) != 0 ||
          !WriteFile("/proc/sys/kernel/ns_last_pid",
                     std::to_string(outer.identity.tid - 1))) {
        _exit(77);
      }
      const pid_t owner = fork();
      if (owner == 0) {
        if (getpid() != outer.identity.tid) _exit(77);
        absl::StatusOr<Sender> sender = queue.MakeSender();
        if (!sender.ok()) _exit(3);
        new Sender(*std::move(sender));  // Held until killed.
        const char byte = 1;
        if (write(owner_ready[1], &byte, 1) != 1) _exit(4);
        while (true) pause();
      }
      while (true) pause();  // Killed with the namespace.
    }
    close(owner_ready[1]);
    char byte = 0;
    const bool owner_claimed = read(owner_ready[0], &byte, 1) == 1;
    int code = 77;
    if (owner_claimed) {
      // The judge: in the new pid namespace, with the outer /proc.
      const pid_t judge = fork();
      if (judge == 0) {
        const absl::StatusOr<Sender> sender = queue.MakeSender(
            std::chrono::steady_clock::now() + std::chrono::seconds(2));
        _exit(sender.status().code() == absl::StatusCode::kResourceExhausted
                  ? 0
                  : sender.ok() ? 10 : 11);
      }
      int status = 0;
      waitpid(judge, &status, 0);
      code = WIFEXITED(status) ? WEXITSTATUS(status) : 12;
    }
    kill(init, SIGKILL);  // Takes the whole namespace with it.
    waitpid(init, nullptr, 0);
    _exit(code);
  }
  close(ready[0]);
  close(ready[1]);
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  outer.JoinAndReportWakeup();
  ASSERT_TRUE(WIFEXITED(status)) << status;
  if (WEXITSTATUS(status) == 77) {
    GTEST_SKIP() << "needs user and pid namespaces and a mountable /proc";
  }
  EXPECT_EQ(WEXITSTATUS(status), 0)
      << "10: the live owner's slot was taken over; 11: other error";
}

// The inode of /proc/self/ns/pid: what PidNamespaceId() returns.
uint64_t PidNamespaceInode() {
  struct stat st;
  if (stat("/proc/self/ns/pid", &st) != 0) return 0;
  return static_cast<uint64_t>(st.st_ino);
}

// What a forked child records must be its own identity even when its tid
// equals the one its parent's thread had cached: possible when the child is
// in a new pid namespace (here, through ns_last_pid), or, in one namespace,
// a grandchild that gets a tid freed by its exited grandparent, whose
// identity its parent inherited without refreshing it. A stale record names
// the parent (its pid, namespace and start time): once that process exits,
// a judge proves it gone and takes the live child's slot over.
TEST(JudgeOwnerTest, ForkedChildWithTheCachedTidRecordsItself) {
  const uid_t uid = getuid();
  const gid_t gid = getgid();
  const pid_t child = fork();
  if (child == 0) {
    const pid_t cached_tid = internal::CurrentOwnerIdentity().tid;
    if (unshare(CLONE_NEWUSER | CLONE_NEWPID) != 0 ||
        !WriteFile("/proc/self/setgroups", "deny") ||
        !WriteFile("/proc/self/uid_map", absl::StrFormat("0 %d 1", uid)) ||
        !WriteFile("/proc/self/gid_map", absl::StrFormat("0 %d 1", gid))) {
      _exit(77);
    }
    const pid_t init = fork();  // Pid 1 of the new namespace.
    if (init == 0) {
      if (unshare(CLONE_NEWNS) != 0 ||
          mount("none", "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0 ||
          mount("proc", "/proc", "proc", 0, nullptr) != 0 ||
          !WriteFile("/proc/sys/kernel/ns_last_pid",
                     std::to_string(cached_tid - 1))) {
        _exit(77);
      }
      const pid_t grandchild = fork();
      if (grandchild == 0) {
        if (getpid() != cached_tid) _exit(77);
        const OwnerIdentity me = internal::CurrentOwnerIdentity();
        const internal::ThreadStat stat =
            internal::ReadThreadStat(getpid(), getpid());
        _exit(me.tid == getpid() && me.pid == getpid() &&
                      me.pid_namespace == PidNamespaceInode() &&
                      stat.lookup == internal::ThreadStat::Lookup::kFound &&
                      me.start_time_ticks == stat.start_time_ticks
                  ? 0
                  : 10);
      }
      int status = 0;
      waitpid(grandchild, &status, 0);
      _exit(WIFEXITED(status) ? WEXITSTATUS(status) : 12);
    }
    int status = 0;
    waitpid(init, &status, 0);
    _exit(WIFEXITED(status) ? WEXITSTATUS(status) : 12);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status)) << status;
  if (WEXITSTATUS(status) == 77) {
    GTEST_SKIP() << "needs user and pid namespaces and a mountable /proc";
  }
  EXPECT_EQ(WEXITSTATUS(status), 0)
      << "10: the child recorded its parent's identity";
}

// A holder of the setup lock died unmarked, and its tid now belongs to the
// thread that wants the lock (here: an earlier thread of this process, as
// the record's start time says). The word names the caller's own tid, yet
// the caller does not hold it: its record is another thread's. That is a
// dead holder to take over, not a recursive lock.
TEST(OwnerLivenessTest, SetupLockNamingOurTidFromADeadHolderIsTakenOver) {
  QueueMemory region(OneOfEach());
  LocklessQueue queue =
      *LocklessQueue::Attach(region.data(), region.size_bytes(), OneOfEach());
  internal::RegionHeader* const header = queue.region().header();
  OwnerIdentity earlier = internal::CurrentOwnerIdentity();
  earlier.start_time_ticks -= 1;
  internal::StoreOwnerRecord(header->setup_lock_owner, earlier);
  header->setup_lock.futex.store(static_cast<uint32_t>(earlier.tid));

  const absl::StatusOr<Sender> sender = queue.MakeSender(
      std::chrono::steady_clock::now() + std::chrono::seconds(1));
  EXPECT_TRUE(sender.ok()) << sender.status();
  EXPECT_EQ(header->setup_lock.RawOwnerWord(), 0u);
}

// For TakerAfterAKernelMarkedDeathIsNotJudgedByTheDeadHoldersRecord: when
// the word first names the taking thread without the owner-died mark (the
// taker's own futex write, seen by the write observer), another thread
// tries to take the lock and reports whether it was refused.
std::atomic<uint32_t>* g_contested_word = nullptr;
pid_t g_taker_tid = 0;
LocklessQueue* g_contested_queue = nullptr;
std::atomic<int> g_rival_outcome{-1};  // -1 not run, 0 refused, 1 took it.

void RivalTriesWhenTheWordNamesTheTaker(void* address) {
  if (address != g_contested_word || g_rival_outcome.load() != -1) return;
  if (internal::CurrentTid() != g_taker_tid) return;
  const uint32_t word = g_contested_word->load();
  if (OwnerTid(word) != g_taker_tid || OwnerDied(word)) return;
  g_rival_outcome.store(2);  // Running (and stops re-entry).
  std::thread([] {
    const absl::StatusOr<Sender> sender = g_contested_queue->MakeSender(
        std::chrono::steady_clock::now() + std::chrono::milliseconds(50));
    g_rival_outcome.store(
        sender.status().code() == absl::StatusCode::kDeadlineExceeded ? 0 : 1);
  }).join();
}

// The setup lock's holder died and the kernel marked it; its record (tid
// T) stays. The next taker has tid T too (tids are reused; here an earlier
// thread of this process had ours, as the record's start time says). Once
// the word names the taker without the owner-died mark, a waiter must not
// judge it by the dead holder's record.
TEST(OwnerLivenessTest,
     TakerAfterAKernelMarkedDeathIsNotJudgedByTheDeadHoldersRecord) {
  QueueMemory region(OneOfEach());
  LocklessQueue queue =
      *LocklessQueue::Attach(region.data(), region.size_bytes(), OneOfEach());
  internal::RegionHeader* const header = queue.region().header();
  const pid_t child = fork();  // A taken-over lock would abort the taker.
  if (child == 0) {
    OwnerIdentity dead = internal::CurrentOwnerIdentity();
    dead.start_time_ticks -= 1;
    internal::StoreOwnerRecord(header->setup_lock_owner, dead);
    header->setup_lock.futex.store(FUTEX_OWNER_DIED);  // The kernel's mark.
    g_contested_word = &header->setup_lock.futex;
    g_taker_tid = internal::CurrentTid();
    g_contested_queue = &queue;
    internal::SetFutexWriteObservers(nullptr,
                                     RivalTriesWhenTheWordNamesTheTaker);
    const absl::StatusOr<Sender> sender = queue.MakeSender(
        std::chrono::steady_clock::now() + std::chrono::seconds(2));
    internal::SetFutexWriteObservers(nullptr, nullptr);
    _exit(!sender.ok() ? 20 : g_rival_outcome.load() == 0 ? 0 : 10);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status))
      << "the taker died (signal " << WTERMSIG(status)
      << "): its lock was taken over";
  EXPECT_EQ(WEXITSTATUS(status), 0)
      << "10: a rival took the lock from the live taker; 20: the taker failed";
}

TEST(OwnerLivenessTest, LiveSenderIsNotTakenOver) {
  QueueMemory region(OneOfEach());
  LocklessQueue queue =
      *LocklessQueue::Attach(region.data(), region.size_bytes(), OneOfEach());
  absl::StatusOr<Sender> first = queue.MakeSender();
  ASSERT_TRUE(first.ok());
  std::thread([&queue] {
    EXPECT_EQ(queue.MakeSender().status().code(),
              absl::StatusCode::kResourceExhausted);
  }).join();
  const char payload[] = "x";
  EXPECT_EQ(first->Send(payload, sizeof(payload)), SendResult::kOk);
}

// Registers `live`'s thread in watcher slot 0 as a signal watcher, as
// MakeWatcher would, but with `record` as its owner record. Returns the slot.
internal::WatcherSlot* RegisterSignalWatcher(
    const LocklessQueue& queue, const LiveThread& live,
    const internal::OwnerIdentity& record) {
  internal::WatcherSlot* const slot = queue.region().watcher(0);
  slot->pid.store(live.identity.pid);
  slot->pid_namespace.store(live.identity.pid_namespace);
  slot->kind.store(internal::kSignalWatcher);
  internal::StoreOwnerRecord(slot->owner, record);
  slot->ownership.futex.store(static_cast<uint32_t>(live.identity.tid));
  return slot;
}

TEST(OwnerLivenessTest, WatcherNamingAReusedTidIsNeverSignalled) {
  QueueMemory region(OneOfEach());
  LocklessQueue queue =
      *LocklessQueue::Attach(region.data(), region.size_bytes(), OneOfEach());
  LiveThread live;
  RegisterSignalWatcher(queue, live, ReusedTidRecord(live.identity));

  WakeUpper waker(queue);
  WakeupReport report;
  EXPECT_EQ(waker.Wakeup(/*current_priority=*/0, &report), 0);
  EXPECT_EQ(report.signalled, 0);
  EXPECT_EQ(report.unverified, 1);
  EXPECT_FALSE(live.JoinAndReportWakeup());
  // Its slot is reclaimed.
  EXPECT_TRUE(queue.MakeWaiter().ok());
}

TEST(OwnerLivenessTest, LiveWatcherIsSignalled) {
  QueueMemory region(OneOfEach());
  LocklessQueue queue =
      *LocklessQueue::Attach(region.data(), region.size_bytes(), OneOfEach());
  LiveThread live;
  internal::WatcherSlot* const slot =
      RegisterSignalWatcher(queue, live, live.identity);
  WakeUpper waker(queue);
  WakeupReport report;
  EXPECT_EQ(waker.Wakeup(/*current_priority=*/0, &report), 1);
  EXPECT_EQ(report.signalled, 1);
  EXPECT_TRUE(live.JoinAndReportWakeup());
  slot->ownership.futex.store(0);
}

// The dump shows, under each owned slot, what setup would conclude about its
// owner from the record.
TEST(OwnerLivenessTest, PrinterShowsOwnerRecords) {
  QueueMemory region(OneOfEach());
  LocklessQueue queue =
      *LocklessQueue::Attach(region.data(), region.size_bytes(), OneOfEach());
  absl::StatusOr<Sender> mine = queue.MakeSender();
  ASSERT_TRUE(mine.ok());
  LiveThread live;
  internal::WatcherSlot* const slot = queue.region().watcher(0);
  internal::StoreOwnerRecord(slot->owner, ReusedTidRecord(live.identity));
  slot->ownership.futex.store(static_cast<uint32_t>(live.identity.tid));

  std::string dump;
  ASSERT_TRUE(
      PrintRegion(region.data(), region.size_bytes(), PrintOptions(), &dump)
          .ok());
  const OwnerIdentity me = internal::CurrentOwnerIdentity();
  EXPECT_NE(dump.find(absl::StrFormat(
                "owner record: pid %d tid %d started at tick %u: alive",
                me.pid, me.tid, me.start_time_ticks)),
            std::string::npos)
      << dump;
  EXPECT_NE(dump.find(absl::StrFormat(
                "owner record: pid %d tid %d started at tick %u: tid reused "
                "by another thread",
                live.identity.pid, live.identity.tid,
                live.identity.start_time_ticks - 1)),
            std::string::npos)
      << dump;
  slot->ownership.futex.store(0);
  live.JoinAndReportWakeup();
}

std::vector<unsigned char> Bytes(const QueueMemory& region) {
  const auto* begin = static_cast<const unsigned char*>(region.data());
  return std::vector<unsigned char>(begin, begin + region.size_bytes());
}

TEST(OwnerLivenessTest, SetupLockHeldForeverIsReportedAndRegionUntouched) {
  QueueMemory region(OneOfEach());
  LocklessQueue queue =
      *LocklessQueue::Attach(region.data(), region.size_bytes(), OneOfEach());
  internal::RegionHeader* const header = queue.region().header();
  const SetupLockHolderThread holder(header);
  const std::vector<unsigned char> before = Bytes(region);
  const std::string holder_names =
      absl::StrFormat("pid %d tid %d (alive)", getpid(),
                      OwnerTid(header->setup_lock.RawOwnerWord()));

  const auto soon =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(50);
  absl::StatusOr<Sender> sender = queue.MakeSender(soon);
  EXPECT_EQ(sender.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_NE(std::string(sender.status().message()).find(holder_names),
            std::string::npos)
      << sender.status();
  EXPECT_TRUE(Bytes(region) == before);
}

TEST(OwnerLivenessTest, UninitialisedRegionWithHeldSetupLockReportsHolder) {
  QueueMemory region(OneOfEach());
  auto* header = static_cast<internal::RegionHeader*>(region.data());
  const SetupLockHolderThread holder(header);
  const std::vector<unsigned char> before = Bytes(region);
  absl::StatusOr<LocklessQueue> queue = LocklessQueue::Attach(
      region.data(), region.size_bytes(), OneOfEach(),
      std::chrono::steady_clock::now() + std::chrono::milliseconds(50));
  EXPECT_EQ(queue.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_NE(std::string(queue.status().message()).find("(alive)"),
            std::string::npos)
      << queue.status();
  EXPECT_TRUE(Bytes(region) == before);
}

TEST(OwnerLivenessTest, ScribbledInitializedWordIsCorruptionNotReinit) {
  for (const uint32_t scribble : {0u, 0x12345678u}) {
    SCOPED_TRACE(scribble);
    QueueMemory region(OneOfEach());
    LocklessQueue queue =
        *LocklessQueue::Attach(region.data(), region.size_bytes(), OneOfEach());
    absl::StatusOr<Sender> sender = queue.MakeSender();
    ASSERT_TRUE(sender.ok());
    const char payload[] = "live";
    ASSERT_EQ(sender->Send(payload, sizeof(payload)), SendResult::kOk);
    queue.region().header()->initialized.store(scribble);
    const std::vector<unsigned char> before = Bytes(region);

    absl::StatusOr<LocklessQueue> again =
        LocklessQueue::Attach(region.data(), region.size_bytes(), OneOfEach());
    EXPECT_EQ(again.status().code(), absl::StatusCode::kDataLoss)
        << again.status();
    EXPECT_TRUE(Bytes(region) == before);
  }
}

}  // namespace
}  // namespace lockless
