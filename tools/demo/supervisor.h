// The parent's process supervision: forking the demo's children, noticing
// when one dies early, reaping them, pinning the killer apart from its victim,
// and cleaning up (children and channel) however the run ends.
//
// Contract:
//   - Parent only, single-threaded. The child list is process-wide state of
//     this file; a Child* returned by Spawn or FindChild stays valid for the
//     life of the process.
//   - Children die with the parent (PR_SET_PDEATHSIG), take the default
//     action for SIGINT/SIGTERM/SIGHUP again, and leave with _exit(): they
//     run no atexit handler and flush no inherited stdio buffer.
//   - After RemoveChannelOnExit, CleanUp kills (SIGKILL) and reaps every live
//     child and removes the channel. It is idempotent and runs on every way
//     out: explicitly, from a CleanupOnExit's destructor, from atexit (any
//     exit()), and after SIGINT/SIGTERM/SIGHUP, which only set Interrupted()
//     for the run's loop to notice. Only SIGKILL of the parent skips it (see
//     channel_files.h for what collects such leftovers).
#ifndef LOCKLESS_TOOLS_DEMO_SUPERVISOR_H_
#define LOCKLESS_TOOLS_DEMO_SUPERVISOR_H_

#include <sched.h>
#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <string>

#include "ipc/shm_channel.h"

namespace lockless {
namespace demo {

struct Child {
  std::string name;
  pid_t pid = -1;
  bool alive = false;
  int status = 0;  // waitpid status, once !alive
};

// Forks a child that runs `body` and _exit()s with its return value. Prints
// an event and returns nullptr if fork fails.
Child* Spawn(const std::string& name, const std::function<int()>& body);

// Every child spawned so far, in spawn order.
std::deque<Child>& Children();
// The child called `name`, or nullptr.
Child* FindChild(const std::string& name);

// Reaps `child` if it has exited (waiting for it if `block`). True if it is
// (now) dead.
bool Reap(Child* child, bool block);
// Polls every 2 ms for up to `timeout_ns` for `child` to exit.
bool ReapWithTimeout(Child* child, int64_t timeout_ns);
// "P2 (pid 123) exited with code 3" for a child found dead, reaping it; empty
// if every child still alive is.
std::string UnexpectedDeath();
// Waits up to 5 s for `flag` (set by a child), polling every 1 ms. False with
// `*error` saying why if `fail` is set, a child died, the run was interrupted
// or time ran out.
bool WaitFor(const std::atomic<int32_t>& flag, const std::atomic<int32_t>* fail,
             const std::string& what, std::string* error);
// "exited with code N" / "killed by signal N (Name)".
std::string DescribeStatus(int status);

// Pins the calling process to one allowed CPU and `other` to another. False
// (nothing changed) with fewer than two CPUs. `*saved` gets our old mask.
bool PinApart(pid_t other, cpu_set_t* saved);

// SIGINT, SIGTERM and SIGHUP set Interrupted(); SIGPIPE is ignored (output to
// a closed pipe, `demo | head`, must not kill us before cleanup).
void InstallInterruptHandlers();
bool Interrupted();

// From now on CleanUp removes channel `name` (in options.directory), and
// CleanUp runs at exit().
void RemoveChannelOnExit(const std::string& name,
                         const ChannelOptions& options);
void CleanUp();

// Runs CleanUp when it goes out of scope.
struct CleanupOnExit {
  CleanupOnExit() = default;
  CleanupOnExit(const CleanupOnExit&) = delete;
  CleanupOnExit& operator=(const CleanupOnExit&) = delete;
  ~CleanupOnExit() { CleanUp(); }
};

}  // namespace demo
}  // namespace lockless

#endif  // LOCKLESS_TOOLS_DEMO_SUPERVISOR_H_
