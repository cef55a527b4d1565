// GuardSigbus: runs a read of a shared file mapping so that SIGBUS (the file
// was truncated under the mapping, or a page of it cannot be allocated)
// makes the call return false instead of killing the process.
//
// Use it only around reads that copy from the mapping into memory that
// already exists (locals, pre-sized buffers): the function is left by
// siglongjmp, so it must not construct, allocate or lock anything (no
// destructor may be skipped).
//
// Thread-safety: the guard state is per thread; concurrent guarded calls on
// several threads are fine. The process-wide handler is installed once and
// is transparent to faults outside a guarded call (it restores the previous
// disposition, and the faulting access runs again with it). Not RT-safe on
// the first call (sigaction); afterwards two thread-local stores and a
// sigsetjmp without saving the mask (no system call) per call.
#ifndef LOCKLESS_IPC_INTERNAL_SIGBUS_GUARD_H_
#define LOCKLESS_IPC_INTERNAL_SIGBUS_GUARD_H_

#include <setjmp.h>

#include <atomic>

namespace lockless {
namespace internal {

// This thread's armed jump buffer, or nullptr. Constant-initialised, so no
// TLS wrapper runs in the handler.
extern thread_local sigjmp_buf* t_sigbus_jump;

void InstallSigbusHandlerOnce();
// Unblocks SIGBUS for this thread (blocked while its handler ran; the jump
// out of the handler does not restore the mask, to keep sigsetjmp free of
// system calls).
void UnblockSigbus();

// Runs `function` with SIGBUS guarded. False if it was interrupted by SIGBUS.
template <typename Function>
bool GuardSigbus(Function&& function) {
  InstallSigbusHandlerOnce();
  sigjmp_buf jump;
  if (sigsetjmp(jump, /*savemask=*/0) != 0) {
    UnblockSigbus();
    return false;  // Already disarmed by the handler.
  }
  t_sigbus_jump = &jump;
  // Compiler barrier: keep the reads inside the armed window.
  std::atomic_signal_fence(std::memory_order_seq_cst);
  function();
  std::atomic_signal_fence(std::memory_order_seq_cst);
  t_sigbus_jump = nullptr;
  return true;
}

}  // namespace internal
}  // namespace lockless

#endif  // LOCKLESS_IPC_INTERNAL_SIGBUS_GUARD_H_
