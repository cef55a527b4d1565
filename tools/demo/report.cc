#include "tools/demo/report.h"

#include <algorithm>
#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_format.h"
#include "index/queue_index.h"
#include "ipc/internal/queue_layout.h"
#include "ipc/queue_printer.h"
#include "tools/demo/message.h"
#include "tools/demo/output.h"

namespace lockless {
namespace demo {
namespace {

uint32_t Percentile(std::vector<uint32_t>* values, double fraction) {
  if (values->empty()) return 0;
  const size_t k = std::min(values->size() - 1,
                            static_cast<size_t>(fraction * values->size()));
  std::nth_element(values->begin(), values->begin() + k, values->end());
  return (*values)[k];
}

uint32_t Max(const std::vector<uint32_t>& values) {
  return values.empty() ? 0 : *std::max_element(values.begin(), values.end());
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

// The summary's row note for producer `id` ("stopped", "SIGKILLed", ...);
// adds to `failures` what does not add up, and for the killed victim sets
// `victim_text` to what happened to the message it was sending.
std::string JudgeStream(int id, bool killed, const ProducerStats& p,
                        const StreamTally& s,
                        std::vector<std::string>* failures,
                        std::string* victim_text) {
  const uint64_t sent = p.sent.load(std::memory_order_acquire);
  const int32_t phase = p.phase.load(std::memory_order_acquire);
  // Stream end: one past the last sequence received.
  const uint64_t end = s.received > 0 ? s.last + 1 : 0;
  std::string note;
  if (id == kVictim && killed) {
    // Sends that returned were all delivered; the message it was in the
    // middle of (if any) may or may not have been published.
    note = "SIGKILLed";
    if (end == sent + 1) {
      *victim_text = absl::StrFormat(
          "  P%d died %s with seq %u in flight: it was published (the\n"
          "  swap into the ring had happened), so it arrived: none lost.\n",
          id, PhaseName(phase), sent);
    } else if (end == sent && phase == kSending) {
      *victim_text = absl::StrFormat(
          "  P%d died %s with seq %u in flight. It was never\n"
          "  published (death before the swap into the ring): the one\n"
          "  message a death may lose. Every Send that returned arrived.\n",
          id, PhaseName(phase), sent);
    } else if (end == sent) {
      *victim_text = absl::StrFormat(
          "  P%d died %s, no send in flight: all %u sent arrived.\n", id,
          PhaseName(phase), sent);
    } else {
      note = "SIGKILLed; MISSING";
      failures->push_back(absl::StrFormat("P%d: sent %u, stream ends at %u",
                                          id, sent, end));
    }
  } else {
    if (s.received == sent && end == sent) {
      note = id == kReplacement ? "stopped (replaced P1)" : "stopped";
    } else {
      note = "MISMATCH";
      failures->push_back(absl::StrFormat(
          "P%d: sent %u, received %u, stream ends at %u", id, sent,
          s.received, end));
    }
  }
  if (s.gaps > 0) {
    failures->push_back(
        absl::StrFormat("P%d: %u sequence numbers missing", id, s.gaps));
  }
  return note;
}

}  // namespace

void PrintBanner(const DemoOptions& options, const QueueConfig& config,
                 bool replaced_stale, int dead_runs) {
  Out(absl::StrFormat(
      "lockless demo: %d producers -> channel %s -> 1 consumer, %.1f s\n",
      kInitialProducers, options.channel_name, options.duration_s));
  Out(absl::StrFormat(
      "  %u sender slots, %u watchers, ring of %u x %u-byte messages%s\n",
      config.num_senders, config.num_watchers, config.queue_size,
      config.message_data_size_bytes,
      replaced_stale ? " (replaced a stale one)" : ""));
  if (dead_runs > 0) {
    Out(absl::StrFormat("  removed %d channel(s) left by killed demo runs\n",
                        dead_runs));
  }
  Out(absl::StrFormat(
      "  each producer: %d msg/s, wake-up every %d messages\n"
      "  P%d is SIGKILLed at %.1f s%s; P%d replaces it (new id, seq from "
      "0)\n\n",
      options.rate_hz, options.batch, kVictim, options.kill_at_s,
      options.kill_in_send ? " (aimed at Send())" : "", kReplacement));
}

void PrintIntervalHeader() {
  Out("    time   P0/s   P1/s   P2/s   P3/s  wake/s  p50 us  max us  "
      "TOO_OLD\n");
}

void PrintIntervalLine(double t_s, double interval_s, ConsumerTally* tally) {
  std::string line = absl::StrFormat("  %6.1f", t_s);
  for (StreamTally& stream : tally->streams) {
    line += absl::StrFormat("  %5.0f", stream.interval / interval_s);
    stream.interval = 0;
  }
  const uint32_t p50 = Percentile(&tally->interval_latency_us, 0.5);
  const uint32_t max = Max(tally->interval_latency_us);
  line += absl::StrFormat("  %6.0f  %6u  %6u  %7u\n",
                          tally->interval_signals / interval_s, p50, max,
                          tally->interval_too_old);
  Out(line);
  tally->interval_latency_us.clear();
  tally->interval_signals = 0;
  tally->interval_too_old = 0;
}

bool PrintSummary(const SharedStats& stats, ConsumerTally* tally) {
  std::vector<std::string> failures;
  const bool killed = stats.victim_killed.load(std::memory_order_acquire) != 0;
  std::string victim_text;
  Out("\nsummary\n");
  Out("  producer  pid     slot   sent   recvd  gaps  last seq  how it "
      "ended\n");
  uint64_t total_sent = 0, total_received = 0, total_gaps = 0,
           total_skipped = 0;
  for (int id = 0; id < kMaxProducers; ++id) {
    const ProducerStats& p = stats.producer[id];
    const StreamTally& s = tally->streams[id];
    const uint64_t sent = p.sent.load(std::memory_order_acquire);
    total_sent += sent;
    total_received += s.received;
    total_gaps += s.gaps;
    total_skipped += s.skipped_by_resync;
    const std::string note =
        JudgeStream(id, killed, p, s, &failures, &victim_text);
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
      tally->order_violations, tally->inconsistent, tally->corrupted,
      tally->anomalies));
  Out(absl::StrFormat(
      "  TOO_OLD resyncs %u (%u queue indices skipped, %u seqs missed)\n",
      tally->too_old, tally->skipped_indices, total_skipped));
  const int recoveries = stats.recoveries.load(std::memory_order_relaxed);
  Out(absl::StrFormat("  recoveries %d (P%d's MakeSender recovered dead "
                      "P%d's sender slot)\n",
                      recoveries, kReplacement, kVictim));
  uint64_t signals_sent = 0, late = 0;
  for (const ProducerStats& p : stats.producer) {
    signals_sent += p.signals_sent.load(std::memory_order_relaxed);
    late += p.late.load(std::memory_order_relaxed);
  }
  Out(absl::StrFormat(
      "  wake-ups: %u signals received of %u sent; %u polls woken, %u "
      "empty\n",
      tally->signals, signals_sent, tally->polls_woken, tally->empty_wakeups));
  Out(absl::StrFormat(
      "  poll timeouts %u (found %u msgs); producer periods skipped "
      "(descheduled): %u\n",
      tally->timeouts, tally->timeout_messages, late));
  const uint32_t p50 = Percentile(&tally->all_latency_us, 0.5);
  const uint32_t p99 = Percentile(&tally->all_latency_us, 0.99);
  const uint32_t max = Max(tally->all_latency_us);
  Out(absl::StrFormat(
      "  latency send->read: p50 %u us, p99 %u us, max %u us (%u msgs)\n",
      p50, p99, max, tally->all_latency_us.size()));

  if (tally->order_violations > 0) {
    failures.push_back(
        absl::StrFormat("%u ordering violations", tally->order_violations));
  }
  if (tally->inconsistent > 0) {
    failures.push_back(
        absl::StrFormat("%u inconsistent messages", tally->inconsistent));
  }
  if (tally->corrupted > 0) {
    failures.push_back(absl::StrFormat("%u corrupted reads", tally->corrupted));
  }
  if (tally->anomalies > 0) {
    failures.push_back(absl::StrFormat("%u read anomalies", tally->anomalies));
  }
  if (tally->too_old > 0) {
    failures.push_back(absl::StrFormat(
        "%u TOO_OLD resyncs: the consumer fell behind (machine overloaded?)",
        tally->too_old));
  }
  if (recoveries != 1) {
    failures.push_back(
        absl::StrFormat("%d recoveries, expected 1", recoveries));
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

bool PrintDump(const Channel& channel, const DemoOptions& options) {
  const internal::RegionView& region = channel.queue().region();
  const void* memory = region.base();
  const size_t size = region.layout().total_size_bytes;
  Out(absl::StrFormat("\nchannel dump (ipc/queue_printer; as `dump "
                      "--summary --channel=%s`)\n",
                      options.channel_name));
  PrintOptions summary;
  summary.summary_only = true;
  std::string text;
  absl::Status status = PrintRegion(memory, size, summary, &text);
  if (!status.ok()) {
    Out("  DUMP FAILED: " + status.ToString() + "\n");
    return false;
  }
  Out(Indent(text));
  const QueueIndex latest = channel.queue().LatestQueueIndex();
  if (!latest.valid() || options.dump_messages <= 0) return true;
  Out(absl::StrFormat("last %d messages:\n", options.dump_messages));
  for (int back = options.dump_messages - 1; back >= 0; --back) {
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

void PrintFailed(const std::string& why) {
  Out("\nRESULT: FAIL: " + why + "\n");
}

void PrintPassed() {
  Out(absl::StrFormat(
      "\nRESULT: PASS: streams in order and complete, P%d killed "
      "mid-stream, P%d reclaimed its slot\n",
      kVictim, kReplacement));
}

}  // namespace demo
}  // namespace lockless
