// SignalFd: receive signals (e.g. the queue's wake-up signal) as readable
// events on a file descriptor, for an epoll/poll event loop.
//
// Creating one blocks the given signals in the calling thread (a signalfd
// only sees signals that are blocked; otherwise they would be delivered the
// usual way) and restores the thread's previous mask on destruction. The
// descriptor is non-blocking and close-on-exec.
//
// Destruction discards signals still pending, then unblocks. A signal that
// arrives after that gets the process's disposition: for the queue's
// wake-up signal, MakeWatcher made it SIG_IGN (unless the program installed
// its own handler), so a late wake-up is discarded. For any other signal
// whose default action terminates, destroy the SignalFd only after whatever
// sends it to this thread has stopped. Make a replacement SignalFd only
// after destroying the old one: the old one's destructor unblocks.
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
