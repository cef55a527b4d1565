#include "tools/demo/producer.h"

#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/str_format.h"
#include "ipc/lockless_queue.h"
#include "ipc/shm_channel.h"
#include "tools/demo/clock.h"
#include "tools/demo/message.h"
#include "tools/demo/output.h"

namespace lockless {
namespace demo {
namespace {

constexpr int kBurstMessages = 256;

// Says whether the replacement's slot is the victim's, counting a recovery.
void ReportReplacementSlot(SharedStats* stats, const std::string& who,
                           int slot) {
  const int dead_slot =
      stats->producer[kVictim].slot.load(std::memory_order_relaxed);
  if (slot == dead_slot) {
    stats->recoveries.fetch_add(1, std::memory_order_relaxed);
    Event(who, absl::StrFormat("pid %d: replacement producer reclaimed a "
                               "sender slot after recovery",
                               getpid()));
    Event(who, absl::StrFormat("  (slot %d, P%d's until it was killed)", slot,
                               kVictim));
  } else {
    Event(who, absl::StrFormat("ERROR: got sender slot %d, but the dead "
                               "producer's slot was %d",
                               slot, dead_slot));
  }
}

}  // namespace

int RunProducer(const DemoOptions& options, SharedStats* stats, int id,
                bool replacement) {
  ProducerStats& me = stats->producer[id];
  const std::string who = ProducerName(id);
  me.pid.store(getpid(), std::memory_order_relaxed);

  absl::StatusOr<Channel> channel =
      Channel::OpenOrCreate(options.channel_name, DemoConfig(options),
                            options.channel);
  if (!channel.ok()) {
    Event(who, "ERROR opening the channel: " + channel.status().ToString());
    me.setup_failed.store(1, std::memory_order_release);
    return 2;
  }
  const LocklessQueue& queue = channel->queue();
  absl::StatusOr<Sender> sender = queue.MakeSender();
  if (!sender.ok()) {
    Event(who, "ERROR MakeSender: " + sender.status().ToString());
    me.setup_failed.store(1, std::memory_order_release);
    return 3;
  }
  const int slot = static_cast<int>(sender->slot());
  me.slot.store(slot, std::memory_order_relaxed);
  if (replacement) {
    ReportReplacementSlot(stats, who, slot);
  } else {
    Event(who, absl::StrFormat("pid %d: sender slot %d, %d msg/s", getpid(),
                               slot, options.rate_hz));
  }
  me.ready.store(1, std::memory_order_release);

  WakeUpper waker(queue);
  const int64_t period_ns = 1000000000 / options.rate_hz;
  const uint64_t batch = static_cast<uint64_t>(options.batch);
  int64_t deadline = NowNs();
  uint64_t sequence = 0;
  DemoMessage message;
  memset(&message, 0, sizeof(message));
  message.producer = static_cast<uint32_t>(id);
  message.magic = kMessageMagic;

  while (!stats->stop.load(std::memory_order_acquire)) {
    // Absolute deadlines: the rate does not drift with the loop's own cost.
    deadline += period_ns;
    const int64_t now = NowNs();
    if (now > deadline + 10 * period_ns) {
      // Descheduled for a long time: skip ahead instead of bursting.
      deadline = now;
      me.late.fetch_add(1, std::memory_order_relaxed);
    }
    me.phase.store(kSleeping, std::memory_order_relaxed);
    const timespec wake_at = ToTimespec(deadline);
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &wake_at, nullptr) ==
           EINTR) {
    }

    // Normally one message per period. On the parent's request (just before
    // it kills us) a short burst of back-to-back sends, so that the SIGKILL
    // can land inside Send() rather than in the sleep that fills 99.9% of a
    // 2 kHz period. At most a quarter of the ring (256 of the default 1024),
    // so a consumer keeping up never sees TOO_OLD.
    const bool burst = me.burst_request.exchange(0, std::memory_order_relaxed);
    const int count =
        burst ? std::max(1, std::min(kBurstMessages, options.queue_size / 4))
              : 1;
    if (burst) me.burst_active.store(1, std::memory_order_release);
    for (int i = 0; i < count; ++i) {
      message.sequence = sequence;
      FormatText(message.producer, sequence, message.text);
      message.send_time_ns = NowNs();
      me.attempting.store(sequence, std::memory_order_relaxed);
      me.phase.store(kSending, std::memory_order_release);
      if (const SendResult result = sender->Send(&message, sizeof(message));
          result != SendResult::kOk) {
        Event(who, absl::StrFormat("ERROR: Send: %s", SendResultName(result)));
        return 4;
      }
      ++sequence;
      me.sent.store(sequence, std::memory_order_release);
      me.phase.store(kSent, std::memory_order_relaxed);
    }
    me.burst_active.store(0, std::memory_order_relaxed);
    if (burst || sequence % batch == 0) {
      me.phase.store(kWaking, std::memory_order_relaxed);
      const int woken = waker.Wakeup(/*current_priority=*/0);
      me.wakeup_calls.fetch_add(1, std::memory_order_relaxed);
      me.signals_sent.fetch_add(static_cast<uint64_t>(woken),
                                std::memory_order_relaxed);
    }
  }
  // Wake for the partial last batch.
  me.signals_sent.fetch_add(static_cast<uint64_t>(waker.Wakeup(0)),
                            std::memory_order_relaxed);
  me.wakeup_calls.fetch_add(1, std::memory_order_relaxed);
  me.phase.store(kFinished, std::memory_order_release);
  return 0;  // sender, then channel, released here
}

}  // namespace demo
}  // namespace lockless
