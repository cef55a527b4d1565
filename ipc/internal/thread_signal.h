// The one wrapper around rt_tgsigqueueinfo(2): queue a real-time signal to
// one exact thread of one exact process.
#ifndef LOCKLESS_IPC_INTERNAL_THREAD_SIGNAL_H_
#define LOCKLESS_IPC_INTERNAL_THREAD_SIGNAL_H_

#include <sys/types.h>

namespace lockless {
namespace internal {

// Queues `signal` (with si_code SI_QUEUE and the sender's identity
// `sender_pid`/`sender_uid`, which the receiver sees in its siginfo) to thread
// `tid` of process `pid`. Returns false if the thread is gone (ESRCH) or not
// ours to signal (EPERM), true otherwise. Exactly one system call (callers
// cache getpid()/getuid()); async-signal-safe.
bool SendQueuedSignal(pid_t pid, pid_t tid, int signal, pid_t sender_pid,
                      uid_t sender_uid);

}  // namespace internal
}  // namespace lockless

#endif  // LOCKLESS_IPC_INTERNAL_THREAD_SIGNAL_H_
