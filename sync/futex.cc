#include "sync/futex.h"

#include <time.h>

#include <cerrno>
#include <climits>

#include "index/internal/check.h"
#include "sync/internal/syscalls.h"

namespace lockless {
namespace {

constexpr int64_t kNanosPerSecond = 1000000000;

constexpr uint32_t kClear = 0;
constexpr uint32_t kSet = 1;
constexpr uint32_t kClearWithWaiters = 2;

inline uint32_t* KernelWord(std::atomic<uint32_t>* word) {
  return reinterpret_cast<uint32_t*>(word);
}

FutexWaitResult Translate(int result) {
  switch (result) {
    case 0:
    case -EINTR:
      return FutexWaitResult::kWoken;
    case -EAGAIN:
      return FutexWaitResult::kValueChanged;
    case -ETIMEDOUT:
      return FutexWaitResult::kTimedOut;
    default:
      LOCKLESS_CHECK(false, "FUTEX_WAIT_BITSET failed (EFAULT/EINVAL?)");
  }
  return FutexWaitResult::kWoken;  // Unreachable.
}

}  // namespace

int64_t MonotonicNowNs() {
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  return static_cast<int64_t>(now.tv_sec) * kNanosPerSecond + now.tv_nsec;
}

FutexWaitResult FutexWait(std::atomic<uint32_t>* word, uint32_t expected) {
  return Translate(
      internal::SysFutexWaitBitset(KernelWord(word), expected, nullptr));
}

FutexWaitResult FutexWaitUntil(std::atomic<uint32_t>* word, uint32_t expected,
                               int64_t deadline_ns) {
  if (deadline_ns < 0) deadline_ns = 0;
  struct timespec deadline;
  deadline.tv_sec = static_cast<time_t>(deadline_ns / kNanosPerSecond);
  deadline.tv_nsec = static_cast<long>(deadline_ns % kNanosPerSecond);
  return Translate(
      internal::SysFutexWaitBitset(KernelWord(word), expected, &deadline));
}

int FutexWake(std::atomic<uint32_t>* word, int max_waiters) {
  const int result = internal::SysFutexWake(KernelWord(word), max_waiters);
  LOCKLESS_CHECK(result >= 0, "FUTEX_WAKE failed (EFAULT/EINVAL?)");
  return result;
}

int FutexWakeAll(std::atomic<uint32_t>* word) {
  return FutexWake(word, INT_MAX);
}

void Event::Set() {
  // Release: pairs with the acquire loads in Wait*/IsSet, publishing
  // everything before Set(). An exchange so we learn whether to wake.
  if (state.exchange(kSet, std::memory_order_release) == kClearWithWaiters) {
    FutexWakeAll(&state);
  }
}

bool Event::IsSet() const {
  // Acquire: pairs with the release exchange in Set.
  return state.load(std::memory_order_acquire) == kSet;
}

void Event::Wait() {
  const bool set = WaitUntil(INT64_MAX);
  LOCKLESS_CHECK(set, "Event::Wait returned without the event set");
}

bool Event::WaitUntil(int64_t deadline_ns) {
  for (;;) {
    // Acquire: pairs with the release exchange in Set.
    uint32_t current = state.load(std::memory_order_acquire);
    if (current == kSet) return true;
    if (current == kClear) {
      // Relaxed: announcing a sleeper publishes nothing; if Set() wins the
      // race, the CAS fails and the acquire load above runs again.
      if (!state.compare_exchange_strong(current, kClearWithWaiters,
                                         std::memory_order_relaxed)) {
        continue;
      }
    }
    const FutexWaitResult result =
        deadline_ns == INT64_MAX
            ? FutexWait(&state, kClearWithWaiters)
            : FutexWaitUntil(&state, kClearWithWaiters, deadline_ns);
    if (result == FutexWaitResult::kTimedOut) {
      // Acquire: as above; a Set() that raced with the timeout still counts.
      return state.load(std::memory_order_acquire) == kSet;
    }
  }
}

bool Event::WaitFor(absl::Duration timeout) {
  if (timeout == absl::InfiniteDuration()) return WaitUntil(INT64_MAX);
  const int64_t timeout_ns = absl::ToInt64Nanoseconds(timeout);
  const int64_t now_ns = MonotonicNowNs();
  const int64_t deadline_ns =
      timeout_ns > INT64_MAX - now_ns ? INT64_MAX - 1 : now_ns + timeout_ns;
  return WaitUntil(deadline_ns);
}

}  // namespace lockless
