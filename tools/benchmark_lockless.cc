#include "tools/benchmark_lockless.h"

#include <poll.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>

#include "absl/strings/str_format.h"
#include "tools/benchmark_system.h"

namespace lockless {
namespace benchmark_tool {
namespace {

// A receiver that hears nothing for this long assumes the sender died.
constexpr int kSilenceTimeoutMs = 10'000;

}  // namespace

LocklessTransport::~LocklessTransport() {
  watcher_.reset();
  signal_fd_.reset();
  sender_.reset();
  channel_.reset();
  if (!name_.empty()) (void)RemoveChannel(name_);
}

absl::Status LocklessTransport::Create(size_t message_bytes) {
  message_bytes_ = message_bytes;
  static std::atomic<int> counter{0};
  name_ = absl::StrFormat("lockless_benchmark_%d_%d", getpid(),
                          counter.fetch_add(1, std::memory_order_relaxed));
  QueueConfig config;
  config.num_watchers = wait_ == Wait::kSignal ? 1 : 0;
  config.num_senders = 1;
  config.queue_size = queue_size_;
  config.message_data_size_bytes = message_bytes;
  absl::StatusOr<Channel> channel = Channel::OpenOrCreate(name_, config);
  if (!channel.ok()) {
    name_.clear();
    return channel.status();
  }
  channel_.emplace(std::move(*channel));
  return absl::OkStatus();
}

absl::Status LocklessTransport::StartSender() {
  const LocklessQueue& queue = channel_->queue();
  absl::StatusOr<Sender> sender = queue.MakeSender();
  if (!sender.ok()) return sender.status();
  sender_.emplace(std::move(*sender));
  if (wait_ == Wait::kSignal) wake_upper_.emplace(queue);
  return absl::OkStatus();
}

void LocklessTransport::StopSender() {
  wake_upper_.reset();
  sender_.reset();
}

absl::Status LocklessTransport::StartReceiver() {
  const LocklessQueue& queue = channel_->queue();
  if (wait_ == Wait::kSignal) {
    absl::StatusOr<SignalFd> signal_fd = SignalFd::Create({WakeupSignal()});
    if (!signal_fd.ok()) return signal_fd.status();
    signal_fd_.emplace(std::move(*signal_fd));
    absl::StatusOr<Watcher> watcher = queue.MakeWatcher(/*priority=*/0);
    if (!watcher.ok()) return watcher.status();
    watcher_.emplace(std::move(*watcher));
  }
  // The channel is new, so the first message will carry index 0.
  next_ = queue.MakeQueueIndex(0);
  return absl::OkStatus();
}

bool LocklessTransport::Send(const void* message) {
  if (const SendResult result = sender_->Send(message, message_bytes_);
      result != SendResult::kOk) {
    error_ = absl::StrFormat("Send: %s", SendResultName(result));
    return false;
  }
  if (wake_upper_.has_value()) wake_upper_->Wakeup(/*current_priority=*/0);
  return true;
}

bool LocklessTransport::Receive(void* message) {
  if (batch_next_ < batch_count_) {
    std::memcpy(message, batch_.data() + batch_next_ * message_bytes_,
                message_bytes_);
    ++batch_next_;
    return true;
  }
  const LocklessQueue& queue = channel_->queue();
  constexpr size_t kBatch = LocklessQueue::kMaxReadBatch;
  if (batch_.empty()) batch_.resize(kBatch * message_bytes_);
  uint64_t spins = 0;
  int64_t silence_start_ns = 0;
  MessageInfo infos[kBatch];
  for (;;) {
    ReadResult stopped_at;
    const size_t good =
        queue.ReadMany(next_, kBatch, infos, batch_.data(), message_bytes_,
                       message_bytes_, &stopped_at);
    if (good > 0) {
      for (size_t k = 0; k < good; ++k) {
        if (infos[k].length != message_bytes_) {
          error_ = absl::StrFormat("Read: length %d, sent %d",
                                   infos[k].length, message_bytes_);
          return false;
        }
      }
      next_ = next_.IncrementBy(static_cast<uint32_t>(good));
      batch_count_ = good;
      batch_next_ = 1;
      std::memcpy(message, batch_.data(), message_bytes_);
      return true;
    }
    switch (stopped_at) {
      case ReadResult::kGood:
        break;  // not reached: good == 0 means something stopped it
      case ReadResult::kTooOld:
      case ReadResult::kOverwrote: {
        ++too_old_events_;
        const QueueIndex latest = queue.LatestQueueIndex();
        // Resume half a lap behind the newest message: everything from there
        // is still in the ring, and the reader is not back at the very slot
        // the sender is writing (where it would fall off again at once).
        const QueueIndex resume =
            latest.valid() ? latest.DecrementBy(queue_size_ / 2) : next_;
        // Never move backwards: LatestQueueIndex may lag a send in flight.
        if (resume.valid() &&
            resume.DistanceFrom(next_) < resume.max_index() / 2) {
          next_ = resume;
        } else {
          next_ = next_.Increment();
        }
        continue;
      }
      case ReadResult::kCorrupted:
        error_ = "Read: kCorrupted";
        return false;
      case ReadResult::kNothingNew:
        break;
    }
    if (wait_ == Wait::kSignal) {
      if (!WaitForSignal()) return false;
      continue;
    }
    // Polling: look at the clock only every 64Ki spins, to notice a dead
    // sender without slowing the spin.
    CpuRelax();
    if ((++spins & 0xffff) == 0) {
      const int64_t now_ns = MonotonicNowNs();
      if (silence_start_ns == 0) {
        silence_start_ns = now_ns;
      } else if (now_ns - silence_start_ns >
                 int64_t{kSilenceTimeoutMs} * 1'000'000) {
        error_ = "no message for 10 s";
        return false;
      }
    }
  }
}

bool LocklessTransport::WaitForSignal() {
  pollfd poll_fd = {signal_fd_->fd(), POLLIN, 0};
  for (;;) {
    const int ready = poll(&poll_fd, 1, kSilenceTimeoutMs);
    if (ready > 0) break;
    if (ready < 0 && errno == EINTR) continue;
    error_ = ready == 0 ? "no wake-up for 10 s" : "poll failed";
    return false;
  }
  // At most one signal is queued per watcher: drain it, acknowledge (clears
  // the pending flag, so the next Send's Wakeup signals again), then read
  // everything new. A Send after the acknowledgement queues a fresh signal,
  // so none is missed.
  signal_fd_->Drain();
  watcher_->Acknowledge();
  return true;
}

std::string LocklessTransport::settings() const {
  return absl::StrFormat("queue_size %d", queue_size_);
}

}  // namespace benchmark_tool
}  // namespace lockless
