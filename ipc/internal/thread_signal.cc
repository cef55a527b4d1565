#include "ipc/internal/thread_signal.h"

#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstring>

namespace lockless {
namespace internal {

bool SendQueuedSignal(pid_t pid, pid_t tid, int signal, pid_t sender_pid,
                      uid_t sender_uid) {
  siginfo_t info;
  std::memset(&info, 0, sizeof(info));
  info.si_signo = signal;
  // SI_QUEUE: what sigqueue(3) uses; the kernel only lets a process send
  // negative si_code values to other processes.
  info.si_code = SI_QUEUE;
  info.si_pid = sender_pid;
  info.si_uid = sender_uid;
  return syscall(SYS_rt_tgsigqueueinfo, pid, tid, signal, &info) == 0;
}

}  // namespace internal
}  // namespace lockless
