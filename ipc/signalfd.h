// SignalFd: receive signals (e.g. the queue's wake-up signal) as readable
// events on a file descriptor, for an epoll/poll event loop.
//
// Creating one blocks the given signals in the calling thread (a signalfd
// only sees signals that are blocked; otherwise they would be delivered the
// usual way) and restores the thread's previous mask on destruction. The
// descriptor is non-blocking and close-on-exec.
//
// Destruction discards signals still pending, then unblocks. Destroy it only
// after whatever sends these signals to this thread has stopped (for wake-ups:
// after the Watcher is gone), or a late signal gets its default action, which
// for real-time signals terminates the process.
//
// Thread-safety: create, use and destroy on one thread (signal masks are per
// thread). Not RT-safe (syscalls).
#ifndef LOCKLESS_IPC_SIGNALFD_H_
#define LOCKLESS_IPC_SIGNALFD_H_

#include <signal.h>
#include <sys/signalfd.h>

#include <initializer_list>
#include <optional>

#include "absl/status/statusor.h"

namespace lockless {

class SignalFd {
 public:
  // Errors: InvalidArgument for a bad signal number, or the errno of
  // signalfd(2)/pthread_sigmask(3) as an absl::Status.
  static absl::StatusOr<SignalFd> Create(std::initializer_list<int> signals);

  SignalFd(SignalFd&& other) noexcept;
  SignalFd& operator=(SignalFd&& other) = delete;
  SignalFd(const SignalFd&) = delete;
  SignalFd& operator=(const SignalFd&) = delete;
  ~SignalFd();

  // The descriptor to poll for readability.
  int fd() const { return fd_; }

  // Reads one pending signal, or nullopt if none is pending (EAGAIN).
  std::optional<signalfd_siginfo> Read();

  // Discards every pending signal, many per system call, and returns how
  // many there were. For wake-ups, where only "something new" matters: a
  // sender that wakes after every message can queue thousands.
  size_t Drain();

 private:
  SignalFd(int fd, const sigset_t& watched, const sigset_t& previous_mask)
      : fd_(fd), watched_(watched), previous_mask_(previous_mask) {}

  int fd_ = -1;
  sigset_t watched_;
  sigset_t previous_mask_;
};

}  // namespace lockless

#endif  // LOCKLESS_IPC_SIGNALFD_H_
