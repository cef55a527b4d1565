// Our queue as a benchmark Transport: a named channel (ipc/shm_channel.h)
// created by the parent before fork, so both processes map the same
// /dev/shm file.
//
// Two ways for the receiver to wait, the two columns of the report:
//   kPolling: spin on Read(next) until it stops returning kNothingNew. Lowest
//             latency; burns the receiver's CPU.
//   kSignal:  the sender calls WakeUpper::Wakeup(0) after every Send; the
//             receiver registers a Watcher, sleeps in poll(2) on a SignalFd
//             for WakeupSignal(), drains it, then reads everything new.
//
// The receiver reads with ReadMany, up to LocklessQueue::kMaxReadBatch
// messages at a time, and hands them out one per Receive.
//
// A receiver that falls a whole lap behind gets kTooOld; it counts the event
// and resumes half a lap behind the newest message (LatestQueueIndex), as a
// consumer that wants as much of the stream as it can get would: resuming at
// the newest puts it on the very slots the sender is writing, where it keeps
// colliding with the sender and falls off again (measured: 30-80% of the
// stream lost instead of a few %). The driver counts the skipped messages.
//
// Thread-safety: none (see Transport). The Sender and Watcher are created
// and destroyed on the thread that calls Start*/StopSender, as the queue
// requires.
#ifndef LOCKLESS_TOOLS_BENCHMARK_LOCKLESS_H_
#define LOCKLESS_TOOLS_BENCHMARK_LOCKLESS_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "ipc/lockless_queue.h"
#include "ipc/shm_channel.h"
#include "ipc/signalfd.h"
#include "tools/benchmark_transport.h"

namespace lockless {
namespace benchmark_tool {

class LocklessTransport : public Transport {
 public:
  enum class Wait { kPolling, kSignal };

  LocklessTransport(Wait wait, uint32_t queue_size)
      : wait_(wait), queue_size_(queue_size) {}
  ~LocklessTransport() override;

  absl::Status Create(size_t message_bytes) override;
  absl::Status StartSender() override;
  absl::Status StartReceiver() override;
  void StopSender() override;
  bool Send(const void* message) override;
  bool Receive(void* message) override;
  uint64_t too_old_events() const override { return too_old_events_; }
  std::string settings() const override;

 private:
  // Sleeps until the wake-up signal is pending, then drains it. False on a
  // poll/signalfd failure or after a long silence (a dead sender).
  bool WaitForSignal();

  const Wait wait_;
  const uint32_t queue_size_;
  size_t message_bytes_ = 0;
  std::string name_;
  std::optional<Channel> channel_;

  // Sending process.
  std::optional<Sender> sender_;
  std::optional<WakeUpper> wake_upper_;

  // Receiving process. The SignalFd is created before the Watcher so that no
  // wake-up can arrive while the signal is still unblocked (an unhandled
  // real-time signal would kill the receiver).
  std::optional<SignalFd> signal_fd_;
  std::optional<Watcher> watcher_;
  QueueIndex next_;
  uint64_t too_old_events_ = 0;
  // Messages read ahead with ReadMany and not yet handed out:
  // batch_[batch_next_ .. batch_count_) (each message_bytes_ long).
  std::vector<unsigned char> batch_;
  size_t batch_count_ = 0;
  size_t batch_next_ = 0;
};

}  // namespace benchmark_tool
}  // namespace lockless

#endif  // LOCKLESS_TOOLS_BENCHMARK_LOCKLESS_H_
