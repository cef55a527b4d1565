#include "testing/chaos_processes.h"

#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "absl/strings/str_format.h"

namespace lockless {
namespace testing {
namespace {

std::string ErrnoText(const char* what) {
  return absl::StrFormat("%s: %s", what, std::strerror(errno));
}

// In a fresh child: die with the parent (`parent` is its pid before the fork;
// if it already died, getppid() no longer names it).
void DieWithParent(pid_t parent) {
  if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent) _exit(120);
}

void SleepOneMillisecond() {
  const timespec pause = {0, 1'000'000};
  nanosleep(&pause, nullptr);
}

}  // namespace

std::string DescribeWaitStatus(int wait_status) {
  if (WIFEXITED(wait_status)) {
    return absl::StrFormat("exit %d", WEXITSTATUS(wait_status));
  }
  if (WIFSIGNALED(wait_status)) {
    return absl::StrFormat("killed by signal %d (%s)", WTERMSIG(wait_status),
                           strsignal(WTERMSIG(wait_status)));
  }
  return absl::StrFormat("wait status 0x%x", wait_status);
}

namespace {

// The keeper's body: waits for SIGTERM (its parent-death signal), then
// cleans up and takes the whole group down. The signal is blocked and taken
// with sigwait, so the cleanup runs as ordinary code, not in a handler.
[[noreturn]] void Keep(pid_t parent,
                       const std::function<void()>& on_supervisor_death) {
  setpgid(0, 0);
  sigset_t term;
  sigemptyset(&term);
  sigaddset(&term, SIGTERM);
  sigprocmask(SIG_BLOCK, &term, nullptr);
  if (prctl(PR_SET_PDEATHSIG, SIGTERM) == 0 && getppid() == parent) {
    int signal = 0;
    while (sigwait(&term, &signal) != 0) {
    }
  }
  if (on_supervisor_death) on_supervisor_death();
  kill(0, SIGKILL);
  _exit(0);
}

}  // namespace

absl::StatusOr<std::unique_ptr<ChildGroup>> ChildGroup::Create(
    const std::function<void()>& on_supervisor_death) {
  const pid_t parent = getpid();
  const pid_t keeper = fork();
  if (keeper < 0) return absl::InternalError(ErrnoText("fork"));
  if (keeper == 0) Keep(parent, on_supervisor_death);
  // Both sides set the group, so it exists before either continues.
  if (setpgid(keeper, keeper) != 0 && errno != EACCES) {
    const std::string error = ErrnoText("setpgid");
    kill(keeper, SIGKILL);
    waitpid(keeper, nullptr, 0);
    return absl::InternalError(error);
  }
  return std::unique_ptr<ChildGroup>(new ChildGroup(keeper));
}

ChildGroup::~ChildGroup() { KillAll(); }

absl::StatusOr<pid_t> ChildGroup::Spawn(const std::function<int()>& body) {
  if (killed_) return absl::FailedPreconditionError("group already killed");
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid < 0) return absl::InternalError(ErrnoText("fork"));
  if (pid == 0) {
    if (setpgid(0, keeper_) != 0) _exit(121);
    DieWithParent(parent);
    _exit(body());
  }
  // Also from this side: a KillAll right after Spawn must find it in the
  // group. EACCES: the child already set it itself.
  if (setpgid(pid, keeper_) != 0 && errno != EACCES && errno != ESRCH) {
    const std::string error = ErrnoText("setpgid");
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
    return absl::InternalError(error);
  }
  return pid;
}

std::vector<ChildExit> ChildGroup::Reap() {
  std::vector<ChildExit> exits;
  while (true) {
    ChildExit exit;
    exit.pid = waitpid(-keeper_, &exit.wait_status, WNOHANG);
    if (exit.pid <= 0) break;
    if (exit.pid != keeper_) exits.push_back(exit);
  }
  return exits;
}

absl::StatusOr<int> ChildGroup::WaitFor(pid_t pid,
                                        std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    int status = 0;
    const pid_t got = waitpid(pid, &status, WNOHANG);
    if (got == pid) return status;
    if (got < 0 && errno != EINTR) {
      return absl::InternalError(ErrnoText("waitpid"));
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      return absl::DeadlineExceededError(absl::StrFormat(
          "process %d still running after %d ms", pid, timeout.count()));
    }
    SleepOneMillisecond();
  }
}

std::vector<ChildExit> ChildGroup::KillAll(std::chrono::milliseconds timeout) {
  std::vector<ChildExit> exits;
  if (!killed_) {
    killed_ = true;
    kill(-keeper_, SIGKILL);
  }
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    ChildExit exit;
    exit.pid = waitpid(-keeper_, &exit.wait_status, WNOHANG);
    if (exit.pid > 0) {
      if (exit.pid != keeper_) exits.push_back(exit);
      continue;
    }
    if (exit.pid < 0 && errno == ECHILD) break;  // All reaped.
    if (std::chrono::steady_clock::now() >= deadline) {
      std::fprintf(stderr,
                   "ChildGroup: children of group %d still not reaped "
                   "after %lld ms\n",
                   keeper_, static_cast<long long>(timeout.count()));
      break;
    }
    SleepOneMillisecond();
  }
  return exits;
}

}  // namespace testing
}  // namespace lockless
