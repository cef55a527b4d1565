#include "testing/queue_racer.h"

#include <sys/mman.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

namespace lockless {
namespace testing {
namespace {

// ------------------------------------------------------------- payloads

// The first kMinMessageBytes of every message: who sent it and its number.
struct PayloadHeader {
  uint64_t thread_index;
  uint64_t counter;
};
static_assert(sizeof(PayloadHeader) == QueueRacer::kMinMessageBytes);

// Lengths vary per message (between kMinMessageBytes and the maximum) so that
// a reader returning another message's length is caught too.
size_t PayloadLength(size_t max_size_bytes, uint64_t thread_index,
                     uint64_t counter) {
  const size_t span = max_size_bytes - QueueRacer::kMinMessageBytes + 1;
  return QueueRacer::kMinMessageBytes +
         static_cast<size_t>((thread_index * 7919 + counter * 13) % span);
}

unsigned char FillerByte(uint64_t thread_index, uint64_t counter, size_t i) {
  return static_cast<unsigned char>(thread_index * 131 + counter * 31 + i);
}

void FillPayload(unsigned char* data, size_t length, uint64_t thread_index,
                 uint64_t counter) {
  const PayloadHeader header{thread_index, counter};
  std::memcpy(data, &header, sizeof(header));
  for (size_t i = sizeof(header); i < length; ++i) {
    data[i] = FillerByte(thread_index, counter, i);
  }
}

PayloadHeader DecodeHeader(const unsigned char* data) {
  PayloadHeader header;
  std::memcpy(&header, data, sizeof(header));
  return header;
}

// Empty when every filler byte of the message (t, c) is right.
std::string CheckFiller(const unsigned char* data, size_t length,
                        uint64_t thread_index, uint64_t counter) {
  for (size_t i = sizeof(PayloadHeader); i < length; ++i) {
    if (data[i] != FillerByte(thread_index, counter, i)) {
      return absl::StrFormat("byte %u is 0x%02x, expected 0x%02x", i, data[i],
                             FillerByte(thread_index, counter, i));
    }
  }
  return "";
}

int64_t ToNs(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             t.time_since_epoch())
      .count();
}
int64_t ToNs(std::chrono::system_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             t.time_since_epoch())
      .count();
}

// ------------------------------------------------------------- sync helpers

// Gives the core to another thread while spinning: the suites oversubscribe
// a 2-core machine on purpose, and a spinner must not starve the thread it
// waits for. Not a sleep: progress is always re-checked on an atomic.
void SpinPause() { std::this_thread::yield(); }

// One-shot barrier: every participant returns from ArriveAndWait only after
// all of them arrived, so the writers start sending together.
class SpinBarrier {
 public:
  explicit SpinBarrier(int participants) : remaining_(participants) {}

  void ArriveAndWait() {
    // acq_rel / acquire: not needed for data (nothing is handed over through
    // the barrier), but cheap and keeps the barrier a true rendezvous.
    remaining_.fetch_sub(1, std::memory_order_acq_rel);
    while (remaining_.load(std::memory_order_acquire) > 0) SpinPause();
  }

 private:
  std::atomic<int> remaining_;
};

// The first few problems found by any thread, and a flag so every thread can
// stop early once something failed.
class Failures {
 public:
  static constexpr size_t kMaxKept = 20;

  void Add(std::string message) {
    failed_.store(true, std::memory_order_release);
    std::lock_guard<std::mutex> lock(mu_);
    if (messages_.size() < kMaxKept) {
      messages_.push_back(std::move(message));
    } else {
      ++dropped_;
    }
  }

  bool failed() const { return failed_.load(std::memory_order_acquire); }

  absl::Status ToStatus() const {
    std::lock_guard<std::mutex> lock(mu_);
    if (messages_.empty()) return absl::OkStatus();
    std::string text = absl::StrJoin(messages_, "\n  ");
    if (dropped_ > 0) absl::StrAppend(&text, "\n  ... and ", dropped_, " more");
    return absl::InternalError(absl::StrCat("queue racer found ",
                                            messages_.size() + dropped_,
                                            " problem(s):\n  ", text));
  }

 private:
  std::atomic<bool> failed_{false};
  mutable std::mutex mu_;
  std::vector<std::string> messages_;
  uint64_t dropped_ = 0;
};

// What a writer learnt from Send about one of its messages.
struct SentRecord {
  QueueIndex queue_index;
  int64_t monotonic_ns = 0;
  int64_t realtime_ns = 0;
  size_t length = 0;
};

// One Read of one queue index.
struct ReadRecord {
  ReadResult result = ReadResult::kNothingNew;
  PayloadHeader payload{};
  size_t length = 0;
  int64_t monotonic_ns = 0;
  int64_t realtime_ns = 0;
};

// Reads queue index `q` into `record`, checking everything that can be
// checked without knowing who sent it. Returns a problem description, or "".
std::string ReadOne(const LocklessQueue& queue, QueueIndex q,
                    std::vector<unsigned char>& buffer, ReadRecord* record) {
  MessageInfo info;
  record->result = queue.Read(q, &info, buffer.data(), buffer.size());
  if (record->result != ReadResult::kGood) return "";
  if (info.queue_index != q) {
    return absl::StrFormat("Read(%s) returned GOOD with info for %s",
                           q.DebugString(), info.queue_index.DebugString());
  }
  if (info.length < QueueRacer::kMinMessageBytes ||
      info.length > buffer.size()) {
    return absl::StrFormat("Read(%s) returned GOOD with length %u",
                           q.DebugString(), info.length);
  }
  record->payload = DecodeHeader(buffer.data());
  record->length = info.length;
  record->monotonic_ns = ToNs(info.monotonic_sent_time);
  record->realtime_ns = ToNs(info.realtime_sent_time);
  const std::string filler =
      CheckFiller(buffer.data(), info.length, record->payload.thread_index,
                  record->payload.counter);
  if (!filler.empty()) {
    return absl::StrFormat("Read(%s) returned GOOD with a torn payload "
                           "(thread %u, counter %u): %s",
                           q.DebugString(), record->payload.thread_index,
                           record->payload.counter, filler);
  }
  return "";
}

}  // namespace

// ------------------------------------------------------------- QueueRacer

QueueRacer::QueueRacer(const LocklessQueue& queue, const RacerOptions& options)
    : queue_(queue), options_(options) {}

uint64_t QueueRacer::MessagesPerThread(int write_wrap_count) const {
  const uint64_t threads = std::max(options_.num_threads, 1);
  const uint64_t per_lap =
      (uint64_t{queue_.config().queue_size} + threads - 1) / threads;
  return options_.num_messages_per_thread +
         static_cast<uint64_t>(std::max(write_wrap_count, 0)) * per_lap;
}

uint64_t QueueRacer::TotalMessages(int write_wrap_count) const {
  return MessagesPerThread(write_wrap_count) *
         static_cast<uint64_t>(std::max(options_.num_threads, 0));
}

bool QueueRacer::Wraps(int write_wrap_count) const {
  return TotalMessages(write_wrap_count) > queue_.config().queue_size;
}

absl::Status QueueRacer::RunIteration(bool race_reads, int write_wrap_count) {
  const QueueConfig& config = queue_.config();
  const uint32_t queue_size = config.queue_size;
  const size_t max_size_bytes = config.message_data_size_bytes;
  if (options_.num_threads < 1 ||
      static_cast<uint32_t>(options_.num_threads) > config.num_senders) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "num_threads is %d, the queue allows 1..%u senders",
        options_.num_threads, config.num_senders));
  }
  if (max_size_bytes < kMinMessageBytes) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "message_data_size_bytes is %u, the racer needs at least %u",
        max_size_bytes, kMinMessageBytes));
  }
  if (write_wrap_count < 0) {
    return absl::InvalidArgumentError("write_wrap_count must be >= 0");
  }
  const int num_threads = options_.num_threads;
  const uint64_t per_thread = MessagesPerThread(write_wrap_count);
  const uint64_t total = TotalMessages(write_wrap_count);
  const bool wraps = Wraps(write_wrap_count);
  // Far from the counter's own wrap, so distances below are unambiguous.
  const QueueIndex zero = QueueIndex::Zero(queue_size);
  if (total == 0 || total >= zero.max_index() / 4) {
    return absl::InvalidArgumentError(
        absl::StrFormat("an iteration of %u messages is not supported", total));
  }
  stats_ = RacerStats{};
  stats_.messages_sent = total;
  stats_.wrapped = wraps;

  // Nobody else sends during an iteration, so this is exact.
  const QueueIndex start_latest = queue_.LatestQueueIndex();
  const QueueIndex first =
      start_latest.valid() ? start_latest.Increment() : zero;
  // Messages of this iteration that `latest` says are published.
  auto count_published = [&](QueueIndex latest) -> uint64_t {
    if (!latest.valid() || latest == start_latest) return 0;
    return uint64_t{latest.DistanceFrom(first)} + 1;
  };

  Failures failures;
  // Writes started / finished, over all writers. seq_cst: the poller's
  // bracket argument (PollLatest) needs these ordered with the queue's own
  // atomics in a single total order.
  std::atomic<uint64_t> started{0};
  std::atomic<uint64_t> finished{0};
  // Set by this thread after joining every writer: all sends happened-before
  // any load that sees it.
  std::atomic<bool> writers_done{false};

  std::vector<std::vector<SentRecord>> sent(num_threads);
  for (auto& records : sent) records.resize(per_thread);
  std::vector<ReadRecord> raced(race_reads ? total : 0);
  uint64_t nothing_new_spins = 0;
  uint64_t polls = 0;

  SpinBarrier barrier(num_threads + (options_.poll_latest ? 1 : 0) +
                      (race_reads ? 1 : 0));

  // ---- writers
  auto writer = [&](int thread_index) {
    // The Sender is made (and destroyed) on this thread: its slot's robust
    // mutex belongs to the creating thread.
    absl::StatusOr<Sender> sender = queue_.MakeSender();
    barrier.ArriveAndWait();
    if (!sender.ok()) {
      failures.Add(absl::StrFormat("writer %d: MakeSender failed: %s",
                                   thread_index, sender.status().ToString()));
      return;
    }
    std::vector<unsigned char> buffer(max_size_bytes);
    std::vector<SentRecord>& records = sent[thread_index];
    for (uint64_t counter = 0; counter < per_thread; ++counter) {
      if (failures.failed()) return;
      const size_t length = PayloadLength(max_size_bytes, thread_index, counter);
      MessageInfo info;
      SendResult result;
      // Alternate the copying and the zero-copy forms of Send.
      if (counter % 2 == 0) {
        FillPayload(buffer.data(), length, thread_index, counter);
        started.fetch_add(1, std::memory_order_seq_cst);
        result = sender->Send(buffer.data(), length, &info);
      } else {
        FillPayload(static_cast<unsigned char*>(sender->data()), length,
                    thread_index, counter);
        started.fetch_add(1, std::memory_order_seq_cst);
        result = sender->Send(length, &info);
      }
      finished.fetch_add(1, std::memory_order_seq_cst);
      if (result != SendResult::kOk) {
        failures.Add(absl::StrFormat("writer %d: Send of message %u failed",
                                     thread_index, counter));
        return;
      }
      if (!info.queue_index.valid() || info.length != length) {
        failures.Add(absl::StrFormat(
            "writer %d: Send of message %u reported %s, length %u (sent %u)",
            thread_index, counter, info.queue_index.DebugString(),
            info.length, length));
        return;
      }
      records[counter] = SentRecord{info.queue_index,
                                    ToNs(info.monotonic_sent_time),
                                    ToNs(info.realtime_sent_time), length};
    }
  };

  // ---- poller
  //
  // The bracket. Let F = finished (loaded first), L = count_published(
  // LatestQueueIndex()) (second), S = started (third). Then F <= L <= S:
  //
  //  * next_queue_index only ever moves forward by one, by a CAS from q to
  //    q + 1, and only once ring slot q holds the message published for q
  //    (the publisher itself, or a helper that saw it there). So every queue
  //    index below next_queue_index is published, and L counts exactly the
  //    published indices below next_queue_index.
  //  * F <= L: a Send returns only after next_queue_index is past its index
  //    (its own step-6 CAS succeeded, or failed because a helper had already
  //    advanced it). Each of the F finished sends happened-before our load of
  //    `finished` (seq_cst RMW / load), hence before our LatestQueueIndex
  //    load, which therefore sees next_queue_index past all of their distinct
  //    indices: L >= F. The documented lag ("LatestQueueIndex may lag by one
  //    behind a send in flight") is the one message already in the ring whose
  //    next_queue_index CAS has not happened yet; its writer has not finished
  //    (and any writer that helped past it and then finished did advance
  //    next_queue_index), so the lag never shows in F: no "- 1" is needed,
  //    and a queue that lagged behind a *finished* send would be a bug.
  //  * L <= S: the message at each index below next_queue_index was published
  //    by a writer that incremented `started` before calling Send; that
  //    increment happens-before the ring CAS, which happens-before the
  //    next_queue_index CAS past it (acq_rel chain through the ring slot),
  //    which our acquire LatestQueueIndex load reads from (all writes to
  //    next_queue_index are RMWs, so earlier ones are in its release
  //    sequence). So our later seq_cst load of `started` sees them: S >= L.
  //
  // Also L never decreases from one poll to the next.
  auto poller = [&]() {
    barrier.ArriveAndWait();
    uint64_t previous = 0;
    while (!writers_done.load(std::memory_order_seq_cst) &&
           !failures.failed()) {
      const uint64_t finished_before = finished.load(std::memory_order_seq_cst);
      const QueueIndex latest = queue_.LatestQueueIndex();
      const uint64_t started_after = started.load(std::memory_order_seq_cst);
      const uint64_t published = count_published(latest);
      ++polls;
      if (published < finished_before || published > started_after) {
        failures.Add(absl::StrFormat(
            "poller: LatestQueueIndex() = %s counts %u messages of this "
            "iteration (first %s), outside [finished before %u, started "
            "after %u]",
            latest.DebugString(), published, first.DebugString(),
            finished_before, started_after));
        return;
      }
      if (published < previous) {
        failures.Add(absl::StrFormat(
            "poller: LatestQueueIndex() went backwards: %u then %u messages",
            previous, published));
        return;
      }
      previous = published;
      // No false guard reports while senders race (every 8th poll, so the
      // bracket checks above keep most of the poller's time).
      if (polls % 8 == 0) {
        if (absl::Status guards = queue_.CheckGuards(); !guards.ok()) {
          failures.Add(absl::StrCat("poller: CheckGuards mid-race: ",
                                    guards.message()));
          return;
        }
      }
    }
  };

  // ---- racing reader
  auto racing_reader = [&]() {
    std::vector<unsigned char> buffer(max_size_bytes);
    barrier.ArriveAndWait();
    for (uint64_t p = 0; p < total; ++p) {
      const QueueIndex q = first.IncrementBy(static_cast<uint32_t>(p));
      ReadRecord& record = raced[p];
      while (true) {
        // Loaded before the Read: if it is already true, every send
        // happened-before the Read, which must then see message q.
        const bool done = writers_done.load(std::memory_order_seq_cst);
        const std::string problem = ReadOne(queue_, q, buffer, &record);
        if (!problem.empty()) {
          failures.Add("racing reader: " + problem);
          return;
        }
        if (record.result != ReadResult::kNothingNew) break;
        if (done) {
          failures.Add(absl::StrFormat(
              "racing reader: Read(%s) is NOTHING_NEW after every writer "
              "finished (message %u of %u)",
              q.DebugString(), p, total));
          return;
        }
        if (failures.failed()) return;
        ++nothing_new_spins;
        SpinPause();
      }
      if (record.result == ReadResult::kCorrupted) {
        failures.Add(absl::StrFormat("racing reader: Read(%s) is CORRUPTED",
                                     q.DebugString()));
        return;
      }
      if ((record.result == ReadResult::kTooOld ||
           record.result == ReadResult::kOverwrote) &&
          !wraps) {
        failures.Add(absl::StrFormat(
            "racing reader: Read(%s) is %s, but this iteration sends "
            "only %u messages into a ring of %u",
            q.DebugString(), ReadResultName(record.result), total,
            queue_size));
        return;
      }
    }
  };

  {
    std::vector<std::thread> writers;
    writers.reserve(num_threads);
    std::optional<std::thread> poll_thread;
    std::optional<std::thread> read_thread;
    if (options_.poll_latest) poll_thread.emplace(poller);
    if (race_reads) read_thread.emplace(racing_reader);
    for (int t = 0; t < num_threads; ++t) writers.emplace_back(writer, t);
    for (std::thread& thread : writers) thread.join();
    writers_done.store(true, std::memory_order_seq_cst);
    if (poll_thread) poll_thread->join();
    if (read_thread) read_thread->join();
  }
  stats_.nothing_new_spins = nothing_new_spins;
  stats_.polls = polls;
  if (failures.failed()) return failures.ToStatus();
  // Nobody wrote past a payload: every guard is intact.
  if (absl::Status guards = queue_.CheckGuards(); !guards.ok()) {
    return absl::InternalError(
        absl::StrCat("CheckGuards after the race: ", guards.message()));
  }

  // ---- what the writers were told: exactly the iteration's indices, each
  // once, increasing per writer, with increasing send times per writer.
  struct Origin {
    int thread_index = -1;
    uint64_t counter = 0;
  };
  std::vector<Origin> origin(total);
  for (int t = 0; t < num_threads && !failures.failed(); ++t) {
    for (uint64_t c = 0; c < per_thread; ++c) {
      const SentRecord& record = sent[t][c];
      const uint64_t position = record.queue_index.DistanceFrom(first);
      if (position >= total || origin[position].thread_index != -1) {
        failures.Add(absl::StrFormat(
            "writer %d message %u was sent at %s: outside the iteration "
            "[%s, +%u) or reported twice",
            t, c, record.queue_index.DebugString(), first.DebugString(),
            total));
        break;
      }
      origin[position] = Origin{t, c};
      if (c > 0) {
        const SentRecord& previous = sent[t][c - 1];
        if (record.queue_index.DistanceFrom(first) <=
            previous.queue_index.DistanceFrom(first)) {
          failures.Add(absl::StrFormat(
              "writer %d: message %u went to %s, not after message %u at %s",
              t, c, record.queue_index.DebugString(), c - 1,
              previous.queue_index.DebugString()));
          break;
        }
      }
    }
  }
  if (failures.failed()) return failures.ToStatus();

  // ---- read everything back now that the queue is quiet
  std::vector<ReadRecord> settled(total);
  {
    std::vector<unsigned char> buffer(max_size_bytes);
    for (uint64_t p = 0; p < total; ++p) {
      const QueueIndex q = first.IncrementBy(static_cast<uint32_t>(p));
      const std::string problem = ReadOne(queue_, q, buffer, &settled[p]);
      if (!problem.empty()) {
        failures.Add("reader: " + problem);
        break;
      }
      // After the writers, the ring holds exactly the last queue_size
      // messages.
      const bool in_ring = total - p <= queue_size;
      const ReadResult expected =
          in_ring ? ReadResult::kGood : ReadResult::kTooOld;
      if (settled[p].result != expected) {
        failures.Add(absl::StrFormat(
            "reader: Read(%s) (message %u of %u, ring of %u) is %s, "
            "expected %s",
            q.DebugString(), p, total, queue_size,
            ReadResultName(settled[p].result), ReadResultName(expected)));
        break;
      }
    }
  }
  if (failures.failed()) return failures.ToStatus();

  // Checks one pass of reads (settled, or raced) against what was sent.
  // `gap_free_from_start`: every writer's counters appear 0, 1, 2, ... with
  // no gap. `gap_free_suffix`: each writer's counters form one gap-free run
  // that ends with its last message. Otherwise they only strictly increase.
  auto check_pass = [&](const char* name, const std::vector<ReadRecord>& reads,
                        bool gap_free_from_start, bool gap_free_suffix) {
    std::vector<std::optional<uint64_t>> last_counter(num_threads);
    uint64_t good = 0;
    uint64_t too_old = 0;
    std::optional<int64_t> last_monotonic_ns;
    std::optional<int64_t> last_realtime_ns;
    for (uint64_t p = 0; p < total; ++p) {
      const QueueIndex q = first.IncrementBy(static_cast<uint32_t>(p));
      const ReadRecord& read = reads[p];
      // Settled reads never race a sender, so only racing ones say OVERWROTE.
      if (read.result == ReadResult::kTooOld ||
          read.result == ReadResult::kOverwrote) {
        ++too_old;
        continue;
      }
      if (read.result != ReadResult::kGood) {
        failures.Add(absl::StrFormat("%s: Read(%s) is %s", name,
                                     q.DebugString(),
                                     ReadResultName(read.result)));
        return;
      }
      ++good;
      const Origin& from = origin[p];
      const SentRecord& sent_record = sent[from.thread_index][from.counter];
      if (read.payload.thread_index !=
              static_cast<uint64_t>(from.thread_index) ||
          read.payload.counter != from.counter ||
          read.length != sent_record.length ||
          read.monotonic_ns != sent_record.monotonic_ns ||
          read.realtime_ns != sent_record.realtime_ns) {
        failures.Add(absl::StrFormat(
            "%s: Read(%s) returned thread %u message %u (length %u, sent at "
            "%d / %d ns), but Send put thread %d message %u there (length "
            "%u, at %d / %d ns)",
            name, q.DebugString(), read.payload.thread_index,
            read.payload.counter, read.length, read.monotonic_ns,
            read.realtime_ns, from.thread_index, from.counter,
            sent_record.length, sent_record.monotonic_ns,
            sent_record.realtime_ns));
        return;
      }
      if (last_monotonic_ns && read.monotonic_ns <= *last_monotonic_ns) {
        failures.Add(absl::StrFormat(
            "%s: monotonic send time of %s (%d ns) is not after the previous "
            "readable message's (%d ns)",
            name, q.DebugString(), read.monotonic_ns, *last_monotonic_ns));
        return;
      }
      if (last_realtime_ns && read.realtime_ns < *last_realtime_ns) {
        failures.Add(absl::StrFormat(
            "%s: realtime send time of %s (%d ns) is before the previous "
            "readable message's (%d ns)",
            name, q.DebugString(), read.realtime_ns, *last_realtime_ns));
        return;
      }
      last_monotonic_ns = read.monotonic_ns;
      last_realtime_ns = read.realtime_ns;

      std::optional<uint64_t>& last = last_counter[from.thread_index];
      const uint64_t counter = read.payload.counter;
      bool ok;
      if (gap_free_from_start) {
        ok = counter == (last ? *last + 1 : 0);
      } else if (gap_free_suffix && last) {
        ok = counter == *last + 1;
      } else {
        ok = !last || counter > *last;
      }
      if (!ok) {
        failures.Add(absl::StrFormat(
            "%s: at %s writer %u's counter is %u after %s", name,
            q.DebugString(), from.thread_index, counter,
            last ? absl::StrCat(*last) : std::string("none")));
        return;
      }
      last = counter;
    }
    if (good + too_old != total) {
      failures.Add(absl::StrFormat("%s: %u GOOD + %u TOO_OLD != %u sent", name,
                                   good, too_old, total));
      return;
    }
    if (gap_free_from_start || gap_free_suffix) {
      for (int t = 0; t < num_threads; ++t) {
        if (gap_free_from_start && !last_counter[t]) {
          failures.Add(absl::StrFormat("%s: nothing read from writer %d",
                                       name, t));
          return;
        }
        if (last_counter[t] && *last_counter[t] != per_thread - 1) {
          failures.Add(absl::StrFormat(
              "%s: writer %d's last readable message is %u, it sent %u", name,
              t, *last_counter[t], per_thread));
          return;
        }
      }
    }
    if (&reads == &settled) {
      stats_.good_reads = good;
      stats_.too_old_reads = too_old;
    } else {
      stats_.racing_good_reads = good;
      stats_.racing_too_old_reads = too_old;
    }
  };

  check_pass("settled reads", settled, /*gap_free_from_start=*/!wraps,
             /*gap_free_suffix=*/wraps);
  if (race_reads && !failures.failed()) {
    check_pass("racing reads", raced, /*gap_free_from_start=*/!wraps,
               /*gap_free_suffix=*/false);
    // A message the racing reader found overwritten stays overwritten.
    for (uint64_t p = 0; p < total && !failures.failed(); ++p) {
      if ((raced[p].result == ReadResult::kTooOld ||
           raced[p].result == ReadResult::kOverwrote) &&
          settled[p].result != ReadResult::kTooOld) {
        failures.Add(absl::StrFormat(
            "racing reader: Read(%s) was %s, but it is %s afterwards",
            first.IncrementBy(static_cast<uint32_t>(p)).DebugString(),
            ReadResultName(raced[p].result),
            ReadResultName(settled[p].result)));
      }
    }
  }
  if (failures.failed()) return failures.ToStatus();

  const QueueIndex expected_latest =
      first.IncrementBy(static_cast<uint32_t>(total - 1));
  const QueueIndex latest = queue_.LatestQueueIndex();
  if (latest != expected_latest) {
    return absl::InternalError(absl::StrFormat(
        "LatestQueueIndex() is %s after %u messages from %s; expected %s",
        latest.DebugString(), total, first.DebugString(),
        expected_latest.DebugString()));
  }
  return absl::OkStatus();
}

// ------------------------------------------------------------- QueueMemory

}  // namespace testing
}  // namespace lockless
