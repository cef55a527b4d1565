// The wrappers around the signal system calls wake-ups need:
// rt_tgsigqueueinfo(2) to queue a real-time signal to one exact thread, the
// pid-namespace identity that says where a thread id means something, and the
// process-wide "ignore unless handled" disposition of the wake-up signal.
#ifndef LOCKLESS_IPC_INTERNAL_THREAD_SIGNAL_H_
#define LOCKLESS_IPC_INTERNAL_THREAD_SIGNAL_H_

#include <sys/types.h>

#include <cstdint>

namespace lockless {
namespace internal {

// Outcome of SendQueuedSignal.
enum class QueueSignalResult {
  kQueued,          // The signal is queued to the thread.
  kGone,            // ESRCH: no such thread (it exited).
  kNotPermitted,    // EPERM: not ours to signal.
  kQuotaExhausted,  // EAGAIN: the receiving user's RLIMIT_SIGPENDING is full.
  kOtherError,      // Anything else (EINVAL: bad signal number).
};

// Queues `signal` (with si_code SI_QUEUE and the sender's identity
// `sender_pid`/`sender_uid`, which the receiver sees in its siginfo) to thread
// `tid` of process `pid`, both as numbered in the caller's pid namespace.
// Exactly one system call (callers cache getpid()/getuid());
// async-signal-safe.
QueueSignalResult SendQueuedSignal(pid_t pid, pid_t tid, int signal,
                                   pid_t sender_pid, uid_t sender_uid);

// Whether thread `tid` of process `pid` (numbered in the caller's pid
// namespace) exists: tgkill with signal 0, which checks existence and
// permission and sends nothing. Only ESRCH means "no such thread": a thread
// we may not signal (EPERM) exists. One system call; async-signal-safe.
// /proc alone cannot tell: mounted with hidepid=2 it hides other users'
// live processes (ENOENT).
bool ThreadMayExist(pid_t pid, pid_t tid);

// The calling process's pid namespace: the inode number of
// /proc/self/ns/pid, or 0 if it cannot be read (no /proc). Two processes
// with the same non-zero value number threads the same way. One stat(2).
uint64_t PidNamespaceId();

// Makes `signal`'s process-wide disposition SIG_IGN if it is SIG_DFL (a
// program's own handler, or SIG_IGN, is left alone). An ignored signal that
// is blocked is still queued and reaches a signalfd; one that arrives
// unblocked is discarded instead of killing the process. Two system calls.
void IgnoreSignalIfDefault(int signal);

}  // namespace internal
}  // namespace lockless

#endif  // LOCKLESS_IPC_INTERNAL_THREAD_SIGNAL_H_
