#include "sync/internal/syscalls.h"

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>

namespace lockless {
namespace internal {
namespace {

// syscall(2) returns -1 and sets errno; convert to the -errno convention.
inline long Result(long ret) { return ret == -1 ? -errno : ret; }

}  // namespace

pid_t SysGetTid() { return static_cast<pid_t>(syscall(SYS_gettid)); }

int SysFutexLockPi(uint32_t* word) {
  return static_cast<int>(
      Result(syscall(SYS_futex, word, FUTEX_LOCK_PI, 0, nullptr, nullptr, 0)));
}

int SysFutexTryLockPi(uint32_t* word) {
  return static_cast<int>(Result(
      syscall(SYS_futex, word, FUTEX_TRYLOCK_PI, 0, nullptr, nullptr, 0)));
}

int SysFutexUnlockPi(uint32_t* word) {
  return static_cast<int>(Result(
      syscall(SYS_futex, word, FUTEX_UNLOCK_PI, 0, nullptr, nullptr, 0)));
}

int SysFutexWaitBitset(uint32_t* word, uint32_t expected,
                       const struct timespec* deadline) {
  // Without FUTEX_CLOCK_REALTIME, FUTEX_WAIT_BITSET's timeout is an absolute
  // CLOCK_MONOTONIC time.
  return static_cast<int>(
      Result(syscall(SYS_futex, word, FUTEX_WAIT_BITSET, expected, deadline,
                     nullptr, FUTEX_BITSET_MATCH_ANY)));
}

int SysFutexWake(uint32_t* word, int max_waiters) {
  return static_cast<int>(Result(
      syscall(SYS_futex, word, FUTEX_WAKE, max_waiters, nullptr, nullptr, 0)));
}

int SysGetRobustList(void** head, size_t* length_bytes) {
  return static_cast<int>(
      Result(syscall(SYS_get_robust_list, 0, head, length_bytes)));
}

int SysSetRobustList(void* head, size_t length_bytes) {
  return static_cast<int>(
      Result(syscall(SYS_set_robust_list, head, length_bytes)));
}

int SysSchedGetScheduler() {
  return static_cast<int>(Result(syscall(SYS_sched_getscheduler, 0)));
}

int SysSchedGetParam(struct sched_param* param) {
  return static_cast<int>(Result(syscall(SYS_sched_getparam, 0, param)));
}

int SysSchedSetScheduler(int policy, const struct sched_param* param) {
  return static_cast<int>(
      Result(syscall(SYS_sched_setscheduler, 0, policy, param)));
}

}  // namespace internal
}  // namespace lockless
