#include "ipc/internal/sigbus_guard.h"

#include <signal.h>

#include <cstring>
#include <mutex>

namespace lockless {
namespace internal {
namespace {

// States of the faulting thread:
//   1. unarmed (t_sigbus_jump == nullptr): a SIGBUS here is not ours; the
//      handler restores the previous disposition and returns, so the
//      faulting instruction runs again and gets the original behaviour
//      (normally: the process dies of SIGBUS, as it would without us).
//   2. armed: the handler disarms and siglongjmps to GuardSigbus, which
//      unblocks SIGBUS and returns false.
// The handler only reads/writes a thread-local pointer, calls sigaction and
// siglongjmp: async-signal-safe.
struct sigaction g_previous_sigbus_action;

void OnSigbus(int /*signal*/, siginfo_t* /*info*/, void* /*context*/) {
  sigjmp_buf* const jump = t_sigbus_jump;
  if (jump != nullptr) {
    t_sigbus_jump = nullptr;
    siglongjmp(*jump, 1);
  }
  sigaction(SIGBUS, &g_previous_sigbus_action, nullptr);
}

}  // namespace

thread_local sigjmp_buf* t_sigbus_jump = nullptr;

void InstallSigbusHandlerOnce() {
  static std::once_flag once;
  std::call_once(once, [] {
    struct sigaction action;
    std::memset(&action, 0, sizeof(action));
    action.sa_sigaction = &OnSigbus;
    action.sa_flags = SA_SIGINFO;
    sigemptyset(&action.sa_mask);
    sigaction(SIGBUS, &action, &g_previous_sigbus_action);
  });
}

void UnblockSigbus() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGBUS);
  pthread_sigmask(SIG_UNBLOCK, &set, nullptr);
}

}  // namespace internal
}  // namespace lockless
