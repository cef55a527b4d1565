#include "testing/chaos_children.h"

#include <time.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_format.h"
#include "index/queue_index.h"
#include "ipc/internal/queue_layout.h"
#include "ipc/lockless_queue.h"
#include "ipc/shm_channel.h"
#include "testing/chaos_payload.h"
#include "testing/queue_invariants.h"

namespace lockless {
namespace testing {
namespace {

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

void SleepFor(std::chrono::nanoseconds duration) {
  const timespec pause = {static_cast<time_t>(duration.count() / 1000000000),
                          static_cast<long>(duration.count() % 1000000000)};
  nanosleep(&pause, nullptr);
}

// Ends the whole sender process (from any of its threads): the reason goes
// into the record first, so the supervisor can report it after reaping.
[[noreturn]] void FailStream(StreamRecord& record, const std::string& why) {
  WriteFailureText(why, record.failure);
  // relaxed: read by the supervisor after waitpid, which orders it.
  record.phase.store(StreamPhase::kFailed, std::memory_order_relaxed);
  _exit(kChildFailed);
}

// ------------------------------------------------------------- senders

void SendForever(const LocklessQueue& queue, const ChaosBoard& board,
                 StreamRecord& record) {
  // relaxed here and below: this thread is the record's only writer, and the
  // supervisor reads it after reaping the process.
  const uint32_t stream = record.stream.load(std::memory_order_relaxed);
  record.phase.store(StreamPhase::kMakingSender, std::memory_order_relaxed);
  const int64_t start_ns = NowNs();
  std::optional<Sender> sender;
  for (uint64_t call = 1; !sender.has_value(); ++call) {
    const int64_t call_start_ns = NowNs();
    absl::StatusOr<Sender> made = queue.MakeSender();
    const int64_t call_ns = NowNs() - call_start_ns;
    board.LogMakeSenderCall(call_ns);
    record.make_sender_calls.store(call, std::memory_order_relaxed);
    if (made.ok()) {
      sender.emplace(*std::move(made));
    } else if (absl::IsResourceExhausted(made.status())) {
      // Every slot is taken by a live or dying sender, or is a dead one
      // whose recovery waits for a stopped sender: legitimate, retry. The
      // pause only spaces the retries; the watchdog bounds them.
      record.resource_exhausted.fetch_add(1, std::memory_order_relaxed);
      SleepFor(std::chrono::microseconds(500));
    } else {
      FailStream(record, absl::StrFormat(
                             "MakeSender call %u (%.3f ms, %.3f ms since "
                             "the first) returned %s",
                             call, call_ns / 1e6, (NowNs() - start_ns) / 1e6,
                             made.status().ToString()));
    }
  }
  record.claim_ns.store(NowNs() - start_ns, std::memory_order_relaxed);
  record.phase.store(StreamPhase::kSending, std::memory_order_relaxed);

  const size_t max_size = sender->max_size();
  std::vector<unsigned char> buffer(max_size);
  for (uint64_t sequence = 0;; ++sequence) {
    SendResult result;
    // Both ways of sending: a copy from our buffer, and zero-copy straight
    // into the scratch message (so deaths land inside payload writes too).
    if (sequence % 2 == 0) {
      const size_t length =
          FillChaosMessage(stream, sequence, buffer.data(), max_size);
      result = sender->Send(buffer.data(), length);
    } else {
      const size_t length =
          FillChaosMessage(stream, sequence, sender->data(), max_size);
      result = sender->Send(length);
    }
    if (result != SendResult::kOk) {
      FailStream(record, absl::StrFormat("Send of sequence %u returned %s",
                                         sequence, SendResultName(result)));
    }
    record.sent.store(sequence + 1, std::memory_order_relaxed);
  }
}

struct Progress {
  StreamPhase phase;
  uint64_t sent;
  bool operator==(const Progress& other) const {
    return phase == other.phase && sent == other.sent;
  }
};

Progress ProgressOf(const StreamRecord& record) {
  // relaxed: a progress sample, ordered with nothing.
  return Progress{record.phase.load(std::memory_order_relaxed),
                  record.sent.load(std::memory_order_relaxed)};
}

}  // namespace

int RunSenderProcess(const ChildContext& context, uint32_t first_record,
                     int num_threads) {
  alarm(context.hang_s);
  StreamRecord& first = context.board->stream_record(first_record);
  absl::StatusOr<Channel> channel = Channel::OpenOrCreate(
      context.channel_name, context.config, context.channel_options);
  if (!channel.ok()) {
    FailStream(first, absl::StrFormat("opening the channel: %s",
                                      channel.status().ToString()));
  }
  std::vector<std::thread> threads;
  for (int t = 0; t < num_threads; ++t) {
    threads.emplace_back(
        SendForever, std::cref(channel->queue()), std::cref(*context.board),
        std::ref(context.board->stream_record(first_record + t)));
  }
  // The watchdog: re-arm the alarm each time every thread has moved on
  // (claimed its sender or sent more) since the last re-arm. Threads that
  // never return are never joined; the process ends by SIGKILL or _exit.
  std::vector<Progress> armed_at(num_threads);
  for (int t = 0; t < num_threads; ++t) {
    armed_at[t] = ProgressOf(context.board->stream_record(first_record + t));
  }
  while (true) {
    SleepFor(std::chrono::milliseconds(100));
    bool all_moved = true;
    for (int t = 0; t < num_threads && all_moved; ++t) {
      all_moved =
          !(ProgressOf(context.board->stream_record(first_record + t)) ==
            armed_at[t]);
    }
    if (!all_moved) continue;
    alarm(context.hang_s);
    for (int t = 0; t < num_threads; ++t) {
      armed_at[t] = ProgressOf(context.board->stream_record(first_record + t));
    }
  }
}

// ------------------------------------------------------------- reader

namespace {

class Reader {
 public:
  Reader(const ReadOnlyChannel& queue, const ChaosBoard& board)
      : queue_(queue),
        board_(board),
        record_(board.header().reader),
        buffer_(queue.config().message_data_size_bytes) {}

  int Run(int hang_s) {
    const QueueIndex latest = queue_.LatestQueueIndex();
    next_ = latest.valid() ? latest : queue_.MakeQueueIndex(0);
    for (uint64_t i = 1;; ++i) {
      if (absl::Status status = ReadOne(); !status.ok()) {
        Publish();
        WriteFailureText(status.ToString(), record_.failure);
        record_.failed.store(1, std::memory_order_relaxed);
        return kChildFailed;
      }
      if (i % 1024 != 0) continue;
      Publish();
      alarm(hang_s);
      // relaxed: a request to stop; nothing else is passed with it.
      if (record_.stop_requested.load(std::memory_order_relaxed) != 0) {
        return kChildOk;
      }
    }
  }

 private:
  absl::Status ReadOne() {
    MessageInfo info;
    const ReadResult result =
        queue_.Read(next_, &info, buffer_.data(), buffer_.size());
    switch (result) {
      case ReadResult::kGood:
        ++good_;
        return CheckGood(info);
      case ReadResult::kNothingNew:
        ++nothing_new_;
        // Caught up: nap instead of spinning. A spinning reader takes a core
        // from the senders (2 cores here), and recovery racing senders that
        // really run is what the suite is after.
        SleepFor(std::chrono::microseconds(20));
        return absl::OkStatus();
      case ReadResult::kTooOld:
      case ReadResult::kOverwrote:
        ++too_old_;
        Resynchronise();
        return absl::OkStatus();
      case ReadResult::kCorrupted:
        break;
    }
    return absl::DataLossError(absl::StrFormat("reader: Read(%s) returned %s",
                                               next_.DebugString(),
                                               ReadResultName(result)));
  }

  absl::Status CheckGood(const MessageInfo& info) {
    if (info.queue_index != next_) {
      return absl::DataLossError(
          absl::StrFormat("reader: Read(%s) returned GOOD for %s",
                          next_.DebugString(), info.queue_index.DebugString()));
    }
    absl::StatusOr<ChaosMessageId> id =
        CheckChaosMessage(buffer_.data(), info.length);
    if (!id.ok()) {
      return absl::DataLossError(absl::StrFormat("reader: GOOD read of %s: %s",
                                                 next_.DebugString(),
                                                 id.status().message()));
    }
    // acquire: after the read, so a message's stream is already counted
    // (the supervisor counted it before forking its sender).
    const uint32_t streams =
        board_.header().streams_started.load(std::memory_order_acquire);
    if (absl::Status status = order_.Observe(info, *id, streams);
        !status.ok()) {
      return absl::DataLossError(absl::StrCat("reader: ", status.message()));
    }
    next_ = next_.Increment();
    return absl::OkStatus();
  }

  // Jumps to a quarter ring behind the newest message, never backwards (the
  // order checks assume increasing queue indices).
  void Resynchronise() {
    const QueueIndex latest = queue_.LatestQueueIndex();
    const uint32_t max_index = next_.max_index();
    QueueIndex candidate = next_.Increment();
    if (latest.valid()) {
      const QueueIndex behind_latest =
          latest.DecrementBy(queue_.config().queue_size / 4);
      const uint32_t ahead = behind_latest.DistanceFrom(next_);
      if (ahead > 0 && ahead < max_index / 2) candidate = behind_latest;
    }
    next_ = candidate;
  }

  void Publish() {
    // relaxed: counts, read by the supervisor after reaping us.
    record_.good.store(good_, std::memory_order_relaxed);
    record_.too_old.store(too_old_, std::memory_order_relaxed);
    record_.nothing_new.store(nothing_new_, std::memory_order_relaxed);
  }

  const ReadOnlyChannel& queue_;
  const ChaosBoard& board_;
  ReaderRecord& record_;
  std::vector<unsigned char> buffer_;
  RingOrderChecker order_;
  QueueIndex next_;
  uint64_t good_ = 0;
  uint64_t too_old_ = 0;
  uint64_t nothing_new_ = 0;
};

}  // namespace

int RunReaderProcess(const ChildContext& context) {
  alarm(context.hang_s);
  ReaderRecord& record = context.board->header().reader;
  // Read-only, as a real reader would: a stray write would fault.
  absl::StatusOr<ReadOnlyChannel> channel = ReadOnlyChannel::Open(
      context.channel_name, context.config, context.channel_options);
  if (!channel.ok()) {
    WriteFailureText(absl::StrCat("reader: opening the channel: ",
                                  channel.status().ToString()),
                     record.failure);
    record.failed.store(1, std::memory_order_relaxed);
    return kChildFailed;
  }
  return Reader(*channel, *context.board).Run(context.hang_s);
}

// ------------------------------------------------------------- final check

namespace {

absl::Status FinalCheck(const LocklessQueue& queue, const ChaosBoard& board,
                        uint32_t first_stream) {
  CheckerRecord& record = board.header().checker;
  const QueueConfig& config = queue.config();
  // Every slot claimable now: nobody is alive to hold one, so even a
  // ResourceExhausted would mean a slot leaked.
  std::vector<Sender> senders;
  for (uint32_t s = 0; s < config.num_senders; ++s) {
    const int64_t start_ns = NowNs();
    absl::StatusOr<Sender> sender = queue.MakeSender();
    board.LogMakeSenderCall(NowNs() - start_ns);
    if (!sender.ok()) {
      return absl::Status(
          sender.status().code(),
          absl::StrFormat("final claim %u of %u (%.3f ms): %s", s + 1,
                          config.num_senders, (NowNs() - start_ns) / 1e6,
                          sender.status().message()));
    }
    senders.push_back(*std::move(sender));
    // relaxed: read after waitpid.
    record.claimed.store(s + 1, std::memory_order_relaxed);
  }
  // Right after recovery with nobody mid-send: the strict check.
  if (absl::Status owned = CheckEveryMessageOwnedOnce(queue); !owned.ok()) {
    return absl::Status(owned.code(), absl::StrCat("after the final claims: ",
                                                   owned.message()));
  }

  // One message from each sender; with no other sender alive the indices
  // follow LatestQueueIndex exactly (recovery advanced it past any slot a
  // dead sender published).
  std::vector<unsigned char> buffer(config.message_data_size_bytes);
  const QueueIndex latest_before = queue.LatestQueueIndex();
  QueueIndex expected = latest_before.valid() ? latest_before.Increment()
                                              : queue.MakeQueueIndex(0);
  for (uint32_t s = 0; s < senders.size(); ++s) {
    const size_t length =
        FillChaosMessage(first_stream + s, 0, buffer.data(), buffer.size());
    MessageInfo info;
    const SendResult result = senders[s].Send(buffer.data(), length, &info);
    if (result != SendResult::kOk) {
      return absl::InternalError(absl::StrFormat("final send from slot %u: %s",
                                                 senders[s].slot(),
                                                 SendResultName(result)));
    }
    if (info.queue_index != expected) {
      return absl::DataLossError(absl::StrFormat(
          "final send %u went to %s, expected %s (LatestQueueIndex was %s "
          "after recovery)",
          s, info.queue_index.DebugString(), expected.DebugString(),
          latest_before.DebugString()));
    }
    expected = expected.Increment();
  }

  // Every index still in the ring: GOOD, valid, in order.
  const QueueIndex latest = queue.LatestQueueIndex();
  const uint32_t in_ring = std::min(latest.index() + 1, config.queue_size);
  QueueIndex index = latest.DecrementBy(in_ring - 1);
  RingOrderChecker order;
  const uint32_t streams =
      board.header().streams_started.load(std::memory_order_acquire);
  for (uint32_t i = 0; i < in_ring; ++i, index = index.Increment()) {
    MessageInfo info;
    const ReadResult result =
        queue.Read(index, &info, buffer.data(), buffer.size());
    if (result != ReadResult::kGood) {
      return absl::DataLossError(absl::StrFormat(
          "final read of %s (newest %s): %s", index.DebugString(),
          latest.DebugString(), ReadResultName(result)));
    }
    absl::StatusOr<ChaosMessageId> id =
        CheckChaosMessage(buffer.data(), info.length);
    if (!id.ok()) {
      return absl::DataLossError(absl::StrFormat(
          "final read of %s: %s", index.DebugString(), id.status().message()));
    }
    if (absl::Status status = order.Observe(info, *id, streams); !status.ok()) {
      return absl::DataLossError(
          absl::StrCat("final read: ", status.message()));
    }
    const uint32_t from_end = in_ring - 1 - i;
    if (from_end < senders.size() &&
        id->stream != first_stream + senders.size() - 1 - from_end) {
      return absl::DataLossError(absl::StrFormat(
          "final read of %s: stream %u, expected the check's own stream %u",
          index.DebugString(), id->stream,
          first_stream + senders.size() - 1 - from_end));
    }
    record.ring_good.store(i + 1, std::memory_order_relaxed);
  }
  return absl::OkStatus();  // `senders` release their slots here.
}

}  // namespace

int RunFinalCheck(const ChildContext& context, uint32_t first_stream) {
  alarm(context.hang_s);
  CheckerRecord& record = context.board->header().checker;
  absl::StatusOr<Channel> channel = Channel::OpenOrCreate(
      context.channel_name, context.config, context.channel_options);
  absl::Status status = channel.status();
  if (status.ok()) {
    status = FinalCheck(channel->queue(), *context.board, first_stream);
  }
  if (status.ok()) return kChildOk;
  WriteFailureText(status.ToString(), record.failure);
  return kChildFailed;
}

}  // namespace testing
}  // namespace lockless
