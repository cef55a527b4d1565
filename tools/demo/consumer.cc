#include "tools/demo/consumer.h"

#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/str_format.h"
#include "index/queue_index.h"
#include "ipc/lockless_queue.h"
#include "ipc/shm_channel.h"
#include "ipc/signalfd.h"
#include "tools/demo/clock.h"
#include "tools/demo/message.h"
#include "tools/demo/output.h"
#include "tools/demo/report.h"
#include "tools/demo/tally.h"

namespace lockless {
namespace demo {
namespace {

// Reads the queue in order and checks every message, counting into a tally.
class StreamChecker {
 public:
  explicit StreamChecker(const LocklessQueue& queue) : queue_(queue) {
    const QueueIndex latest = queue_.LatestQueueIndex();
    // Start with the first message sent after we registered.
    next_ = latest.valid() ? latest.Increment() : queue_.MakeQueueIndex(0);
    tally_.interval_latency_us.reserve(1 << 15);
    tally_.all_latency_us.reserve(1 << 17);
  }

  // Reads everything published since the last call, in queue order.
  // Returns how many messages were read.
  uint64_t Drain() {
    const QueueIndex latest = queue_.LatestQueueIndex();
    uint64_t read = 0;
    MessageInfo info;
    DemoMessage message;
    for (;;) {
      const ReadResult result =
          queue_.Read(next_, &info, &message, sizeof(message));
      switch (result) {
        case ReadResult::kGood:
          if (info.queue_index != next_) {
            Problem(absl::StrFormat("read queue index %u, got %u",
                                    next_.index(), info.queue_index.index()));
          }
          Check(message, info);
          next_ = next_.Increment();
          ++read;
          continue;
        case ReadResult::kNothingNew:
          // LatestQueueIndex promises everything up to it is readable.
          if (latest.valid() &&
              latest.DistanceFrom(next_) < latest.max_index() / 2) {
            Problem(absl::StrFormat("queue index %u: nothing new, but latest "
                                    "is %u",
                                    next_.index(), latest.index()));
          }
          return read;
        case ReadResult::kTooOld:
        case ReadResult::kOverwrote: {
          // We fell more than queue_size behind: resynchronise.
          const QueueIndex now_latest = queue_.LatestQueueIndex();
          ++tally_.too_old;
          ++tally_.interval_too_old;
          tally_.skipped_indices += now_latest.DistanceFrom(next_);
          Event("consumer",
                absl::StrFormat("TOO_OLD at queue index %u: fell behind, "
                                "resync to %u",
                                next_.index(), now_latest.index()));
          next_ = now_latest;
          for (StreamTally& stream : tally_.streams) stream.resynced = true;
          continue;
        }
        case ReadResult::kCorrupted:
          ++tally_.corrupted;
          Problem(absl::StrFormat("queue index %u: CORRUPTED", next_.index()));
          next_ = next_.Increment();
          continue;
      }
    }
  }

  void OnWakeup(uint64_t signals, uint64_t messages) {
    ++tally_.polls_woken;
    tally_.signals += signals;
    tally_.interval_signals += signals;
    if (messages == 0) ++tally_.empty_wakeups;
  }
  void OnTimeout(uint64_t messages) {
    ++tally_.timeouts;
    tally_.timeout_messages += messages;
  }

  ConsumerTally* tally() { return &tally_; }

 private:
  void Problem(const std::string& text) {
    ++tally_.anomalies;
    if (tally_.anomalies <= 5) Event("consumer", "ANOMALY: " + text);
  }

  void Check(const DemoMessage& message, const MessageInfo& info) {
    char text[24];
    if (info.length != sizeof(DemoMessage) || message.magic != kMessageMagic ||
        message.producer >= kMaxProducers) {
      ++tally_.inconsistent;
      if (tally_.inconsistent <= 5) {
        Event("consumer", absl::StrFormat("BAD message at queue index %u",
                                          info.queue_index.index()));
      }
      return;
    }
    FormatText(message.producer, message.sequence, text);
    if (memcmp(text, message.text, sizeof(text)) != 0) {
      ++tally_.inconsistent;
      if (tally_.inconsistent <= 5) {
        Event("consumer", absl::StrFormat("TORN message at queue index %u",
                                          info.queue_index.index()));
      }
      return;
    }
    StreamTally& s = tally_.streams[message.producer];
    if (s.received > 0 && message.sequence <= s.last) {
      ++tally_.order_violations;
      if (tally_.order_violations <= 5) {
        Event("consumer", absl::StrFormat("ORDER: P%u seq %u after %u",
                                          message.producer, message.sequence,
                                          s.last));
      }
    } else if (message.sequence > s.expected) {
      const uint64_t missing = message.sequence - s.expected;
      if (s.resynced) {
        s.skipped_by_resync += missing;
      } else {
        s.gaps += missing;
        if (++tally_.gap_events <= 5) Event("consumer",
              absl::StrFormat("GAP: P%u seq %u..%u missing", message.producer,
                              s.expected, message.sequence - 1));
      }
    }
    if (s.received == 0 || message.sequence > s.last) {
      s.last = message.sequence;
      s.expected = message.sequence + 1;
    }
    s.resynced = false;
    ++s.received;
    ++s.interval;
    const int64_t sent_ns =
        std::chrono::duration_cast<std::chrono::nanoseconds>(
            info.monotonic_sent_time.time_since_epoch())
            .count();
    const int64_t latency_us = std::max<int64_t>(0, (NowNs() - sent_ns) / 1000);
    const uint32_t clamped =
        static_cast<uint32_t>(std::min<int64_t>(latency_us, UINT32_MAX));
    tally_.interval_latency_us.push_back(clamped);
    tally_.all_latency_us.push_back(clamped);
  }

  const LocklessQueue& queue_;
  QueueIndex next_;
  ConsumerTally tally_;
};

}  // namespace

int RunConsumer(const DemoOptions& options, SharedStats* stats) {
  absl::StatusOr<Channel> channel =
      Channel::OpenOrCreate(options.channel_name, DemoConfig(options),
                            options.channel);
  if (!channel.ok()) {
    Event("consumer", "ERROR opening the channel: " +
                          channel.status().ToString());
    return 2;
  }
  const LocklessQueue& queue = channel->queue();
  // Block the wake-up signal (into the signalfd) before registering: its
  // default action would kill us.
  absl::StatusOr<SignalFd> signal_fd = SignalFd::Create({WakeupSignal()});
  if (!signal_fd.ok()) {
    Event("consumer", "ERROR signalfd: " + signal_fd.status().ToString());
    return 2;
  }
  absl::StatusOr<Watcher> watcher = queue.MakeWatcher(/*priority=*/0);
  if (!watcher.ok()) {
    Event("consumer", "ERROR MakeWatcher: " + watcher.status().ToString());
    return 2;
  }
  Event("consumer", absl::StrFormat("pid %d: watcher slot %u, polls a "
                                    "signalfd (100 ms timeout)",
                                    getpid(), watcher->slot()));
  StreamChecker checker(queue);
  stats->consumer_ready.store(1, std::memory_order_release);

  const int64_t report_period_ns = 1000000000;
  int64_t last_report = stats->t0_ns;
  int64_t next_report = last_report + report_period_ns;
  bool header_printed = false;
  for (;;) {
    const bool done =
        stats->producers_done.load(std::memory_order_acquire) != 0;
    if (done) break;
    const int64_t until_report = std::max<int64_t>(0, next_report - NowNs());
    const int timeout_ms = static_cast<int>(
        std::min<int64_t>(100, (until_report + 999999) / 1000000));
    pollfd pfd{signal_fd->fd(), POLLIN, 0};
    const int n = poll(&pfd, 1, timeout_ms);
    if (n < 0 && errno != EINTR) {
      Event("consumer", absl::StrFormat("ERROR poll: %s", strerror(errno)));
      return 2;
    }
    uint64_t signals = 0;
    if (n > 0) {
      while (signal_fd->Read().has_value()) ++signals;
    }
    // Drained, then acknowledged, then read (the Watcher's rule): the next
    // Send queues a signal again. On a timeout too, in case a waker died
    // holding our pending flag.
    watcher->Acknowledge();
    const uint64_t messages = checker.Drain();
    if (n > 0) {
      checker.OnWakeup(signals, messages);
    } else if (n == 0) {
      checker.OnTimeout(messages);
    }
    const int64_t now = NowNs();
    if (now >= next_report) {
      if (!header_printed) {
        PrintIntervalHeader();
        header_printed = true;
      }
      PrintIntervalLine((now - stats->t0_ns) / 1e9, (now - last_report) / 1e9,
                        checker.tally());
      last_report = now;
      next_report += report_period_ns;
      if (next_report <= now) next_report = now + report_period_ns;
    }
  }
  // Every producer has exited: whatever is in the ring now is final.
  while (signal_fd->Read().has_value()) {
  }
  checker.Drain();
  return PrintSummary(*stats, checker.tally()) ? 0 : 1;
}

}  // namespace demo
}  // namespace lockless
