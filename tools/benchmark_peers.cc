#include "tools/benchmark_peers.h"

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <boost/interprocess/ipc/message_queue.hpp>
#include <cerrno>
#include <cstring>
#include <fstream>

#include "absl/strings/str_format.h"

namespace lockless {
namespace benchmark_tool {
namespace {

absl::Status ErrnoStatus(const char* what, int error) {
  return absl::UnavailableError(
      absl::StrFormat("%s: %s", what, std::strerror(error)));
}

void CloseIfOpen(int* fd) {
  if (*fd >= 0) close(*fd);
  *fd = -1;
}

// Unique per process and per measurement, so concurrent benchmark runs and
// consecutive measurements never meet at a name.
std::string UniqueName(const char* prefix) {
  static std::atomic<int> counter{0};
  return absl::StrFormat("%s_%d_%d", prefix, getpid(),
                         counter.fetch_add(1, std::memory_order_relaxed));
}

long ReadProcLimit(const char* path) {
  std::ifstream file(path);
  long value = -1;
  file >> value;
  return value;
}

}  // namespace

// ---------------------------------------------------------------- pipe

PipeTransport::~PipeTransport() {
  CloseIfOpen(&read_fd_);
  CloseIfOpen(&write_fd_);
}

absl::Status PipeTransport::Create(size_t message_bytes) {
  message_bytes_ = message_bytes;
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return ErrnoStatus("pipe2", errno);
  read_fd_ = fds[0];
  write_fd_ = fds[1];
  // Best effort: an unprivileged user is capped at fs/pipe-max-size; keep
  // whatever the kernel granted and report it.
  fcntl(write_fd_, F_SETPIPE_SZ, requested_pipe_bytes_);
  granted_pipe_bytes_ = fcntl(write_fd_, F_GETPIPE_SZ);
  return absl::OkStatus();
}

absl::Status PipeTransport::StartSender() {
  CloseIfOpen(&read_fd_);
  return absl::OkStatus();
}

absl::Status PipeTransport::StartReceiver() {
  // Without this the receiver would never see EOF if the sender died.
  CloseIfOpen(&write_fd_);
  return absl::OkStatus();
}

bool PipeTransport::Send(const void* message) {
  const char* bytes = static_cast<const char*>(message);
  size_t done = 0;
  while (done < message_bytes_) {
    const ssize_t n = write(write_fd_, bytes + done, message_bytes_ - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      error_ = absl::StrFormat("write: %s", std::strerror(errno));
      return false;
    }
    done += static_cast<size_t>(n);
  }
  return true;
}

bool PipeTransport::Receive(void* message) {
  char* bytes = static_cast<char*>(message);
  size_t done = 0;
  while (done < message_bytes_) {
    const ssize_t n = read(read_fd_, bytes + done, message_bytes_ - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      error_ = n == 0 ? "read: sender closed the pipe"
                      : absl::StrFormat("read: %s", std::strerror(errno));
      return false;
    }
    done += static_cast<size_t>(n);
  }
  return true;
}

std::string PipeTransport::settings() const {
  return absl::StrFormat("pipe buffer %d B (F_SETPIPE_SZ)",
                         granted_pipe_bytes_);
}

// ---------------------------------------------------------- unix dgram

UnixDgramTransport::~UnixDgramTransport() {
  CloseIfOpen(&send_fd_);
  CloseIfOpen(&receive_fd_);
}

absl::Status UnixDgramTransport::Create(size_t message_bytes) {
  message_bytes_ = message_bytes;
  int fds[2];
  if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, fds) != 0) {
    return ErrnoStatus("socketpair(AF_UNIX, SOCK_DGRAM)", errno);
  }
  send_fd_ = fds[0];
  receive_fd_ = fds[1];
  // The *FORCE variants ignore net.core.[rw]mem_max but need CAP_NET_ADMIN;
  // fall back to the capped ones.
  const int bytes = requested_buffer_bytes_;
  for (int fd : fds) {
    if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &bytes, sizeof(bytes)) !=
        0) {
      setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &bytes, sizeof(bytes));
    }
    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &bytes, sizeof(bytes)) !=
        0) {
      setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bytes, sizeof(bytes));
    }
  }
  socklen_t length = sizeof(granted_buffer_bytes_);
  getsockopt(send_fd_, SOL_SOCKET, SO_SNDBUF, &granted_buffer_bytes_, &length);
  return absl::OkStatus();
}

absl::Status UnixDgramTransport::StartSender() {
  CloseIfOpen(&receive_fd_);
  return absl::OkStatus();
}

absl::Status UnixDgramTransport::StartReceiver() {
  CloseIfOpen(&send_fd_);
  return absl::OkStatus();
}

bool UnixDgramTransport::Send(const void* message) {
  for (;;) {
    const ssize_t n = send(send_fd_, message, message_bytes_, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n == static_cast<ssize_t>(message_bytes_)) return true;
    error_ = absl::StrFormat("send: %s", std::strerror(errno));
    return false;
  }
}

bool UnixDgramTransport::Receive(void* message) {
  for (;;) {
    // MSG_TRUNC makes recv return the datagram's real length, so a message
    // larger than expected is reported instead of silently cut.
    const ssize_t n = recv(receive_fd_, message, message_bytes_, MSG_TRUNC);
    if (n < 0 && errno == EINTR) continue;
    if (n == static_cast<ssize_t>(message_bytes_)) return true;
    error_ = n < 0 ? absl::StrFormat("recv: %s", std::strerror(errno))
                   : absl::StrFormat("recv: got %d bytes", n);
    return false;
  }
}

std::string UnixDgramTransport::settings() const {
  return absl::StrFormat("SO_SNDBUF/SO_RCVBUF %d B, max_dgram_qlen %d",
                         granted_buffer_bytes_,
                         ReadProcLimit("/proc/sys/net/unix/max_dgram_qlen"));
}

// ------------------------------------------------------------ posix mq

PosixMqTransport::~PosixMqTransport() {
  if (queue_ != static_cast<mqd_t>(-1)) mq_close(queue_);
}

absl::Status PosixMqTransport::Create(size_t message_bytes) {
  message_bytes_ = message_bytes;
  // The kernel charges roughly depth * (message + ~100 B of bookkeeping)
  // against RLIMIT_MSGQUEUE (800 KiB by default). Raise it for this process;
  // raising the hard limit needs CAP_SYS_RESOURCE, so try the soft one alone
  // next.
  const rlim_t needed =
      static_cast<rlim_t>(requested_depth_) * (message_bytes + 128) + (1 << 20);
  rlimit limit;
  if (getrlimit(RLIMIT_MSGQUEUE, &limit) == 0 && limit.rlim_cur < needed) {
    rlimit raised = {needed, std::max(needed, limit.rlim_max)};
    if (setrlimit(RLIMIT_MSGQUEUE, &raised) != 0 &&
        limit.rlim_max > limit.rlim_cur) {
      raised = {std::min(needed, limit.rlim_max), limit.rlim_max};
      setrlimit(RLIMIT_MSGQUEUE, &raised);
    }
  }

  const std::string name = "/" + UniqueName("lockless_benchmark_mq");
  // An unprivileged user is capped at fs/mqueue/msg_max messages; retry with
  // that depth so only the message size can make this peer unavailable.
  const long msg_max = ReadProcLimit("/proc/sys/fs/mqueue/msg_max");
  for (long depth : {requested_depth_, std::min(requested_depth_, msg_max)}) {
    mq_attr attr = {};
    attr.mq_maxmsg = depth;
    attr.mq_msgsize = static_cast<long>(message_bytes);
    queue_ = mq_open(name.c_str(), O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0600,
                     &attr);
    if (queue_ != static_cast<mqd_t>(-1)) {
      granted_depth_ = depth;
      break;
    }
    if (errno != EINVAL || depth <= 0) break;
  }
  if (queue_ == static_cast<mqd_t>(-1)) {
    const int error = errno;
    const long msgsize_max = ReadProcLimit("/proc/sys/fs/mqueue/msgsize_max");
    if (error == EINVAL && static_cast<long>(message_bytes) > msgsize_max) {
      return absl::UnavailableError(absl::StrFormat(
          "mq_open: %d B > fs/mqueue/msgsize_max=%d, and the kernel refused "
          "the privileged limit (CAP_SYS_RESOURCE not effective here)",
          message_bytes, msgsize_max));
    }
    return ErrnoStatus("mq_open", error);
  }
  // The forked receiver inherits the descriptor; the name is not needed.
  mq_unlink(name.c_str());
  return absl::OkStatus();
}

bool PosixMqTransport::Send(const void* message) {
  for (;;) {
    if (mq_send(queue_, static_cast<const char*>(message), message_bytes_, 0) ==
        0) {
      return true;
    }
    if (errno == EINTR) continue;
    error_ = absl::StrFormat("mq_send: %s", std::strerror(errno));
    return false;
  }
}

bool PosixMqTransport::Receive(void* message) {
  for (;;) {
    const ssize_t n = mq_receive(queue_, static_cast<char*>(message),
                                 message_bytes_, nullptr);
    if (n < 0 && errno == EINTR) continue;
    if (n == static_cast<ssize_t>(message_bytes_)) return true;
    error_ = n < 0 ? absl::StrFormat("mq_receive: %s", std::strerror(errno))
                   : absl::StrFormat("mq_receive: got %d bytes", n);
    return false;
  }
}

std::string PosixMqTransport::settings() const {
  return absl::StrFormat("mq_maxmsg %d", granted_depth_);
}

// ------------------------------------------------------- boost mq

struct BoostMqTransport::Queue {
  Queue(const char* name, size_t depth, size_t message_bytes)
      : queue(boost::interprocess::create_only, name, depth, message_bytes) {}
  boost::interprocess::message_queue queue;
};

BoostMqTransport::BoostMqTransport(size_t depth) : depth_(depth) {}

BoostMqTransport::~BoostMqTransport() {
  queue_.reset();
  if (!name_.empty()) {
    boost::interprocess::message_queue::remove(name_.c_str());
  }
}

absl::Status BoostMqTransport::Create(size_t message_bytes) {
  message_bytes_ = message_bytes;
  name_ = UniqueName("lockless_benchmark_boost");
  try {
    // The queue lives in a MAP_SHARED mapping of /dev/shm/<name>, so the
    // forked receiver uses the very same object.
    queue_ = std::make_unique<Queue>(name_.c_str(), depth_, message_bytes);
  } catch (const boost::interprocess::interprocess_exception& e) {
    name_.clear();
    return absl::UnavailableError(
        absl::StrFormat("boost message_queue: %s", e.what()));
  }
  return absl::OkStatus();
}

bool BoostMqTransport::Send(const void* message) {
  try {
    queue_->queue.send(message, message_bytes_, /*priority=*/0);
    return true;
  } catch (const boost::interprocess::interprocess_exception& e) {
    error_ = absl::StrFormat("message_queue::send: %s", e.what());
    return false;
  }
}

bool BoostMqTransport::Receive(void* message) {
  try {
    size_t received_bytes = 0;
    unsigned int priority = 0;
    queue_->queue.receive(message, message_bytes_, received_bytes, priority);
    if (received_bytes == message_bytes_) return true;
    error_ =
        absl::StrFormat("message_queue::receive: got %d bytes", received_bytes);
  } catch (const boost::interprocess::interprocess_exception& e) {
    error_ = absl::StrFormat("message_queue::receive: %s", e.what());
  }
  return false;
}

std::string BoostMqTransport::settings() const {
  return absl::StrFormat("max_num_msg %d", depth_);
}

}  // namespace benchmark_tool
}  // namespace lockless
