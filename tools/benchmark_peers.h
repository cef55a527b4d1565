// The peers tools/benchmark compares our queue against: the kernel and
// library IPC a robotics team would otherwise reach for. Each is a
// Transport (benchmark_transport.h) whose receiver blocks in its natural
// call (read, recv, mq_receive, message_queue::receive): that sleep and the
// kernel's wake-up are part of what these peers cost.
//
// Buffering is raised where the OS allows, so a peer's throughput is not
// limited by a small default buffer; settings() reports what was granted.
//
// Thread-safety: none (see Transport).
#ifndef LOCKLESS_TOOLS_BENCHMARK_PEERS_H_
#define LOCKLESS_TOOLS_BENCHMARK_PEERS_H_

#include <mqueue.h>

#include <cstddef>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "tools/benchmark_transport.h"

namespace lockless {
namespace benchmark_tool {

// An anonymous pipe (pipe2), grown with F_SETPIPE_SZ to `pipe_bytes`. A
// pipe is a byte stream: messages are framed by their fixed length.
class PipeTransport : public Transport {
 public:
  explicit PipeTransport(int pipe_bytes) : requested_pipe_bytes_(pipe_bytes) {}
  ~PipeTransport() override;

  absl::Status Create(size_t message_bytes) override;
  absl::Status StartSender() override;
  absl::Status StartReceiver() override;
  bool Send(const void* message) override;
  bool Receive(void* message) override;
  std::string settings() const override;

 private:
  int requested_pipe_bytes_;
  int granted_pipe_bytes_ = 0;
  size_t message_bytes_ = 0;
  int read_fd_ = -1;
  int write_fd_ = -1;
};

// A Unix-domain SOCK_DGRAM socketpair; one datagram per message, socket
// buffers raised to `buffer_bytes` (SO_*BUFFORCE when privileged).
class UnixDgramTransport : public Transport {
 public:
  explicit UnixDgramTransport(int buffer_bytes)
      : requested_buffer_bytes_(buffer_bytes) {}
  ~UnixDgramTransport() override;

  absl::Status Create(size_t message_bytes) override;
  absl::Status StartSender() override;
  absl::Status StartReceiver() override;
  bool Send(const void* message) override;
  bool Receive(void* message) override;
  std::string settings() const override;

 private:
  int requested_buffer_bytes_;
  int granted_buffer_bytes_ = 0;
  size_t message_bytes_ = 0;
  int send_fd_ = -1;
  int receive_fd_ = -1;
};

// A POSIX message queue (mq_open) holding up to `depth` messages. The name
// is unlinked as soon as it is opened: the forked receiver shares the
// descriptor, so nothing is left in /dev/mqueue even if the run is killed.
// Unavailable when the kernel limits refuse the size (msgsize_max for an
// unprivileged user, RLIMIT_MSGQUEUE).
class PosixMqTransport : public Transport {
 public:
  explicit PosixMqTransport(long depth) : requested_depth_(depth) {}
  ~PosixMqTransport() override;

  absl::Status Create(size_t message_bytes) override;
  absl::Status StartSender() override { return absl::OkStatus(); }
  absl::Status StartReceiver() override { return absl::OkStatus(); }
  bool Send(const void* message) override;
  bool Receive(void* message) override;
  std::string settings() const override;

 private:
  long requested_depth_;
  long granted_depth_ = 0;
  size_t message_bytes_ = 0;
  mqd_t queue_ = static_cast<mqd_t>(-1);
};

// Boost.Interprocess message_queue (a named shared-memory queue guarded by a
// process-shared mutex and condition variables) holding `depth` messages.
class BoostMqTransport : public Transport {
 public:
  explicit BoostMqTransport(size_t depth);
  ~BoostMqTransport() override;

  absl::Status Create(size_t message_bytes) override;
  absl::Status StartSender() override { return absl::OkStatus(); }
  absl::Status StartReceiver() override { return absl::OkStatus(); }
  bool Send(const void* message) override;
  bool Receive(void* message) override;
  std::string settings() const override;

 private:
  // Hides Boost's heavy headers from everything that includes this file.
  struct Queue;

  size_t depth_;
  size_t message_bytes_ = 0;
  std::string name_;
  std::unique_ptr<Queue> queue_;
};

}  // namespace benchmark_tool
}  // namespace lockless

#endif  // LOCKLESS_TOOLS_BENCHMARK_PEERS_H_
