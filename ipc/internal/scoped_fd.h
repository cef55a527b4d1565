// ScopedFd: closes a file descriptor when it goes out of scope.
#ifndef LOCKLESS_IPC_INTERNAL_SCOPED_FD_H_
#define LOCKLESS_IPC_INTERNAL_SCOPED_FD_H_

#include <unistd.h>

namespace lockless {
namespace internal {

class ScopedFd {
 public:
  explicit ScopedFd(int fd) : fd_(fd) {}
  ~ScopedFd() {
    if (fd_ >= 0) close(fd_);
  }
  ScopedFd(const ScopedFd&) = delete;
  ScopedFd& operator=(const ScopedFd&) = delete;

  int get() const { return fd_; }
  // Gives up ownership: the caller closes the descriptor.
  int release() {
    const int fd = fd_;
    fd_ = -1;
    return fd;
  }

 private:
  int fd_;
};

}  // namespace internal
}  // namespace lockless

#endif  // LOCKLESS_IPC_INTERNAL_SCOPED_FD_H_
