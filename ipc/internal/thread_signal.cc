#include "ipc/internal/thread_signal.h"

#include <errno.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstring>

namespace lockless {
namespace internal {

QueueSignalResult SendQueuedSignal(pid_t pid, pid_t tid, int signal,
                                   pid_t sender_pid, uid_t sender_uid) {
  siginfo_t info;
  std::memset(&info, 0, sizeof(info));
  info.si_signo = signal;
  // SI_QUEUE: what sigqueue(3) uses; the kernel only lets a process send
  // negative si_code values to other processes.
  info.si_code = SI_QUEUE;
  info.si_pid = sender_pid;
  info.si_uid = sender_uid;
  if (syscall(SYS_rt_tgsigqueueinfo, pid, tid, signal, &info) == 0) {
    return QueueSignalResult::kQueued;
  }
  switch (errno) {
    case ESRCH:
      return QueueSignalResult::kGone;
    case EPERM:
      return QueueSignalResult::kNotPermitted;
    case EAGAIN:
      return QueueSignalResult::kQuotaExhausted;
    default:
      return QueueSignalResult::kOtherError;
  }
}

bool ThreadMayExist(pid_t pid, pid_t tid) {
  return syscall(SYS_tgkill, pid, tid, 0) == 0 || errno != ESRCH;
}

uint64_t PidNamespaceId() {
  struct stat st;
  if (stat("/proc/self/ns/pid", &st) != 0) return 0;
  return static_cast<uint64_t>(st.st_ino);
}

void IgnoreSignalIfDefault(int signal) {
  struct sigaction current;
  if (sigaction(signal, nullptr, &current) != 0) return;
  if ((current.sa_flags & SA_SIGINFO) != 0 || current.sa_handler != SIG_DFL) {
    return;  // The program's own choice.
  }
  struct sigaction ignore;
  std::memset(&ignore, 0, sizeof(ignore));
  ignore.sa_handler = SIG_IGN;
  sigemptyset(&ignore.sa_mask);
  // Between the two calls another thread may install a handler; we would then
  // replace it. Programs that install their own handler do so at startup,
  // before making watchers (documented in lockless_queue.h).
  sigaction(signal, &ignore, nullptr);
}

}  // namespace internal
}  // namespace lockless
