// The one wrapper around rt_tgsigqueueinfo(2): queue a real-time signal to
// one exact thread of one exact process.
#ifndef LOCKLESS_IPC_INTERNAL_THREAD_SIGNAL_H_
#define LOCKLESS_IPC_INTERNAL_THREAD_SIGNAL_H_

#include <sys/types.h>

namespace lockless {
namespace internal {

// Queues `signal` (with si_code SI_QUEUE, our pid and uid) to thread `tid` of
// process `pid`. Returns false if the thread is gone (ESRCH) or not ours to
// signal (EPERM), true otherwise. One system call; async-signal-safe.
bool SendQueuedSignal(pid_t pid, pid_t tid, int signal);

}  // namespace internal
}  // namespace lockless

#endif  // LOCKLESS_IPC_INTERNAL_THREAD_SIGNAL_H_
