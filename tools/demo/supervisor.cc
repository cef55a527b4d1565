#include "tools/demo/supervisor.h"

#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/str_format.h"
#include "tools/demo/clock.h"
#include "tools/demo/output.h"

namespace lockless {
namespace demo {
namespace {

std::deque<Child> g_children;  // push_back keeps Child* valid
std::string g_channel_name;    // empty: nothing to remove
ChannelOptions g_channel_options;
volatile sig_atomic_t g_interrupted = 0;

void OnInterrupt(int) { g_interrupted = 1; }

// Child setup: die with the parent, never run the parent's atexit handlers.
void BecomeChild() {
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  signal(SIGINT, SIG_DFL);
  signal(SIGTERM, SIG_DFL);
  signal(SIGHUP, SIG_DFL);
}

}  // namespace

Child* Spawn(const std::string& name, const std::function<int()>& body) {
  const pid_t pid = fork();
  if (pid < 0) {
    Event("parent", absl::StrFormat("ERROR fork: %s", strerror(errno)));
    return nullptr;
  }
  if (pid == 0) {
    BecomeChild();
    int rc = body();
    _exit(rc);
  }
  g_children.push_back(Child{name, pid, true, 0});
  return &g_children.back();
}

std::deque<Child>& Children() { return g_children; }

Child* FindChild(const std::string& name) {
  for (Child& child : g_children) {
    if (child.name == name) return &child;
  }
  return nullptr;
}

bool Reap(Child* child, bool block) {
  if (!child->alive) return true;
  const pid_t r = waitpid(child->pid, &child->status, block ? 0 : WNOHANG);
  if (r == child->pid) {
    child->alive = false;
    return true;
  }
  return false;
}

bool ReapWithTimeout(Child* child, int64_t timeout_ns) {
  const int64_t end = NowNs() + timeout_ns;
  while (!Reap(child, false)) {
    if (NowNs() > end) return false;
    SleepNs(2000000);
  }
  return true;
}

std::string UnexpectedDeath() {
  for (Child& child : g_children) {
    if (!child.alive) continue;
    if (Reap(&child, false)) {
      return absl::StrFormat("%s (pid %d) %s", child.name, child.pid,
                             DescribeStatus(child.status));
    }
  }
  return "";
}

bool WaitFor(const std::atomic<int32_t>& flag, const std::atomic<int32_t>* fail,
             const std::string& what, std::string* error) {
  const int64_t end = NowNs() + 5000000000LL;
  while (flag.load(std::memory_order_acquire) == 0) {
    if (fail != nullptr && fail->load(std::memory_order_acquire) != 0) {
      *error = what + " failed to set up";
      return false;
    }
    const std::string death = UnexpectedDeath();
    if (!death.empty()) {
      *error = death + " while waiting for " + what;
      return false;
    }
    if (g_interrupted) {
      *error = "interrupted";
      return false;
    }
    if (NowNs() > end) {
      *error = "timed out waiting for " + what;
      return false;
    }
    SleepNs(1000000);
  }
  return true;
}

std::string DescribeStatus(int status) {
  if (WIFEXITED(status)) {
    return absl::StrFormat("exited with code %d", WEXITSTATUS(status));
  }
  if (WIFSIGNALED(status)) {
    return absl::StrFormat("killed by signal %d (%s)", WTERMSIG(status),
                           strsignal(WTERMSIG(status)));
  }
  return "stopped?";
}

bool PinApart(pid_t other, cpu_set_t* saved) {
  if (sched_getaffinity(0, sizeof(*saved), saved) != 0) return false;
  int cpus[2];
  int found = 0;
  for (int cpu = 0; cpu < CPU_SETSIZE && found < 2; ++cpu) {
    if (CPU_ISSET(cpu, saved)) cpus[found++] = cpu;
  }
  if (found < 2) return false;
  cpu_set_t mine, theirs;
  CPU_ZERO(&mine);
  CPU_ZERO(&theirs);
  CPU_SET(cpus[0], &mine);
  CPU_SET(cpus[1], &theirs);
  if (sched_setaffinity(other, sizeof(theirs), &theirs) != 0) return false;
  if (sched_setaffinity(0, sizeof(mine), &mine) != 0) return false;
  return true;
}

void InstallInterruptHandlers() {
  struct sigaction action;
  memset(&action, 0, sizeof(action));
  action.sa_handler = OnInterrupt;
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);
  sigaction(SIGHUP, &action, nullptr);
  signal(SIGPIPE, SIG_IGN);
}

bool Interrupted() { return g_interrupted != 0; }

void RemoveChannelOnExit(const std::string& name,
                         const ChannelOptions& options) {
  g_channel_name = name;
  g_channel_options = options;
  atexit(CleanUp);
}

void CleanUp() {
  for (Child& child : g_children) {
    if (!child.alive) continue;
    kill(child.pid, SIGKILL);
    waitpid(child.pid, &child.status, 0);
    child.alive = false;
  }
  if (!g_channel_name.empty()) {
    const absl::Status status =
        RemoveChannel(g_channel_name, g_channel_options);
    if (!status.ok() && !absl::IsNotFound(status)) {
      Out("parent: could not remove the channel: " + status.ToString() + "\n");
    }
    g_channel_name.clear();
  }
}

}  // namespace demo
}  // namespace lockless
