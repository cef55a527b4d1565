#include "ipc/signalfd.h"

#include <errno.h>
#include <pthread.h>
#include <unistd.h>

#include <cstring>
#include <utility>

#include "absl/strings/str_format.h"
#include "index/internal/check.h"
#include "ipc/internal/errno_status.h"

namespace lockless {

absl::StatusOr<SignalFd> SignalFd::Create(std::initializer_list<int> signals) {
  sigset_t watched;
  sigemptyset(&watched);
  for (int signal : signals) {
    if (sigaddset(&watched, signal) != 0) {
      return absl::InvalidArgumentError(
          absl::StrFormat("%d is not a valid signal number", signal));
    }
  }
  sigset_t previous;
  if (int error = pthread_sigmask(SIG_BLOCK, &watched, &previous);
      error != 0) {
    return internal::ErrnoStatus(error, "pthread_sigmask(SIG_BLOCK)");
  }
  const int fd = signalfd(-1, &watched, SFD_NONBLOCK | SFD_CLOEXEC);
  if (fd < 0) {
    const int error = errno;
    pthread_sigmask(SIG_SETMASK, &previous, nullptr);
    return internal::ErrnoStatus(error, "signalfd");
  }
  return SignalFd(fd, watched, previous);
}

SignalFd::SignalFd(SignalFd&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)),
      watched_(other.watched_),
      previous_mask_(other.previous_mask_) {}

SignalFd::~SignalFd() {
  if (fd_ < 0) return;
  // Discard what is still pending: once unblocked, a pending real-time
  // signal would be delivered with its default action (terminate).
  Drain();
  close(fd_);
  // Unblock only what we blocked and was not blocked before us.
  sigset_t to_unblock;
  sigemptyset(&to_unblock);
  for (int signal = 1; signal < NSIG; ++signal) {
    if (sigismember(&watched_, signal) == 1 &&
        sigismember(&previous_mask_, signal) == 0) {
      sigaddset(&to_unblock, signal);
    }
  }
  pthread_sigmask(SIG_UNBLOCK, &to_unblock, nullptr);
}

std::optional<signalfd_siginfo> SignalFd::Read() {
  signalfd_siginfo info;
  while (true) {
    const ssize_t n = read(fd_, &info, sizeof(info));
    if (n == static_cast<ssize_t>(sizeof(info))) return info;
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) return std::nullopt;
    // A signalfd returns whole records or an error; anything else is a bug.
    LOCKLESS_CHECK(false, "signalfd read returned a partial record or error");
  }
}

size_t SignalFd::Drain() {
  signalfd_siginfo batch[64];
  size_t drained = 0;
  while (true) {
    const ssize_t n = read(fd_, batch, sizeof(batch));
    if (n > 0) {
      drained += static_cast<size_t>(n) / sizeof(batch[0]);
      // A short batch emptied the queue: skip the read that would only say
      // EAGAIN. (A signal arriving now leaves the fd readable for next time.)
      if (static_cast<size_t>(n) < sizeof(batch)) return drained;
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) return drained;
    LOCKLESS_CHECK(false, "signalfd read failed");
  }
}

}  // namespace lockless
