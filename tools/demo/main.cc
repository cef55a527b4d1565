// The demo: the library doing its real job, in separate processes over one
// named channel in /dev/shm.
//
//   parent  creates /dev/shm/lockless_demo_<pid> (3 sender slots, 2 watchers)
//   |- consumer   registers a watcher, sleeps on a signalfd, reads every
//   |             message in queue order, checks each producer's stream
//   |- P0 P1 P2   send {id, sequence, time} at 2 kHz each, waking the
//   |             consumer after every 4 messages
//   |- ~3 s in:   SIGKILL P1 mid-stream. By default the kill is aimed: the
//   |             parent puts itself and P1 on different CPUs, asks P1 for a
//   |             256-message burst and kills it as it starts, so P1 usually
//   |             dies inside Send() (unaimed it dies asleep: a send is under
//   |             1 us of a 500 us period).
//   `- P3         replaces P1. All 3 sender slots were taken (P1's still owned
//                 by its dead thread, marked OWNER_DIED by the kernel), so its
//                 MakeSender succeeds only by recovering P1's slot.
//
// Producer ids: the replacement gets a new id (P3) and starts its sequence at
// 0, so every stream is checked on its own: P1's stream must end cleanly at
// the message it was killed in, P3's must be complete.
//
// At the end the consumer prints a summary (sent per producer from a shared
// stats page, received, gaps, TOO_OLD, recoveries, wake-ups, latency), the
// parent prints the channel through the memory printer (what `dump` shows)
// and removes the channel. Exit code 0 only when every check passed.
//
// Processes: the parent forks every child; children exit with _exit() (no
// atexit handlers, no inherited stdio buffers) and die with the parent
// (PR_SET_PDEATHSIG). Every output line is one write(2), so lines from
// different processes never interleave mid-line.
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include <gflags/gflags.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_format.h"
#include "index/queue_index.h"
#include "ipc/internal/queue_layout.h"
#include "ipc/lockless_queue.h"
#include "ipc/queue_config.h"
#include "ipc/queue_printer.h"
#include "ipc/shm_channel.h"
#include "ipc/signalfd.h"
#include "sync/robust_mutex.h"

DEFINE_double(duration_s, 8.0, "How long the producers send, in seconds.");
DEFINE_double(kill_after_s, 3.0,
              "When to SIGKILL producer P1 (capped at half of --duration_s).");
DEFINE_int32(rate_hz, 2000, "Messages per second sent by each producer.");
DEFINE_int32(batch, 4, "Producers wake the consumer after this many messages.");
DEFINE_int32(queue_size, 1024,
             "Messages kept in the channel's ring (at 6 kHz in total, 1024 "
             "lets the consumer stall ~170 ms before it sees TOO_OLD).");
DEFINE_string(channel, "",
              "Channel name (default lockless_demo_<pid>); removed at exit.");
DEFINE_int32(dump_messages, 3, "How many of the latest messages to dump.");
DEFINE_bool(kill_in_send, true,
            "Aim the SIGKILL at Send(): P1 sends a 256-message burst and is "
            "killed as it starts (else it dies wherever it is, usually "
            "asleep).");

namespace lockless {
namespace demo {
namespace {

constexpr int kInitialProducers = 3;  // P0, P1, P2
constexpr int kVictim = 1;            // P1 is killed
constexpr int kReplacement = 3;       // P3 replaces it
constexpr int kMaxProducers = 4;
constexpr uint32_t kMessageMagic = 0xdec0de01u;
constexpr int kBurstMessages = 256;

// ---------------------------------------------------------------------------
// Shared state between the processes: one MAP_SHARED anonymous page, made
// before any fork. Only lock-free (address-free) atomics live here.

// Where a producer was in its loop (so we can say where the victim died).
enum Phase : int32_t {
  kStarting,
  kSleeping,
  kSending,
  kSent,
  kWaking,
  kFinished,
};

const char* PhaseName(int32_t phase) {
  switch (phase) {
    case kStarting: return "setting up";
    case kSleeping: return "sleeping between sends";
    case kSending: return "inside Send()";
    case kSent: return "just after Send()";
    case kWaking: return "inside Wakeup()";
    case kFinished: return "finished";
  }
  return "?";
}

struct ProducerStats {
  std::atomic<int32_t> pid{0};
  std::atomic<int32_t> slot{-1};
  std::atomic<int32_t> ready{0};         // MakeSender succeeded
  std::atomic<int32_t> setup_failed{0};
  std::atomic<int32_t> phase{kStarting};
  std::atomic<uint64_t> attempting{0};   // sequence of the current/next Send
  std::atomic<uint64_t> sent{0};         // Sends that returned kOk
  std::atomic<uint64_t> wakeup_calls{0};
  std::atomic<uint64_t> signals_sent{0};  // sum of Wakeup() return values
  std::atomic<uint64_t> late{0};          // deadlines missed by > 10 periods
  std::atomic<int32_t> burst_request{0};  // parent: send a burst now
  std::atomic<int32_t> burst_active{0};
};

struct SharedStats {
  int64_t t0_ns = 0;                     // CLOCK_MONOTONIC start of the run
  std::atomic<int32_t> consumer_ready{0};
  std::atomic<int32_t> stop{0};          // producers: finish now
  std::atomic<int32_t> producers_done{0};  // consumer: drain and summarise
  std::atomic<int32_t> victim_killed{0};
  std::atomic<int32_t> victim_slot_owner_died{0};  // kernel set OWNER_DIED
  std::atomic<int32_t> free_slots_before_replacement{-1};
  std::atomic<int32_t> recoveries{0};   // replacements that got a dead slot
  ProducerStats producer[kMaxProducers];
};

static_assert(std::atomic<int32_t>::is_always_lock_free);
static_assert(std::atomic<uint64_t>::is_always_lock_free);

// ---------------------------------------------------------------------------
// The message. The text prefix makes the payload readable in the dump; the
// consumer re-derives it from the binary fields, so a torn or mixed-up
// message would be caught.
struct DemoMessage {
  char text[24];  // "P1 seq 4711", space padded
  uint32_t producer;
  uint32_t magic;
  uint64_t sequence;
  int64_t send_time_ns;  // producer's CLOCK_MONOTONIC just before Send
};
static_assert(sizeof(DemoMessage) == 48);

void FormatText(uint32_t producer, uint64_t sequence, char (&text)[24]) {
  char buffer[48];
  const int n = snprintf(buffer, sizeof(buffer), "P%u seq %" PRIu64, producer,
                         sequence);
  memset(text, ' ', sizeof(text));
  memcpy(text, buffer, std::min<size_t>(n > 0 ? n : 0, sizeof(text)));
}

// ---------------------------------------------------------------------------
// Small helpers.

int64_t NowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec;
}

timespec ToTimespec(int64_t ns) {
  timespec ts;
  ts.tv_sec = ns / 1000000000;
  ts.tv_nsec = ns % 1000000000;
  return ts;
}

void SleepNs(int64_t ns) {
  timespec ts = ToTimespec(ns);
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

SharedStats* g_stats = nullptr;

// One write(2) per call: lines from different processes never interleave.
void Out(const std::string& text) {
  const char* p = text.data();
  size_t left = text.size();
  while (left > 0) {
    const ssize_t n = write(STDOUT_FILENO, p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    p += n;
    left -= static_cast<size_t>(n);
  }
}

// "[  3.001] who        text"
void Event(const std::string& who, const std::string& text) {
  const double t =
      g_stats != nullptr ? (NowNs() - g_stats->t0_ns) / 1e9 : 0.0;
  Out(absl::StrFormat("[%7.3f] %-9s %s\n", t, who, text));
}

std::string ProducerName(int id) { return absl::StrFormat("P%d", id); }

QueueConfig DemoConfig() {
  QueueConfig config;
  // One slot per concurrently running producer and no spare: the replacement
  // can only get a slot by recovering the dead producer's.
  config.num_senders = kInitialProducers;
  config.num_watchers = 2;
  config.queue_size = static_cast<uint32_t>(FLAGS_queue_size);
  config.message_data_size_bytes = 64;
  return config;
}

// Child setup: die with the parent, never run the parent's atexit handlers.
void BecomeChild() {
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  signal(SIGINT, SIG_DFL);
  signal(SIGTERM, SIG_DFL);
  signal(SIGHUP, SIG_DFL);
}

// ---------------------------------------------------------------------------
// Producer process.

int RunProducer(const std::string& channel_name, int id, bool replacement) {
  ProducerStats& me = g_stats->producer[id];
  const std::string who = ProducerName(id);
  me.pid.store(getpid(), std::memory_order_relaxed);

  absl::StatusOr<Channel> channel =
      Channel::OpenOrCreate(channel_name, DemoConfig());
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
    const int dead_slot =
        g_stats->producer[kVictim].slot.load(std::memory_order_relaxed);
    if (slot == dead_slot) {
      g_stats->recoveries.fetch_add(1, std::memory_order_relaxed);
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
  } else {
    Event(who, absl::StrFormat("pid %d: sender slot %d, %d msg/s", getpid(),
                               slot, FLAGS_rate_hz));
  }
  me.ready.store(1, std::memory_order_release);

  WakeUpper waker(queue);
  const int64_t period_ns = 1000000000 / FLAGS_rate_hz;
  const uint64_t batch = static_cast<uint64_t>(FLAGS_batch);
  int64_t deadline = NowNs();
  uint64_t sequence = 0;
  DemoMessage message;
  memset(&message, 0, sizeof(message));
  message.producer = static_cast<uint32_t>(id);
  message.magic = kMessageMagic;

  while (!g_stats->stop.load(std::memory_order_acquire)) {
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
        burst ? std::max(1, std::min(kBurstMessages, FLAGS_queue_size / 4)) : 1;
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

// ---------------------------------------------------------------------------
// Consumer process.

struct StreamCheck {
  uint64_t received = 0;
  uint64_t expected = 0;  // next sequence we expect
  uint64_t last = 0;      // last sequence seen (valid when received > 0)
  uint64_t gaps = 0;      // skipped sequences with no TOO_OLD to explain them
  uint64_t skipped_by_resync = 0;  // skipped sequences after a TOO_OLD
  bool resynced = false;
  uint64_t interval = 0;  // received in the current report interval
};

uint32_t Percentile(std::vector<uint32_t>* values, double fraction) {
  if (values->empty()) return 0;
  const size_t k = std::min(values->size() - 1,
                            static_cast<size_t>(fraction * values->size()));
  std::nth_element(values->begin(), values->begin() + k, values->end());
  return (*values)[k];
}

class Consumer {
 public:
  explicit Consumer(const LocklessQueue& queue) : queue_(queue) {
    const QueueIndex latest = queue_.LatestQueueIndex();
    // Start with the first message sent after we registered.
    next_ = latest.valid() ? latest.Increment() : queue_.MakeQueueIndex(0);
    interval_latency_us_.reserve(1 << 15);
    all_latency_us_.reserve(1 << 17);
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
        case ReadResult::kTooOld: {
          // We fell more than queue_size behind: resynchronise.
          const QueueIndex now_latest = queue_.LatestQueueIndex();
          ++too_old_;
          ++interval_too_old_;
          skipped_indices_ += now_latest.DistanceFrom(next_);
          Event("consumer",
                absl::StrFormat("TOO_OLD at queue index %u: fell behind, "
                                "resync to %u",
                                next_.index(), now_latest.index()));
          next_ = now_latest;
          for (StreamCheck& stream : streams_) stream.resynced = true;
          continue;
        }
        case ReadResult::kCorrupted:
          ++corrupted_;
          Problem(absl::StrFormat("queue index %u: CORRUPTED", next_.index()));
          next_ = next_.Increment();
          continue;
      }
    }
  }

  void OnWakeup(uint64_t signals, uint64_t messages) {
    ++polls_woken_;
    signals_ += signals;
    interval_signals_ += signals;
    if (messages == 0) ++empty_wakeups_;
  }
  void OnTimeout(uint64_t messages) {
    ++timeouts_;
    timeout_messages_ += messages;
  }

  static void PrintHeader() {
    Out("    time   P0/s   P1/s   P2/s   P3/s  wake/s  p50 us  max us  "
        "TOO_OLD\n");
  }

  void Report(double t, double interval_s) {
    std::string line = absl::StrFormat("  %6.1f", t);
    for (StreamCheck& stream : streams_) {
      line += absl::StrFormat("  %5.0f", stream.interval / interval_s);
      stream.interval = 0;
    }
    const uint32_t p50 = Percentile(&interval_latency_us_, 0.5);
    const uint32_t max =
        interval_latency_us_.empty()
            ? 0
            : *std::max_element(interval_latency_us_.begin(),
                                interval_latency_us_.end());
    line += absl::StrFormat("  %6.0f  %6u  %6u  %7u\n",
                            interval_signals_ / interval_s, p50, max,
                            interval_too_old_);
    Out(line);
    interval_latency_us_.clear();
    interval_signals_ = 0;
    interval_too_old_ = 0;
  }

  // Prints the final table and returns whether every check passed.
  bool Summarise() {
    std::vector<std::string> failures;
    const bool killed =
        g_stats->victim_killed.load(std::memory_order_acquire) != 0;
    std::string victim_text;
    Out("\nsummary\n");
    Out("  producer  pid     slot   sent   recvd  gaps  last seq  how it "
        "ended\n");
    uint64_t total_sent = 0, total_received = 0, total_gaps = 0,
             total_skipped = 0;
    for (int id = 0; id < kMaxProducers; ++id) {
      const ProducerStats& p = g_stats->producer[id];
      const StreamCheck& s = streams_[id];
      const uint64_t sent = p.sent.load(std::memory_order_acquire);
      const int32_t phase = p.phase.load(std::memory_order_acquire);
      total_sent += sent;
      total_received += s.received;
      total_gaps += s.gaps;
      total_skipped += s.skipped_by_resync;
      // Stream end: one past the last sequence received.
      const uint64_t end = s.received > 0 ? s.last + 1 : 0;
      std::string note;
      if (id == kVictim && killed) {
        // Sends that returned were all delivered; the message it was in the
        // middle of (if any) may or may not have been published.
        note = "SIGKILLed";
        if (end == sent + 1) {
          victim_text = absl::StrFormat(
              "  P%d died %s with seq %u in flight: it was published (the\n"
              "  swap into the ring had happened), so it arrived: none lost.\n",
              id, PhaseName(phase), sent);
        } else if (end == sent && phase == kSending) {
          victim_text = absl::StrFormat(
              "  P%d died %s with seq %u in flight. It was never\n"
              "  published (death before the swap into the ring): the one\n"
              "  message a death may lose. Every Send that returned arrived.\n",
              id, PhaseName(phase), sent);
        } else if (end == sent) {
          victim_text = absl::StrFormat(
              "  P%d died %s, no send in flight: all %u sent arrived.\n", id,
              PhaseName(phase), sent);
        } else {
          note = "SIGKILLed; MISSING";
          failures.push_back(absl::StrFormat(
              "P%d: sent %u, stream ends at %u", id, sent, end));
        }
      } else {
        if (s.received == sent && end == sent) {
          note = id == kReplacement ? "stopped (replaced P1)" : "stopped";
        } else {
          note = "MISMATCH";
          failures.push_back(absl::StrFormat(
              "P%d: sent %u, received %u, stream ends at %u", id, sent,
              s.received, end));
        }
      }
      if (s.gaps > 0) {
        failures.push_back(
            absl::StrFormat("P%d: %u sequence numbers missing", id, s.gaps));
      }
      const std::string last =
          s.received > 0 ? absl::StrFormat("%u", s.last) : std::string("-");
      Out(absl::StrFormat("  P%d        %-7d %4d  %5u  %6u  %4u  %8s  %s\n", id,
                          p.pid.load(std::memory_order_relaxed),
                          p.slot.load(std::memory_order_relaxed), sent,
                          s.received, s.gaps, last, note));
    }
    Out(absl::StrFormat("  total                  %6u  %6u  %4u\n", total_sent,
                        total_received, total_gaps));
    Out(victim_text);

    Out(absl::StrFormat(
        "  order violations %u, torn/inconsistent %u, corrupted %u, "
        "anomalies %u\n",
        order_violations_, inconsistent_, corrupted_, anomalies_));
    Out(absl::StrFormat(
        "  TOO_OLD resyncs %u (%u queue indices skipped, %u seqs missed)\n",
        too_old_, skipped_indices_, total_skipped));
    const int recoveries = g_stats->recoveries.load(std::memory_order_relaxed);
    Out(absl::StrFormat("  recoveries %d (P%d's MakeSender recovered dead "
                        "P%d's sender slot)\n",
                        recoveries, kReplacement, kVictim));
    uint64_t signals_sent = 0, late = 0;
    for (const ProducerStats& p : g_stats->producer) {
      signals_sent += p.signals_sent.load(std::memory_order_relaxed);
      late += p.late.load(std::memory_order_relaxed);
    }
    Out(absl::StrFormat(
        "  wake-ups: %u signals received of %u sent; %u polls woken, %u "
        "empty\n",
        signals_, signals_sent, polls_woken_, empty_wakeups_));
    Out(absl::StrFormat(
        "  poll timeouts %u (found %u msgs); producer periods skipped "
        "(descheduled): %u\n",
        timeouts_, timeout_messages_, late));
    const uint32_t p50 = Percentile(&all_latency_us_, 0.5);
    const uint32_t p99 = Percentile(&all_latency_us_, 0.99);
    const uint32_t max =
        all_latency_us_.empty()
            ? 0
            : *std::max_element(all_latency_us_.begin(), all_latency_us_.end());
    Out(absl::StrFormat(
        "  latency send->read: p50 %u us, p99 %u us, max %u us (%u msgs)\n",
        p50, p99, max, all_latency_us_.size()));

    if (order_violations_ > 0) {
      failures.push_back(
          absl::StrFormat("%u ordering violations", order_violations_));
    }
    if (inconsistent_ > 0) {
      failures.push_back(
          absl::StrFormat("%u inconsistent messages", inconsistent_));
    }
    if (corrupted_ > 0) {
      failures.push_back(absl::StrFormat("%u corrupted reads", corrupted_));
    }
    if (anomalies_ > 0) {
      failures.push_back(absl::StrFormat("%u read anomalies", anomalies_));
    }
    if (too_old_ > 0) {
      failures.push_back(absl::StrFormat(
          "%u TOO_OLD resyncs: the consumer fell behind (machine overloaded?)",
          too_old_));
    }
    if (recoveries != 1) {
      failures.push_back(absl::StrFormat("%d recoveries, expected 1",
                                         recoveries));
    }
    if (failures.empty()) {
      Out("  consumer checks: PASS\n");
      return true;
    }
    std::string text = "  consumer checks: FAIL:";
    for (const std::string& f : failures) text += "\n    " + f;
    Out(text + "\n");
    return false;
  }

 private:
  void Problem(const std::string& text) {
    ++anomalies_;
    if (anomalies_ <= 5) Event("consumer", "ANOMALY: " + text);
  }

  void Check(const DemoMessage& message, const MessageInfo& info) {
    char text[24];
    if (info.length != sizeof(DemoMessage) || message.magic != kMessageMagic ||
        message.producer >= kMaxProducers) {
      ++inconsistent_;
      if (inconsistent_ <= 5) {
        Event("consumer", absl::StrFormat("BAD message at queue index %u",
                                          info.queue_index.index()));
      }
      return;
    }
    FormatText(message.producer, message.sequence, text);
    if (memcmp(text, message.text, sizeof(text)) != 0) {
      ++inconsistent_;
      if (inconsistent_ <= 5) {
        Event("consumer", absl::StrFormat("TORN message at queue index %u",
                                          info.queue_index.index()));
      }
      return;
    }
    StreamCheck& s = streams_[message.producer];
    if (s.received > 0 && message.sequence <= s.last) {
      ++order_violations_;
      if (order_violations_ <= 5) {
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
        if (++gap_events_ <= 5) Event("consumer",
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
    interval_latency_us_.push_back(clamped);
    all_latency_us_.push_back(clamped);
  }

  const LocklessQueue& queue_;
  QueueIndex next_;
  StreamCheck streams_[kMaxProducers];
  std::vector<uint32_t> interval_latency_us_;
  std::vector<uint32_t> all_latency_us_;
  uint64_t too_old_ = 0, interval_too_old_ = 0, skipped_indices_ = 0;
  uint64_t corrupted_ = 0, inconsistent_ = 0, order_violations_ = 0;
  uint64_t anomalies_ = 0, gap_events_ = 0;
  uint64_t signals_ = 0, interval_signals_ = 0, polls_woken_ = 0;
  uint64_t empty_wakeups_ = 0, timeouts_ = 0, timeout_messages_ = 0;
};

int RunConsumer(const std::string& channel_name) {
  absl::StatusOr<Channel> channel =
      Channel::OpenOrCreate(channel_name, DemoConfig());
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
  Consumer consumer(queue);
  g_stats->consumer_ready.store(1, std::memory_order_release);

  const int64_t report_period_ns = 1000000000;
  int64_t last_report = g_stats->t0_ns;
  int64_t next_report = last_report + report_period_ns;
  bool header_printed = false;
  for (;;) {
    const bool done =
        g_stats->producers_done.load(std::memory_order_acquire) != 0;
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
    const uint64_t messages = consumer.Drain();
    if (n > 0) {
      consumer.OnWakeup(signals, messages);
    } else if (n == 0) {
      consumer.OnTimeout(messages);
    }
    const int64_t now = NowNs();
    if (now >= next_report) {
      if (!header_printed) {
        Consumer::PrintHeader();
        header_printed = true;
      }
      consumer.Report((now - g_stats->t0_ns) / 1e9,
                      (now - last_report) / 1e9);
      last_report = now;
      next_report += report_period_ns;
      if (next_report <= now) next_report = now + report_period_ns;
    }
  }
  // Every producer has exited: whatever is in the ring now is final.
  while (signal_fd->Read().has_value()) {
  }
  consumer.Drain();
  return consumer.Summarise() ? 0 : 1;
}

// ---------------------------------------------------------------------------
// Parent: process management and cleanup.

struct Child {
  std::string name;
  pid_t pid = -1;
  bool alive = false;
  int status = 0;
};

std::vector<Child>* g_children = nullptr;
std::string* g_channel_name = nullptr;
volatile sig_atomic_t g_interrupted = 0;

void OnInterrupt(int) { g_interrupted = 1; }

// Kills live children and removes the channel. Idempotent; runs from the
// guard's destructor and from atexit (for exit() on any path).
void CleanUp() {
  if (g_children != nullptr) {
    for (Child& child : *g_children) {
      if (!child.alive) continue;
      kill(child.pid, SIGKILL);
      waitpid(child.pid, &child.status, 0);
      child.alive = false;
    }
  }
  if (g_channel_name != nullptr && !g_channel_name->empty()) {
    const absl::Status status = RemoveChannel(*g_channel_name);
    if (!status.ok() && !absl::IsNotFound(status)) {
      Out("parent: could not remove the channel: " + status.ToString() + "\n");
    }
    g_channel_name->clear();
  }
}

struct CleanupGuard {
  ~CleanupGuard() { CleanUp(); }
};

std::string DescribeStatus(int status) {
  if (WIFEXITED(status)) {
    return absl::StrFormat("exited with code %d", WEXITSTATUS(status));
  }
  if (WIFSIGNALED(status)) {
    return absl::StrFormat("killed by signal %d (%s)", WTERMSIG(status),
                           strsignal(WTERMSIG(status)));
  }
  return "stopped?";
}

template <typename F>
Child* Spawn(const std::string& name, F body) {
  const pid_t pid = fork();
  if (pid < 0) {
    Event("parent", absl::StrFormat("ERROR fork: %s", strerror(errno)));
    return nullptr;
  }
  if (pid == 0) {
    BecomeChild();
    int rc = body();
    _exit(rc);
  }
  g_children->push_back(Child{name, pid, true, 0});
  return &g_children->back();
}

Child* FindChild(const std::string& name) {
  for (Child& child : *g_children) {
    if (child.name == name) return &child;
  }
  return nullptr;
}

// Reaps `child` if it has exited. Returns true if it is (now) dead.
bool Reap(Child* child, bool block) {
  if (!child->alive) return true;
  const pid_t r = waitpid(child->pid, &child->status, block ? 0 : WNOHANG);
  if (r == child->pid) {
    child->alive = false;
    return true;
  }
  return false;
}

bool ReapWithTimeout(Child* child, int64_t timeout_ns) {
  const int64_t end = NowNs() + timeout_ns;
  while (!Reap(child, false)) {
    if (NowNs() > end) return false;
    SleepNs(2000000);
  }
  return true;
}

// Any child that died when it should not have. Empty if all is well.
std::string UnexpectedDeath() {
  for (Child& child : *g_children) {
    if (!child.alive) continue;
    if (Reap(&child, false)) {
      return absl::StrFormat("%s (pid %d) %s", child.name, child.pid,
                             DescribeStatus(child.status));
    }
  }
  return "";
}

// Waits for `flag` (set by a child) while checking for early deaths.
bool WaitFor(const std::atomic<int32_t>& flag, const std::atomic<int32_t>* fail,
             const std::string& what, std::string* error) {
  const int64_t end = NowNs() + 5000000000LL;
  while (flag.load(std::memory_order_acquire) == 0) {
    if (fail != nullptr && fail->load(std::memory_order_acquire) != 0) {
      *error = what + " failed to set up";
      return false;
    }
    const std::string death = UnexpectedDeath();
    if (!death.empty()) {
      *error = death + " while waiting for " + what;
      return false;
    }
    if (g_interrupted) {
      *error = "interrupted";
      return false;
    }
    if (NowNs() > end) {
      *error = "timed out waiting for " + what;
      return false;
    }
    SleepNs(1000000);
  }
  return true;
}

std::string Indent(const std::string& text) {
  std::string out;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    out += "  " + text.substr(start, end - start) + "\n";
    start = end + 1;
  }
  return out;
}

// The channel through the memory printer (what `dump --summary` shows), then
// the latest few messages.
bool PrintDump(const Channel& channel, const std::string& name) {
  const internal::RegionView& region = channel.queue().region();
  const void* memory = region.base();
  const size_t size = region.layout().total_size_bytes;
  Out(absl::StrFormat("\nchannel dump (ipc/queue_printer; as `dump "
                      "--summary --channel=%s`)\n",
                      name));
  PrintOptions options;
  options.summary_only = true;
  std::string text;
  absl::Status status = PrintRegion(memory, size, options, &text);
  if (!status.ok()) {
    Out("  DUMP FAILED: " + status.ToString() + "\n");
    return false;
  }
  Out(Indent(text));
  const QueueIndex latest = channel.queue().LatestQueueIndex();
  if (!latest.valid() || FLAGS_dump_messages <= 0) return true;
  Out(absl::StrFormat("last %d messages:\n", FLAGS_dump_messages));
  for (int back = FLAGS_dump_messages - 1; back >= 0; --back) {
    PrintOptions one;
    one.queue_index = latest.DecrementBy(static_cast<uint32_t>(back)).index();
    one.max_data_bytes = sizeof(DemoMessage::text);
    text.clear();
    status = PrintRegion(memory, size, one, &text);
    if (!status.ok()) {
      Out("  DUMP FAILED: " + status.ToString() + "\n");
      return false;
    }
    Out(Indent(text));
  }
  return true;
}

// Pins the calling process to one allowed CPU and `other` to another. False
// (nothing changed) with fewer than two CPUs. `*saved` gets our old mask.
bool PinApart(pid_t other, cpu_set_t* saved) {
  if (sched_getaffinity(0, sizeof(*saved), saved) != 0) return false;
  int cpus[2];
  int found = 0;
  for (int cpu = 0; cpu < CPU_SETSIZE && found < 2; ++cpu) {
    if (CPU_ISSET(cpu, saved)) cpus[found++] = cpu;
  }
  if (found < 2) return false;
  cpu_set_t mine, theirs;
  CPU_ZERO(&mine);
  CPU_ZERO(&theirs);
  CPU_SET(cpus[0], &mine);
  CPU_SET(cpus[1], &theirs);
  if (sched_setaffinity(other, sizeof(theirs), &theirs) != 0) return false;
  if (sched_setaffinity(0, sizeof(mine), &mine) != 0) return false;
  return true;
}

// Every run holds a shared flock(2) on its channel file for its lifetime
// (inherited by its children; released by the kernel however the run ends).
// Locks work across pid namespaces, unlike pids: a Bazel sandbox gives every
// test the same small pids, so the pid alone neither names a run uniquely nor
// says whether it is alive.
int LockChannelFile(const std::string& name) {
  const int fd =
      open(("/dev/shm/" + name).c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd >= 0) flock(fd, LOCK_SH);
  return fd;  // kept open until exit
}

// Removes channels left by demo runs that were SIGKILLed (the only way to
// skip the cleanup): lockless_demo_* files of ours, older than 10 s (so a run
// between creating and locking its file is safe), that nobody holds a lock on.
int RemoveDeadRunsChannels() {
  DIR* dir = opendir("/dev/shm");
  if (dir == nullptr) return 0;
  int removed = 0;
  const std::string prefix = "lockless_demo_";
  while (const dirent* entry = readdir(dir)) {
    const std::string name = entry->d_name;
    if (name.compare(0, prefix.size(), prefix) != 0) continue;
    const std::string path = "/dev/shm/" + name;
    struct stat st;
    if (lstat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode) ||
        st.st_uid != getuid() || time(nullptr) - st.st_mtime < 10) {
      continue;
    }
    const int fd = open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) continue;
    if (flock(fd, LOCK_EX | LOCK_NB) == 0 && RemoveChannel(name).ok()) {
      ++removed;
    }
    close(fd);
  }
  closedir(dir);
  return removed;
}

int Fail(const std::string& why) {
  Out("\nRESULT: FAIL: " + why + "\n");
  CleanUp();
  return 1;
}

int Main() {
  if (FLAGS_duration_s < 1.0 || FLAGS_duration_s > 3600) {
    Out("--duration_s must be in [1, 3600]\n");
    return 2;
  }
  if (FLAGS_rate_hz < 1 || FLAGS_rate_hz > 100000 || FLAGS_batch < 1 ||
      FLAGS_queue_size < 1) {
    Out("--rate_hz must be in [1, 100000], --batch and --queue_size >= 1\n");
    return 2;
  }
  const double kill_at_s =
      std::max(0.2, std::min(FLAGS_kill_after_s, FLAGS_duration_s / 2));

  // Shared stats page, before any fork.
  void* page = mmap(nullptr, sizeof(SharedStats), PROT_READ | PROT_WRITE,
                    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (page == MAP_FAILED) {
    Out(absl::StrFormat("mmap: %s\n", strerror(errno)));
    return 2;
  }
  g_stats = new (page) SharedStats();
  g_stats->t0_ns = NowNs();

  static std::vector<Child> children;
  children.reserve(8);  // Child* pointers stay valid
  g_children = &children;
  static std::string channel_name;
  // pid plus a random tag: pids repeat across pid namespaces (sandboxes).
  channel_name = FLAGS_channel.empty()
                     ? absl::StrFormat("lockless_demo_%d_%06x", getpid(),
                                       std::random_device()() & 0xffffff)
                     : FLAGS_channel;
  // A stale channel of the same name (normally none, given the random tag).
  const int dead_runs = FLAGS_channel.empty() ? RemoveDeadRunsChannels() : 0;
  const absl::Status removed = RemoveChannel(channel_name);
  if (!removed.ok() && !absl::IsNotFound(removed)) {
    Out("cannot remove stale channel: " + removed.ToString() + "\n");
    return 2;
  }
  const QueueConfig config = DemoConfig();
  absl::StatusOr<Channel> channel = Channel::OpenOrCreate(channel_name, config);
  if (!channel.ok()) {
    Out("cannot create the channel: " + channel.status().ToString() + "\n");
    return 2;
  }
  g_channel_name = &channel_name;  // from now on, CleanUp removes it
  LockChannelFile(channel_name);
  atexit(CleanUp);
  CleanupGuard guard;
  struct sigaction action;
  memset(&action, 0, sizeof(action));
  action.sa_handler = OnInterrupt;
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);
  sigaction(SIGHUP, &action, nullptr);
  // Output to a closed pipe (`demo | head`) must not kill us before cleanup.
  signal(SIGPIPE, SIG_IGN);

  Out(absl::StrFormat(
      "lockless demo: %d producers -> channel %s -> 1 consumer, %.1f s\n",
      kInitialProducers, channel_name, FLAGS_duration_s));
  Out(absl::StrFormat(
      "  %u sender slots, %u watchers, ring of %u x %u-byte messages%s\n",
      config.num_senders, config.num_watchers, config.queue_size,
      config.message_data_size_bytes,
      removed.ok() ? " (replaced a stale one)" : ""));
  if (dead_runs > 0) {
    Out(absl::StrFormat("  removed %d channel(s) left by killed demo runs\n",
                        dead_runs));
  }
  Out(absl::StrFormat(
      "  each producer: %d msg/s, wake-up every %d messages\n"
      "  P%d is SIGKILLed at %.1f s%s; P%d replaces it (new id, seq from "
      "0)\n\n",
      FLAGS_rate_hz, FLAGS_batch, kVictim, kill_at_s,
      FLAGS_kill_in_send ? " (aimed at Send())" : "", kReplacement));

  // Consumer first, so no wake-up is missed.
  if (Spawn("consumer", [] { return RunConsumer(channel_name); }) == nullptr) {
    return Fail("fork");
  }
  std::string error;
  if (!WaitFor(g_stats->consumer_ready, nullptr, "the consumer", &error)) {
    return Fail(error);
  }
  for (int id = 0; id < kInitialProducers; ++id) {
    if (Spawn(ProducerName(id), [id] {
          return RunProducer(channel_name, id, false);
        }) == nullptr) {
      return Fail("fork");
    }
  }
  for (int id = 0; id < kInitialProducers; ++id) {
    if (!WaitFor(g_stats->producer[id].ready,
                 &g_stats->producer[id].setup_failed, ProducerName(id),
                 &error)) {
      return Fail(error);
    }
  }

  // Run; kill the victim on the way.
  const int64_t kill_at =
      g_stats->t0_ns + static_cast<int64_t>(kill_at_s * 1e9);
  const int64_t stop_at =
      g_stats->t0_ns + static_cast<int64_t>(FLAGS_duration_s * 1e9);
  bool killed = false;
  while (NowNs() < stop_at) {
    if (g_interrupted) return Fail("interrupted");
    const std::string death = UnexpectedDeath();
    if (!death.empty()) return Fail(death);
    if (!killed && NowNs() >= kill_at) {
      killed = true;
      Child* victim = FindChild(ProducerName(kVictim));
      const ProducerStats& v = g_stats->producer[kVictim];
      if (FLAGS_kill_in_send) {
        // Put us and the victim on different CPUs (so our spin cannot keep
        // it from running), ask for a burst and fire as soon as it starts.
        cpu_set_t saved;
        const bool pinned = PinApart(victim->pid, &saved);
        g_stats->producer[kVictim].burst_request.store(
            1, std::memory_order_relaxed);
        const int64_t give_up = NowNs() + 50000000;  // spin at most 50 ms
        while (v.burst_active.load(std::memory_order_acquire) == 0 &&
               NowNs() < give_up) {
        }
        kill(victim->pid, SIGKILL);
        if (pinned) sched_setaffinity(0, sizeof(saved), &saved);
      } else {
        kill(victim->pid, SIGKILL);
      }
      Reap(victim, true);
      g_stats->victim_killed.store(1, std::memory_order_release);
      Event("parent", absl::StrFormat("SIGKILL P%d (pid %d): %s", kVictim,
                                      victim->pid,
                                      DescribeStatus(victim->status)));
      Event("parent",
            absl::StrFormat("  it died %s, after %u sends returned",
                            PhaseName(v.phase.load(std::memory_order_acquire)),
                            v.sent.load(std::memory_order_acquire)));
      // What the kernel left: its robust list marked the slot OWNER_DIED.
      const internal::RegionView& region = channel->queue().region();
      const int slot = v.slot.load(std::memory_order_relaxed);
      const uint32_t word = region.sender(slot)->ownership.RawOwnerWord();
      int free_slots = 0;
      for (uint32_t s = 0; s < config.num_senders; ++s) {
        if (region.sender(s)->ownership.RawOwnerWord() == 0) ++free_slots;
      }
      g_stats->victim_slot_owner_died.store(OwnerDied(word) ? 1 : 0);
      g_stats->free_slots_before_replacement.store(free_slots);
      Event("parent", absl::StrFormat("  its sender slot %d: word 0x%08x%s; "
                                      "%d of %u slots free",
                                      slot, word,
                                      OwnerDied(word) ? " (OWNER_DIED)" : "",
                                      free_slots, config.num_senders));
      if (Spawn(ProducerName(kReplacement), [] {
            return RunProducer(channel_name, kReplacement, true);
          }) == nullptr) {
        return Fail("fork");
      }
      if (!WaitFor(g_stats->producer[kReplacement].ready,
                   &g_stats->producer[kReplacement].setup_failed,
                   "the replacement producer", &error)) {
        return Fail(error);
      }
    }
    SleepNs(5000000);
  }

  // Stop: producers first, then let the consumer drain and summarise.
  g_stats->stop.store(1, std::memory_order_release);
  std::vector<std::string> failures;
  for (Child& child : children) {
    if (child.name == "consumer" || !child.alive) continue;
    if (!ReapWithTimeout(&child, 3000000000LL)) {
      return Fail(child.name + " did not stop within 3 s");
    }
  }
  Event("parent", "producers stopped");
  g_stats->producers_done.store(1, std::memory_order_release);
  Child* consumer = FindChild("consumer");
  if (!ReapWithTimeout(consumer, 5000000000LL)) {
    return Fail("the consumer did not finish within 5 s");
  }

  // Verdict.
  for (const Child& child : children) {
    const bool is_victim = child.name == ProducerName(kVictim);
    if (is_victim) {
      if (!WIFSIGNALED(child.status) || WTERMSIG(child.status) != SIGKILL) {
        failures.push_back(child.name + " " + DescribeStatus(child.status));
      }
    } else if (!WIFEXITED(child.status) || WEXITSTATUS(child.status) != 0) {
      failures.push_back(child.name + " " + DescribeStatus(child.status));
    }
  }
  const ProducerStats& r = g_stats->producer[kReplacement];
  if (g_stats->free_slots_before_replacement.load() != 0) {
    failures.push_back(
        "a sender slot was free before the replacement: no proof of recovery");
  }
  if (r.slot.load() != g_stats->producer[kVictim].slot.load() ||
      g_stats->recoveries.load() != 1) {
    failures.push_back("the replacement did not reclaim the dead slot");
  }
  if (!PrintDump(*channel, channel_name)) {
    failures.push_back("the channel dump failed");
  }
  const std::string name = channel_name;
  CleanUp();  // removes the channel
  Out(absl::StrFormat("channel %s removed\n", name));

  if (!failures.empty()) {
    std::string why;
    for (const std::string& f : failures) why += (why.empty() ? "" : "; ") + f;
    Out("\nRESULT: FAIL: " + why + "\n");
    return 1;
  }
  Out(absl::StrFormat(
      "\nRESULT: PASS: streams in order and complete, P%d killed "
      "mid-stream, P%d reclaimed its slot\n",
      kVictim, kReplacement));
  return 0;
}

}  // namespace
}  // namespace demo
}  // namespace lockless

int main(int argc, char** argv) {
  gflags::SetUsageMessage(
      "Producers, a killed producer, recovery and a woken consumer over one "
      "shared-memory channel.");
  gflags::ParseCommandLineFlags(&argc, &argv, true);
  return lockless::demo::Main();
}
