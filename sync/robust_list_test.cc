// Robust-list behaviour of RobustMutex: sharing glibc's list, the fallback
// head, and the test offset hook.
#include "sync/robust_list.h"

#include <linux/futex.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <functional>
#include <thread>

#include "gtest/gtest.h"
#include "sync/internal/syscalls.h"
#include "sync/robust_mutex.h"
#include "sync/test_hooks.h"

namespace lockless {
namespace {

// A process-private robust (non-PI) glibc mutex.
class GlibcRobustMutex {
 public:
  GlibcRobustMutex() {
    pthread_mutexattr_t attributes;
    pthread_mutexattr_init(&attributes);
    pthread_mutexattr_setrobust(&attributes, PTHREAD_MUTEX_ROBUST);
    pthread_mutex_init(&mutex_, &attributes);
    pthread_mutexattr_destroy(&attributes);
  }
  ~GlibcRobustMutex() { pthread_mutex_destroy(&mutex_); }
  int Lock() { return pthread_mutex_lock(&mutex_); }
  int Unlock() { return pthread_mutex_unlock(&mutex_); }
  // Locks; if the owner died, marks it consistent. Returns the lock result.
  int LockAndRepair() {
    const int result = pthread_mutex_lock(&mutex_);
    if (result == EOWNERDEAD) pthread_mutex_consistent(&mutex_);
    return result;
  }

 private:
  pthread_mutex_t mutex_;
};

TEST(RobustListTest, SharesGlibcHead) {
  void* head = nullptr;
  size_t length = 0;
  ASSERT_EQ(internal::SysGetRobustList(&head, &length), 0);
  ASSERT_NE(head, nullptr) << "glibc registers a robust list for every thread";
  EXPECT_EQ(internal::CurrentThreadRobustState().head, head);
  EXPECT_EQ(internal::CurrentTid(), internal::SysGetTid());
}

TEST(RobustListTest, BothDieDetectedInEitherOrder) {
  for (bool ours_first : {true, false}) {
    SCOPED_TRACE(ours_first ? "ours first" : "glibc first");
    RobustMutex ours{};
    GlibcRobustMutex theirs;
    std::thread owner([&] {
      if (ours_first) {
        ASSERT_EQ(ours.Lock(), LockResult::kAcquired);
        ASSERT_EQ(theirs.Lock(), 0);
      } else {
        ASSERT_EQ(theirs.Lock(), 0);
        ASSERT_EQ(ours.Lock(), LockResult::kAcquired);
      }
    });
    owner.join();
    EXPECT_EQ(ours.Lock(), LockResult::kOwnerDied);
    EXPECT_EQ(theirs.LockAndRepair(), EOWNERDEAD);
    ours.Unlock();
    EXPECT_EQ(theirs.Unlock(), 0);
  }
}

TEST(RobustListTest, InterleavedUnlocksKeepTheListWorking) {
  // Every unlock order of {ours A, glibc G, ours B} locked as A, G, B (so
  // that each kind has both kinds as neighbours), then the list must still
  // work and a later death must still be detected for all three.
  const int orders[6][3] = {{0, 1, 2}, {0, 2, 1}, {1, 0, 2},
                            {1, 2, 0}, {2, 0, 1}, {2, 1, 0}};
  for (const auto& order : orders) {
    SCOPED_TRACE(testing::Message() << order[0] << order[1] << order[2]);
    RobustMutex a{};
    RobustMutex b{};
    GlibcRobustMutex g;
    std::thread owner([&] {
      ASSERT_EQ(a.Lock(), LockResult::kAcquired);
      ASSERT_EQ(g.Lock(), 0);
      ASSERT_EQ(b.Lock(), LockResult::kAcquired);
      for (int which : order) {
        if (which == 0) {
          a.Unlock();
        } else if (which == 1) {
          ASSERT_EQ(g.Unlock(), 0);
        } else {
          b.Unlock();
        }
      }
      // Again, and die holding all three.
      ASSERT_EQ(b.Lock(), LockResult::kAcquired);
      ASSERT_EQ(g.Lock(), 0);
      ASSERT_EQ(a.Lock(), LockResult::kAcquired);
    });
    owner.join();
    EXPECT_EQ(a.Lock(), LockResult::kOwnerDied);
    EXPECT_EQ(b.Lock(), LockResult::kOwnerDied);
    EXPECT_EQ(g.LockAndRepair(), EOWNERDEAD);
    a.Unlock();
    b.Unlock();
    EXPECT_EQ(g.Unlock(), 0);
  }
}

TEST(RobustListTest, GlibcUnlockingNextToOursThenDeath) {
  // glibc's dequeue rewrites our node's prev/next: lock G1 A G2 B, unlock the
  // glibc ones (each has one of ours as neighbour), die holding A and B.
  RobustMutex a{};
  RobustMutex b{};
  GlibcRobustMutex g1;
  GlibcRobustMutex g2;
  std::thread owner([&] {
    ASSERT_EQ(g1.Lock(), 0);
    ASSERT_EQ(a.Lock(), LockResult::kAcquired);
    ASSERT_EQ(g2.Lock(), 0);
    ASSERT_EQ(b.Lock(), LockResult::kAcquired);
    ASSERT_EQ(g2.Unlock(), 0);
    ASSERT_EQ(g1.Unlock(), 0);
  });
  owner.join();
  EXPECT_EQ(a.Lock(), LockResult::kOwnerDied);
  EXPECT_EQ(b.Lock(), LockResult::kOwnerDied);
  EXPECT_EQ(g1.LockAndRepair(), 0);
  EXPECT_EQ(g2.LockAndRepair(), 0);
  a.Unlock();
  b.Unlock();
  EXPECT_EQ(g1.Unlock(), 0);
  EXPECT_EQ(g2.Unlock(), 0);
}

TEST(RobustListTest, RegistersOwnHeadWhenNoneIsRegistered) {
  RobustMutex mutex{};
  std::thread owner([&] {
    // Unregister glibc's head for this thread (it holds no glibc mutex).
    ASSERT_EQ(internal::SysSetRobustList(nullptr,
                                         sizeof(struct robust_list_head)),
              0);
    ASSERT_EQ(mutex.Lock(), LockResult::kAcquired);
    void* head = nullptr;
    size_t length = 0;
    ASSERT_EQ(internal::SysGetRobustList(&head, &length), 0);
    EXPECT_NE(head, nullptr);
    EXPECT_EQ(head, internal::CurrentThreadRobustState().head);
  });
  owner.join();
  EXPECT_EQ(mutex.Lock(), LockResult::kOwnerDied);
  mutex.Unlock();
}

// --- Offset hook: one memfd page mapped twice (primary and twin). ---

class TwinMapping {
 public:
  TwinMapping() {
    page_bytes_ = static_cast<size_t>(sysconf(_SC_PAGESIZE));
    const int fd = memfd_create("robust_list_test", 0);
    if (fd < 0 || ftruncate(fd, static_cast<off_t>(page_bytes_)) != 0) {
      std::abort();
    }
    primary_ = static_cast<char*>(mmap(nullptr, page_bytes_,
                                       PROT_READ | PROT_WRITE, MAP_SHARED, fd,
                                       0));
    twin_ = static_cast<char*>(mmap(nullptr, page_bytes_,
                                    PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0));
    if (primary_ == MAP_FAILED || twin_ == MAP_FAILED) std::abort();
    close(fd);
  }
  ~TwinMapping() {
    munmap(primary_, page_bytes_);
    munmap(twin_, page_bytes_);
  }
  char* primary() { return primary_; }
  char* twin() { return twin_; }
  size_t page_bytes() const { return page_bytes_; }
  std::ptrdiff_t offset() const { return twin_ - primary_; }

 private:
  size_t page_bytes_;
  char* primary_;
  char* twin_;
};

pid_t ForkChild(const std::function<int()>& body) {
  const pid_t pid = fork();
  if (pid == 0) _exit(body());
  return pid;
}

int ExitCode(pid_t pid) {
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// Word and links of the RobustMutex at the start of the twin's page.
uint32_t TwinWord(TwinMapping& mapping) {
  return reinterpret_cast<RobustMutex*>(mapping.twin())->RawOwnerWord();
}

TEST(RobustListOffsetTest, KernelMarksThroughTheTwin) {
  TwinMapping mapping;
  RobustMutex* mutex = new (mapping.primary()) RobustMutex{};
  const pid_t child = ForkChild([&] {
    internal::SetRobustListOffset(mapping.offset());
    if (mutex->Lock() != LockResult::kAcquired) return 1;
    mutex->Unlock();
    if (mutex->Lock() != LockResult::kAcquired) return 2;
    // The kernel's list names the node by its twin address: the head points
    // at the twin's robust_next (PI-tagged), and our node's prev points back
    // at the head (it was written through the twin, read here through either
    // mapping since they share pages).
    auto* head = static_cast<struct robust_list_head*>(
        internal::CurrentThreadRobustState().head);
    RobustMutex* twin = reinterpret_cast<RobustMutex*>(mapping.twin());
    if (reinterpret_cast<uintptr_t>(head->list.next) !=
        (reinterpret_cast<uintptr_t>(&twin->robust_next) | 1)) {
      return 3;
    }
    if (twin->robust_prev != &head->list) return 4;
    return 0;  // Exit holding it.
  });
  ASSERT_EQ(ExitCode(child), 0);
  EXPECT_TRUE(OwnerDied(TwinWord(mapping)));
  EXPECT_EQ(OwnerTid(TwinWord(mapping)), 0);
  ASSERT_EQ(mutex->Lock(), LockResult::kOwnerDied);
  mutex->Unlock();
}

TEST(RobustListOffsetTest, KernelMarksWithReadOnlyPrimary) {
  TwinMapping mapping;
  RobustMutex* mutex = new (mapping.primary()) RobustMutex{};
  const pid_t child = ForkChild([&] {
    internal::SetRobustListOffset(mapping.offset());
    if (mutex->Lock() != LockResult::kAcquired) return 1;
    if (mprotect(mapping.primary(), mapping.page_bytes(), PROT_READ) != 0) {
      return 2;
    }
    return 0;  // Exit holding it; only the twin is writable.
  });
  ASSERT_EQ(ExitCode(child), 0);
  EXPECT_TRUE(OwnerDied(TwinWord(mapping)));
  ASSERT_EQ(mutex->Lock(), LockResult::kOwnerDied);
  mutex->Unlock();
}

TEST(RobustListOffsetTest, WithoutOffsetReadOnlyPrimaryIsNotMarked) {
  // Control for the test above: the kernel cannot write a read-only word, so
  // the dead child's tid stays in it. Proves the offset is what made it work.
  TwinMapping mapping;
  RobustMutex* mutex = new (mapping.primary()) RobustMutex{};
  pid_t child_tid = 0;
  const pid_t child = ForkChild([&] {
    if (mutex->Lock() != LockResult::kAcquired) return 1;
    if (mprotect(mapping.primary(), mapping.page_bytes(), PROT_READ) != 0) {
      return 2;
    }
    return 0;
  });
  child_tid = child;
  ASSERT_EQ(ExitCode(child), 0);
  EXPECT_FALSE(OwnerDied(TwinWord(mapping)));
  EXPECT_EQ(OwnerTid(TwinWord(mapping)), child_tid);
}

}  // namespace
}  // namespace lockless
