#include "sync/futex.h"

#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <thread>

#include "absl/time/time.h"
#include "gtest/gtest.h"

namespace lockless {
namespace {

TEST(EventTest, ZeroIsNotSet) {
  Event event{};
  EXPECT_FALSE(event.IsSet());
}

TEST(EventTest, SetBeforeWait) {
  Event event{};
  event.Set();
  EXPECT_TRUE(event.IsSet());
  event.Wait();
  EXPECT_TRUE(event.WaitFor(absl::ZeroDuration()));
  EXPECT_TRUE(event.WaitUntil(0));
  event.Set();  // Idempotent.
  EXPECT_TRUE(event.IsSet());
}

TEST(EventTest, SetWhileWaiting) {
  Event event{};
  int payload = 0;  // Published by Set (TSan checks the ordering).
  std::thread waiter([&] {
    event.Wait();
    EXPECT_EQ(payload, 42);
  });
  // Make sure the waiter is (about to be) asleep: it announced itself.
  while (event.state.load() != 2) std::this_thread::yield();
  payload = 42;
  event.Set();
  waiter.join();
}

TEST(EventTest, WaitForWithTimeoutSetMeanwhile) {
  Event event{};
  bool result = false;
  std::thread waiter([&] { result = event.WaitFor(absl::Seconds(60)); });
  while (event.state.load() != 2) std::this_thread::yield();
  event.Set();
  waiter.join();
  EXPECT_TRUE(result);
}

TEST(EventTest, TimeoutExpires) {
  Event event{};
  const int64_t start_ns = MonotonicNowNs();
  EXPECT_FALSE(event.WaitFor(absl::Milliseconds(20)));
  EXPECT_GE(MonotonicNowNs() - start_ns, 20 * 1000 * 1000);
  EXPECT_FALSE(event.WaitUntil(MonotonicNowNs() - 1));  // Past deadline.
  EXPECT_FALSE(event.WaitFor(-absl::Seconds(1)));
  EXPECT_FALSE(event.IsSet());
}

TEST(EventTest, AcrossProcesses) {
  void* memory = mmap(nullptr, sizeof(Event) * 2, PROT_READ | PROT_WRITE,
                      MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(memory, MAP_FAILED);
  Event* ping = static_cast<Event*>(memory);
  Event* pong = ping + 1;
  const pid_t child = fork();
  if (child == 0) {
    ping->Wait();
    pong->Set();
    _exit(0);
  }
  ASSERT_GT(child, 0);
  ping->Set();
  EXPECT_TRUE(pong->WaitFor(absl::Seconds(60)));
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  munmap(memory, sizeof(Event) * 2);
}

TEST(FutexTest, WaitReturnsWhenValueDiffers) {
  std::atomic<uint32_t> word{1};
  EXPECT_EQ(FutexWait(&word, 0), FutexWaitResult::kValueChanged);
  EXPECT_EQ(FutexWaitUntil(&word, 1, MonotonicNowNs() + 1000000),
            FutexWaitResult::kTimedOut);
  EXPECT_EQ(FutexWake(&word, 1), 0);
  EXPECT_EQ(FutexWakeAll(&word), 0);
}

}  // namespace
}  // namespace lockless
