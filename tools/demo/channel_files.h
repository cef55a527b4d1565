// The demo's channel files: naming a run's channel, marking it as in use by
// a live run, and collecting the files of runs that were SIGKILLed (the only
// way to skip the supervisor's cleanup).
//
// Contract: parent only, before the children start. Every run holds a shared
// flock(2) on its channel file for its lifetime (inherited by its children;
// released by the kernel however the run ends). Locks work across pid
// namespaces, unlike pids: a Bazel sandbox gives every test the same small
// pids, so the pid alone neither names a run uniquely nor says whether it is
// alive. RemoveDeadRunsChannels removes only lockless_demo_* files of this
// user that nobody holds a lock on.
#ifndef LOCKLESS_TOOLS_DEMO_CHANNEL_FILES_H_
#define LOCKLESS_TOOLS_DEMO_CHANNEL_FILES_H_

#include <string>

#include "ipc/shm_channel.h"

namespace lockless {
namespace demo {

// "lockless_demo_<pid>_<random 24-bit hex tag>": pids repeat across pid
// namespaces (sandboxes), the tag keeps names apart.
std::string NewRunChannelName();

// Takes the run's shared lock on channel `name`'s file in
// options.directory (empty: DefaultChannelDirectory()). The descriptor is
// kept open until exit; -1 if the file could not be opened (then the run is
// not protected from a concurrent RemoveDeadRunsChannels, nothing else).
int LockChannelFile(const std::string& name, const ChannelOptions& options);

// Removes channels left by killed demo runs from options.directory (empty:
// DefaultChannelDirectory()): lockless_demo_* files of ours,
// older than 10 s (so a run between creating and locking its file is safe),
// that nobody holds a lock on. Returns how many were removed.
int RemoveDeadRunsChannels(const ChannelOptions& options);

}  // namespace demo
}  // namespace lockless

#endif  // LOCKLESS_TOOLS_DEMO_CHANNEL_FILES_H_
