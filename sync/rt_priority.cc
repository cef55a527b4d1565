#include "sync/rt_priority.h"

#include <sched.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "absl/strings/str_cat.h"
#include "sync/internal/syscalls.h"

namespace lockless {
namespace {

absl::Status ErrorFor(int negative_errno, const std::string& what) {
  const int error = -negative_errno;
  if (error == EPERM) {
    return absl::PermissionDeniedError(absl::StrCat(
        what,
        ": not permitted (EPERM). Real-time scheduling needs root or "
        "CAP_SYS_NICE, or RLIMIT_RTPRIO >= the priority (ulimit -r / rtprio "
        "in /etc/security/limits.conf); some sandboxes (e.g. Bazel's "
        "linux-sandbox) refuse it even to root"));
  }
  if (error == EINVAL) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": invalid policy or priority (EINVAL)"));
  }
  return absl::InternalError(absl::StrCat(what, ": ", std::strerror(error)));
}

bool IsRealTime(int policy) {
  const int base = policy & ~SCHED_RESET_ON_FORK;
  return base == SCHED_FIFO || base == SCHED_RR;
}

}  // namespace

absl::StatusOr<SchedulingState> CurrentScheduling() {
  const int policy = internal::SysSchedGetScheduler();
  if (policy < 0) return ErrorFor(policy, "sched_getscheduler");
  struct sched_param param;
  std::memset(&param, 0, sizeof(param));
  const int result = internal::SysSchedGetParam(&param);
  if (result < 0) return ErrorFor(result, "sched_getparam");
  SchedulingState state;
  state.policy = policy;
  state.priority = param.sched_priority;
  return state;
}

absl::Status SetFifoPriority(int priority) {
  // Linux's fixed SCHED_FIFO range (what sched_get_priority_min/max report),
  // checked here so a bad argument is InvalidArgument, not a syscall error.
  constexpr int min = 1;
  constexpr int max = 99;
  if (priority < min || priority > max) {
    return absl::InvalidArgumentError(
        absl::StrCat("SCHED_FIFO priority ", priority, " is outside [", min,
                     ", ", max, "]"));
  }
  struct sched_param param;
  std::memset(&param, 0, sizeof(param));
  param.sched_priority = priority;
  const int result = internal::SysSchedSetScheduler(SCHED_FIFO, &param);
  if (result < 0) {
    return ErrorFor(result,
                    absl::StrCat("setting SCHED_FIFO priority ", priority));
  }
  return absl::OkStatus();
}

absl::Status RestoreScheduling(const SchedulingState& state) {
  struct sched_param param;
  std::memset(&param, 0, sizeof(param));
  param.sched_priority = state.priority;
  const int result = internal::SysSchedSetScheduler(state.policy, &param);
  if (result < 0) {
    return ErrorFor(result, absl::StrCat("restoring scheduling policy ",
                                         state.policy, " priority ",
                                         state.priority));
  }
  return absl::OkStatus();
}

ScopedPriorityBoost::ScopedPriorityBoost(int priority) {
  absl::StatusOr<SchedulingState> current = CurrentScheduling();
  if (!current.ok()) {
    status_ = current.status();
    return;
  }
  saved_ = *current;
  if (IsRealTime(saved_.policy) && saved_.priority >= priority) return;
  status_ = SetFifoPriority(priority);
  boosted_ = status_.ok();
}

ScopedPriorityBoost::~ScopedPriorityBoost() {
  if (!boosted_) return;
  const absl::Status status = RestoreScheduling(saved_);
  if (!status.ok()) {
    const std::string message =
        absl::StrCat("ScopedPriorityBoost: ", status.ToString(), "\n");
    ssize_t ignored = ::write(STDERR_FILENO, message.data(), message.size());
    (void)ignored;
  }
}

}  // namespace lockless
