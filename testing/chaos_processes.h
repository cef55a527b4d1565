// ChildGroup: forks test children into a process group of their own, so that
// all of them can be SIGKILLed at once however the test ends. Test-only.
//
// The group is led by a "keeper" child that only waits, so the group
// outlives any of the workers (a process may only join a group that still
// has a member). Every worker gets PR_SET_PDEATHSIG = SIGKILL, so a
// supervisor that crashes or is killed by a test timeout takes its children
// with it; the keeper gets SIGTERM instead, runs the group's cleanup (e.g.
// removing a channel file the dead supervisor can no longer remove) and kills
// the group. The destructor kills and reaps the whole group otherwise.
// Children leave only through _exit (never through the test framework's or
// the C library's exit path, which would flush buffers and run destructors
// that belong to the parent).
//
// Thread-safety: use from one thread (the one that created the group: it is
// the parent whose death PDEATHSIG watches). Not for production code.
#ifndef LOCKLESS_TESTING_CHAOS_PROCESSES_H_
#define LOCKLESS_TESTING_CHAOS_PROCESSES_H_

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace lockless {
namespace testing {

struct ChildExit {
  pid_t pid = 0;
  int wait_status = 0;  // As from waitpid.
};

// "exit 3", "killed by SIGKILL (Killed)", ...
std::string DescribeWaitStatus(int wait_status);

class ChildGroup {
 public:
  // `on_supervisor_death` runs in the keeper if the calling thread dies
  // before the group is killed (not on a normal KillAll).
  static absl::StatusOr<std::unique_ptr<ChildGroup>> Create(
      const std::function<void()>& on_supervisor_death = nullptr);
  // KillAll().
  ~ChildGroup();
  ChildGroup(const ChildGroup&) = delete;
  ChildGroup& operator=(const ChildGroup&) = delete;

  // Forks a child in the group that runs `body` and _exits with its result.
  absl::StatusOr<pid_t> Spawn(const std::function<int()>& body);

  // Children of the group that ended since the last call. Never blocks.
  std::vector<ChildExit> Reap();

  // Waits until child `pid` ended, for at most `timeout` (polling waitpid
  // every millisecond: the wait is bounded, the ordering comes from waitpid).
  // Its wait status, or DeadlineExceeded (the child is left running).
  absl::StatusOr<int> WaitFor(pid_t pid, std::chrono::milliseconds timeout);

  // SIGKILLs every process of the group and reaps them (for at most
  // `timeout`). Returns the workers reaped here.
  std::vector<ChildExit> KillAll(
      std::chrono::milliseconds timeout = std::chrono::seconds(10));

  pid_t pgid() const { return keeper_; }

 private:
  explicit ChildGroup(pid_t keeper) : keeper_(keeper) {}

  pid_t keeper_;  // Leads the group; its pid is the group id.
  bool killed_ = false;
};

}  // namespace testing
}  // namespace lockless

#endif  // LOCKLESS_TESTING_CHAOS_PROCESSES_H_
