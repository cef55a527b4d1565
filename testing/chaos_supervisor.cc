#include "testing/chaos_supervisor.h"

#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "ipc/internal/queue_layout.h"
#include "ipc/queue_printer.h"
#include "ipc/shm_channel.h"
#include "sync/robust_mutex.h"
#include "testing/chaos_board.h"
#include "testing/chaos_children.h"
#include "testing/chaos_processes.h"
#include "testing/queue_invariants.h"

namespace lockless {
namespace testing {
namespace {

using Clock = std::chrono::steady_clock;

constexpr std::chrono::milliseconds kReapTimeout{10000};
// MakeSender durations kept for the percentiles (8 bytes each; calls past
// this are counted, not stored).
constexpr uint64_t kCallLogCapacity = uint64_t{1} << 21;
constexpr size_t kMaxFailuresKept = 20;
// The run's channel, in a directory of its own (MakeChannelDirectory).
constexpr char kChannelName[] = "chaos";
// Sender processes that may be killed before they send.
constexpr int kDieAnywherePercent = 20;

void SleepMicroseconds(int64_t us) {
  const timespec pause = {static_cast<time_t>(us / 1000000),
                          static_cast<long>(us % 1000000 * 1000)};
  nanosleep(&pause, nullptr);
}

struct Child {
  enum class Kind { kSender, kReader };
  Kind kind = Kind::kSender;
  uint32_t block = 0;  // Sender: its records are block * threads + t.
  // Sender: may be killed before it sends (while starting, in MakeSender).
  bool may_die_anywhere = false;
  bool killed = false;
  bool stopped = false;
  Clock::time_point stopped_until;
};

class Supervisor {
 public:
  Supervisor(const ChaosOptions& options, const QueueConfig& config,
             const ChannelOptions& channel_options, const Channel& channel,
             const ChaosBoard& board, ChildGroup& group)
      : options_(options),
        threads_(options.threads_per_process),
        channel_(channel),
        board_(board),
        group_(group),
        random_(options.seed),
        context_{kChannelName, channel_options, config, &board,
                 options.hang_s} {
    report_.options = options;
    report_.num_sender_slots = config.num_senders;
    for (uint32_t b = board.num_stream_records() / threads_; b-- > 0;) {
      free_blocks_.push_back(b);
    }
  }

  ChaosReport Run() {
    StartReader();
    for (int p = 0; p < options_.sender_processes && ok(); ++p) StartSender();
    const Clock::time_point end = Clock::now() + options_.duration;
    while (ok() && Clock::now() < end) {
      // The spacing between actions is the workload, not synchronisation.
      SleepMicroseconds(Uniform(0, options_.max_kill_gap_us));
      ReapEnded();
      ContinueOrKillStopped();
      if (ok()) Act();
    }
    if (ok()) CalmDown();
    KillSendersAndStopReader();
    FinalCheck();
    CheckFinalState();
    Summarise();
    return std::move(report_);
  }

 private:
  bool ok() const { return report_.failures.empty(); }

  void Fail(std::string failure) {
    if (report_.failures.size() < kMaxFailuresKept) {
      report_.failures.push_back(std::move(failure));
    }
  }

  int64_t Uniform(int64_t low, int64_t high) {
    return std::uniform_int_distribution<int64_t>(low, high)(random_);
  }

  StreamRecord& Record(const Child& child, int t) const {
    return board_.stream_record(child.block * threads_ + t);
  }

  std::vector<pid_t> LiveSenders(bool include_stopped) const {
    std::vector<pid_t> pids;
    for (const auto& [pid, child] : children_) {
      if (child.kind == Child::Kind::kSender && !child.killed &&
          (include_stopped || !child.stopped)) {
        pids.push_back(pid);
      }
    }
    return pids;
  }

  // ---- Starting children.

  void StartReader() {
    const ChildContext context = context_;
    absl::StatusOr<pid_t> pid =
        group_.Spawn([context] { return RunReaderProcess(context); });
    if (!pid.ok())
      return Fail(absl::StrCat("spawn reader: ", pid.status().ToString()));
    reader_ = *pid;
    Child child;
    child.kind = Child::Kind::kReader;
    children_[*pid] = child;
  }

  void StartSender() {
    std::optional<uint32_t> block = FreeBlock();
    if (!block.has_value()) return;
    // Counted before the fork, so the reader knows every stream it can meet.
    const uint32_t first_stream = board_.header().streams_started.fetch_add(
        threads_, std::memory_order_seq_cst);
    for (int t = 0; t < threads_; ++t) {
      board_.ResetStreamRecord(*block * threads_ + t, first_stream + t);
    }
    const ChildContext context = context_;
    const uint32_t first_record = *block * threads_;
    const int threads = threads_;
    absl::StatusOr<pid_t> pid = group_.Spawn([context, first_record, threads] {
      return RunSenderProcess(context, first_record, threads);
    });
    if (!pid.ok()) {
      free_blocks_.push_back(*block);
      return Fail(absl::StrCat("spawn sender: ", pid.status().ToString()));
    }
    Child child;
    child.kind = Child::Kind::kSender;
    child.block = *block;
    child.may_die_anywhere = Uniform(0, 99) < kDieAnywherePercent;
    children_[*pid] = child;
    ++report_.sender_processes_started;
  }

  // Record blocks come back when their process is reaped. Killed processes
  // die promptly, so waiting for one is bounded.
  std::optional<uint32_t> FreeBlock() {
    const Clock::time_point deadline = Clock::now() + kReapTimeout;
    while (free_blocks_.empty()) {
      if (Clock::now() >= deadline) {
        Fail(
            "no free stream record: killed sender processes were not reaped "
            "in time");
        return std::nullopt;
      }
      ReapEnded();
      if (free_blocks_.empty()) SleepMicroseconds(1000);
    }
    const uint32_t block = free_blocks_.back();
    free_blocks_.pop_back();
    return block;
  }

  // ---- Killing and stopping.

  void Kill(pid_t pid, bool count) {
    Child& child = children_.at(pid);
    if (child.killed) return;
    if (count) {
      ++report_.kills;
      if (child.stopped) ++report_.kills_while_stopped;
      // Where the kill landed, sampled just before it (relaxed: a label).
      bool making = false, sending = true;
      for (int t = 0; t < threads_; ++t) {
        const StreamPhase phase =
            Record(child, t).phase.load(std::memory_order_relaxed);
        making = making || phase == StreamPhase::kMakingSender;
        sending = sending && phase == StreamPhase::kSending;
      }
      if (making) {
        ++report_.kills_in_make_sender;
      } else if (sending) {
        ++report_.kills_sending;
      } else {
        ++report_.kills_starting;
      }
    }
    kill(pid, SIGKILL);
    child.killed = true;
  }

  void Stop(pid_t pid, std::chrono::milliseconds duration) {
    Child& child = children_.at(pid);
    if (kill(pid, SIGSTOP) != 0) return;
    child.stopped = true;
    child.stopped_until = Clock::now() + duration;
  }

  std::chrono::milliseconds SenderStopDuration() {
    // Mostly short; a quarter long enough for many kills and recoveries to
    // happen around the stopped sender.
    if (Uniform(0, 3) > 0) return std::chrono::milliseconds(Uniform(1, 100));
    return std::chrono::milliseconds(
        Uniform(100, std::max(100, options_.max_stop_ms)));
  }

  void ContinueOrKillStopped() {
    const Clock::time_point now = Clock::now();
    std::vector<pid_t> due;
    for (const auto& [pid, child] : children_) {
      if (child.stopped && !child.killed && child.stopped_until <= now) {
        due.push_back(pid);
      }
    }
    for (pid_t pid : due) {
      Child& child = children_.at(pid);
      if (child.kind == Child::Kind::kSender && Uniform(0, 2) == 0) {
        Kill(pid, /*count=*/true);
        StartSender();
        continue;
      }
      kill(pid, SIGCONT);
      child.stopped = false;
      if (child.kind == Child::Kind::kSender) ++report_.continues;
    }
  }

  bool Sending(const Child& child) const {
    for (int t = 0; t < threads_; ++t) {
      // relaxed: a label for the workload's choices.
      if (Record(child, t).phase.load(std::memory_order_relaxed) !=
          StreamPhase::kSending) {
        return false;
      }
    }
    return true;
  }

  // Who may be killed now. Stopped senders are left to their stop (they are
  // continued or killed when it ends). Most processes die only once they
  // send: a replacement stuck in a slow MakeSender must live long enough for
  // the slowness (or its DataLoss) to show, so only those fated to "die
  // anywhere" are killed while starting or inside MakeSender. And senders
  // keep sending around a slow recovery: no sending process is killed while
  // `max_in_flight` replacements have not reached Send yet.
  std::vector<pid_t> KillCandidates(size_t max_in_flight) const {
    std::vector<pid_t> sending, anywhere;
    size_t in_flight = 0;
    for (const auto& [pid, child] : children_) {
      if (child.kind != Child::Kind::kSender || child.killed || child.stopped) {
        continue;
      }
      if (Sending(child)) {
        sending.push_back(pid);
      } else {
        ++in_flight;
        if (child.may_die_anywhere) anywhere.push_back(pid);
      }
    }
    if (in_flight < max_in_flight) {
      anywhere.insert(anywhere.end(), sending.begin(), sending.end());
    }
    return anywhere;
  }

  // One action of the workload.
  void Act() {
    const int64_t dice = Uniform(0, 99);
    const size_t processes = options_.sender_processes;
    if (dice < 55) {
      // Kill one, replace it at once.
      std::vector<pid_t> candidates =
          KillCandidates(std::max<size_t>(1, processes - 1));
      if (candidates.empty()) return;
      Kill(candidates[Uniform(0, candidates.size() - 1)], /*count=*/true);
      StartSender();
    } else if (dice < 70) {
      // Several die together (as close as two kill(2) calls get), then
      // their replacements race each other into MakeSender.
      std::vector<pid_t> candidates = KillCandidates(1);
      if (candidates.size() < 2) return;
      std::shuffle(candidates.begin(), candidates.end(), random_);
      const size_t victims = Uniform(2, candidates.size());
      for (size_t i = 0; i < victims; ++i) Kill(candidates[i], /*count=*/true);
      ++report_.burst_kill_events;
      report_.kills_in_bursts += victims;
      for (size_t i = 0; i < victims; ++i) StartSender();
    } else if (dice < 80 && options_.stops) {
      // Stop one sender (at most one at a time), wherever it is.
      const std::vector<pid_t> running = LiveSenders(/*include_stopped=*/false);
      if (running.empty() ||
          running.size() != LiveSenders(/*include_stopped=*/true).size()) {
        return;
      }
      const pid_t victim = running[Uniform(0, running.size() - 1)];
      const Child& child = children_.at(victim);
      if (Sending(child)) ++report_.stops_while_sending;
      for (int t = 0; t < threads_; ++t) {
        if (Record(child, t).phase.load(std::memory_order_relaxed) ==
            StreamPhase::kMakingSender) {
          ++report_.stops_in_make_sender;
          break;
        }
      }
      Stop(victim, SenderStopDuration());
      ++report_.stops;
    } else if (dice < 83 && options_.stops) {
      // The reader falls behind: TOO_OLD, then it must resynchronise.
      if (reader_done_ || children_.at(reader_).stopped) return;
      Stop(reader_, std::chrono::milliseconds(Uniform(1, 20)));
      ++report_.reader_stops;
    }
    // Otherwise let everyone run for a while.
  }

  // ---- Children ending.

  void ReapEnded() {
    for (const ChildExit& exit : group_.Reap()) OnExit(exit);
  }

  void OnExit(const ChildExit& exit) {
    auto it = children_.find(exit.pid);
    if (it == children_.end()) return;
    const Child child = it->second;
    children_.erase(it);
    switch (child.kind) {
      case Child::Kind::kSender:
        return OnSenderExit(exit, child);
      case Child::Kind::kReader:
        return OnReaderExit(exit);
    }
  }

  void OnSenderExit(const ChildExit& exit, const Child& child) {
    const bool expected = child.killed && WIFSIGNALED(exit.wait_status) &&
                          WTERMSIG(exit.wait_status) == SIGKILL;
    std::string streams;
    for (int t = 0; t < threads_; ++t) {
      // relaxed: the process is reaped; waitpid ordered its stores.
      StreamRecord& record = Record(child, t);
      const StreamPhase phase = record.phase.load(std::memory_order_relaxed);
      report_.make_sender_calls +=
          record.make_sender_calls.load(std::memory_order_relaxed);
      report_.resource_exhausted +=
          record.resource_exhausted.load(std::memory_order_relaxed);
      report_.messages_sent += record.sent.load(std::memory_order_relaxed);
      const int64_t claim_ns = record.claim_ns.load(std::memory_order_relaxed);
      if (claim_ns >= 0) {
        ++report_.senders_made;
        report_.longest_claim_ns = std::max(report_.longest_claim_ns, claim_ns);
      }
      absl::StrAppendFormat(
          &streams,
          "\n    stream %u: %s, %u MakeSender calls (%u "
          "ResourceExhausted), %u sent%s",
          record.stream.load(std::memory_order_relaxed), StreamPhaseName(phase),
          record.make_sender_calls.load(std::memory_order_relaxed),
          record.resource_exhausted.load(std::memory_order_relaxed),
          record.sent.load(std::memory_order_relaxed),
          phase == StreamPhase::kFailed
              ? absl::StrCat(": ", ReadFailureText(record.failure))
              : "");
      record.phase.store(StreamPhase::kUnused, std::memory_order_relaxed);
    }
    free_blocks_.push_back(child.block);
    if (expected) return;
    const bool hung =
        WIFSIGNALED(exit.wait_status) && WTERMSIG(exit.wait_status) == SIGALRM;
    Fail(absl::StrFormat(
        "sender process %d %s (%s)%s", exit.pid,
        hung ? absl::StrFormat("HUNG: no progress for %d s", options_.hang_s)
             : "ended without being killed",
        DescribeWaitStatus(exit.wait_status), streams));
  }

  void OnReaderExit(const ChildExit& exit) {
    ReaderRecord& record = board_.header().reader;
    // relaxed: the reader is reaped.
    report_.good_reads = record.good.load(std::memory_order_relaxed);
    report_.too_old_reads = record.too_old.load(std::memory_order_relaxed);
    report_.nothing_new_reads =
        record.nothing_new.load(std::memory_order_relaxed);
    reader_done_ = true;
    if (WIFEXITED(exit.wait_status) &&
        WEXITSTATUS(exit.wait_status) == kChildOk && stopping_reader_) {
      return;
    }
    const bool hung =
        WIFSIGNALED(exit.wait_status) && WTERMSIG(exit.wait_status) == SIGALRM;
    Fail(absl::StrFormat(
        "reader %s (%s)%s",
        hung ? absl::StrFormat("HUNG: no progress for %d s", options_.hang_s)
        : stopping_reader_ ? "failed"
                           : "ended before it was asked to",
        DescribeWaitStatus(exit.wait_status),
        record.failed.load(std::memory_order_relaxed) != 0
            ? absl::StrCat(": ", ReadFailureText(record.failure))
            : ""));
  }

  // ---- The end.

  // After the chaos, every surviving sender must still work: stopped ones
  // are continued, and each sender process must get its senders made and
  // send more. (During the chaos a sender stuck in Send is killed like any
  // other before its watchdog can tell; here it would hang, and its alarm or
  // this bounded wait reports it.)
  void CalmDown() {
    for (auto& [pid, child] : children_) {
      if (!child.stopped || child.killed) continue;
      kill(pid, SIGCONT);
      child.stopped = false;
    }
    std::map<pid_t, std::vector<uint64_t>> sent_before;
    for (const auto& [pid, child] : children_) {
      if (child.kind != Child::Kind::kSender || child.killed) continue;
      for (int t = 0; t < threads_; ++t) {
        // relaxed: a progress sample.
        sent_before[pid].push_back(
            Record(child, t).sent.load(std::memory_order_relaxed));
      }
    }
    const Clock::time_point deadline =
        Clock::now() + std::chrono::seconds(options_.hang_s) + kReapTimeout;
    while (ok()) {
      ReapEnded();
      bool all_sent = true;
      for (const auto& [pid, before] : sent_before) {
        auto it = children_.find(pid);
        if (it == children_.end()) continue;  // Ended: reported by OnExit.
        for (int t = 0; t < threads_; ++t) {
          const StreamRecord& record = Record(it->second, t);
          all_sent = all_sent &&
                     record.phase.load(std::memory_order_relaxed) ==
                         StreamPhase::kSending &&
                     record.sent.load(std::memory_order_relaxed) > before[t];
        }
      }
      if (all_sent) return;
      if (Clock::now() >= deadline) {
        return Fail(absl::StrFormat(
            "after the chaos, not every sender sent again within %d s",
            options_.hang_s));
      }
      SleepMicroseconds(1000);
    }
  }

  void KillSendersAndStopReader() {
    // Everyone dies, wherever they are (stopped ones included).
    for (pid_t pid : LiveSenders(/*include_stopped=*/true)) {
      Kill(pid, /*count=*/false);
    }
    const Clock::time_point deadline = Clock::now() + kReapTimeout;
    while (Clock::now() < deadline && HasSenders()) {
      ReapEnded();
      if (HasSenders()) SleepMicroseconds(1000);
    }
    if (HasSenders()) Fail("killed sender processes were not reaped in time");

    if (reader_done_ || reader_ == 0) return;
    if (children_.at(reader_).stopped) kill(reader_, SIGCONT);
    stopping_reader_ = true;
    // relaxed: only a request; the reader's counts come back through waitpid.
    board_.header().reader.stop_requested.store(1, std::memory_order_relaxed);
    absl::StatusOr<int> status = group_.WaitFor(reader_, kReapTimeout);
    if (!status.ok()) {
      Fail(absl::StrCat("reader did not stop: ", status.status().message()));
      kill(reader_, SIGKILL);
      status = group_.WaitFor(reader_, kReapTimeout);
    }
    if (status.ok()) OnExit(ChildExit{reader_, *status});
  }

  bool HasSenders() const {
    for (const auto& [pid, child] : children_) {
      if (child.kind == Child::Kind::kSender) return true;
    }
    return false;
  }

  void FinalCheck() {
    if (HasSenders()) return;  // Cannot claim every slot; already failed.
    const uint32_t first_stream = board_.header().streams_started.fetch_add(
        context_.config.num_senders, std::memory_order_seq_cst);
    const ChildContext context = context_;
    absl::StatusOr<pid_t> pid = group_.Spawn([context, first_stream] {
      return RunFinalCheck(context, first_stream);
    });
    if (!pid.ok()) {
      return Fail(absl::StrCat("spawn final check: ", pid.status().ToString()));
    }
    // Its own alarm fires at hang_s; this bound is only a backstop.
    absl::StatusOr<int> status = group_.WaitFor(
        *pid, std::chrono::seconds(options_.hang_s) + kReapTimeout);
    CheckerRecord& record = board_.header().checker;
    if (!status.ok()) {
      kill(*pid, SIGKILL);
      Fail(
          absl::StrCat("final check did not end: ", status.status().message()));
      status = group_.WaitFor(*pid, kReapTimeout);
      if (!status.ok()) return;
    }
    // relaxed: the checker is reaped.
    report_.final_claims = record.claimed.load(std::memory_order_relaxed);
    report_.final_ring_good = record.ring_good.load(std::memory_order_relaxed);
    if (WIFEXITED(*status) && WEXITSTATUS(*status) == kChildOk) return;
    const bool hung = WIFSIGNALED(*status) && WTERMSIG(*status) == SIGALRM;
    Fail(absl::StrFormat(
        "final check %s (%s): %s",
        hung ? absl::StrFormat("HUNG for %d s", options_.hang_s) : "failed",
        DescribeWaitStatus(*status), ReadFailureText(record.failure)));
  }

  // The quiescent channel: every message owned exactly once, every sender
  // slot free again. On any failure, the printer's summary of the channel
  // goes into the report.
  void CheckFinalState() {
    if (HasSenders()) return;
    const internal::RegionView& region = channel_.queue().region();
    const absl::Status owned = CheckEveryMessageOwnedOnce(channel_.queue());
    report_.ownership_ok = owned.ok();
    if (!owned.ok()) {
      Fail(absl::StrCat("ownership on the quiescent channel: ",
                        owned.ToString()));
    }
    for (uint32_t s = 0; s < context_.config.num_senders; ++s) {
      const uint32_t word = region.sender(s)->ownership.RawOwnerWord();
      if (word != 0) {
        Fail(
            absl::StrFormat("sender slot %u not free after the final check "
                            "released it: owner word 0x%08x",
                            s, word));
      }
    }
    if (ok()) return;
    PrintOptions print;
    print.summary_only = true;
    const absl::Status printed =
        PrintRegion(region.base(), region.layout().total_size_bytes, print,
                    &report_.channel_summary);
    if (!printed.ok()) report_.channel_summary = printed.ToString();
  }

  void Summarise() {
    std::vector<int64_t> calls = board_.MakeSenderCallDurations();
    report_.call_durations_logged = calls.size();
    if (calls.empty()) return;
    std::sort(calls.begin(), calls.end());
    const auto percentile = [&](double p) {
      return calls[std::min(calls.size() - 1,
                            static_cast<size_t>(p * calls.size()))];
    };
    report_.make_sender_p50_ns = percentile(0.50);
    report_.make_sender_p99_ns = percentile(0.99);
    report_.make_sender_max_ns = calls.back();
  }

  const ChaosOptions options_;
  const int threads_;
  const Channel& channel_;
  const ChaosBoard& board_;
  ChildGroup& group_;
  std::mt19937_64 random_;
  const ChildContext context_;
  ChaosReport report_;
  std::map<pid_t, Child> children_;
  std::vector<uint32_t> free_blocks_;
  pid_t reader_ = 0;
  bool reader_done_ = false;
  bool stopping_reader_ = false;
};

// A private directory for the run's channel, in the channel directory
// (/dev/shm unless $LOCKLESS_SHM_DIR says otherwise), mode 0700.
absl::StatusOr<std::string> MakeChannelDirectory() {
  std::string path = DefaultChannelDirectory() + "/lockless_chaos_XXXXXX";
  if (mkdtemp(path.data()) == nullptr) {
    return absl::InternalError(
        absl::StrCat("mkdtemp ", path, ": ", std::strerror(errno)));
  }
  return path;
}

// Removes the channel and its directory. A sender still dying from its
// SIGKILL may be inside OpenOrCreate and make the file again between the
// two, so repeat until the directory is gone (then nobody can); every child
// dies within milliseconds, and the attempts are bounded anyway.
void RemoveChannelDirectory(const std::string& directory) {
  ChannelOptions options;
  options.directory = directory;
  for (int attempt = 0; attempt < 2000; ++attempt) {
    (void)RemoveChannel(kChannelName, options);
    if (rmdir(directory.c_str()) == 0 || errno == ENOENT) return;
    SleepMicroseconds(1000);
  }
}

std::string Duration(int64_t ns) {
  if (ns < 10'000) return absl::StrFormat("%d ns", ns);
  if (ns < 10'000'000) return absl::StrFormat("%.1f us", ns / 1e3);
  if (ns < 10'000'000'000) return absl::StrFormat("%.1f ms", ns / 1e6);
  return absl::StrFormat("%.2f s", ns / 1e9);
}

}  // namespace

absl::StatusOr<ChaosReport> RunChaos(const ChaosOptions& options) {
  if (options.sender_processes < 1 || options.threads_per_process < 1 ||
      options.max_stop_ms >= options.hang_s * 1000) {
    return absl::InvalidArgumentError(
        "need >= 1 sender process and thread, and max_stop_ms < hang_s");
  }
  QueueConfig config;
  config.num_watchers = 0;
  config.num_senders = options.sender_processes * options.threads_per_process +
                       options.spare_sender_slots;
  config.queue_size = options.queue_size;
  config.message_data_size_bytes = options.message_data_size_bytes;

  absl::StatusOr<std::string> directory = MakeChannelDirectory();
  if (!directory.ok()) return directory.status();
  // Removed at the end, whatever happened (after the children: declared
  // before the group, so destroyed after it).
  struct Remover {
    std::string directory;
    ~Remover() { RemoveChannelDirectory(directory); }
  } remover{*directory};
  ChannelOptions channel_options;
  channel_options.directory = *directory;
  absl::StatusOr<Channel> channel =
      Channel::OpenOrCreate(kChannelName, config, channel_options);
  if (!channel.ok()) return channel.status();

  // Enough record blocks for the live processes plus the killed ones not
  // yet reaped.
  const uint32_t blocks = 4 * options.sender_processes + 16;
  absl::StatusOr<std::unique_ptr<ChaosBoard>> board = ChaosBoard::Create(
      blocks * options.threads_per_process, kCallLogCapacity);
  if (!board.ok()) return board.status();
  // Should this process die mid-run, the group's keeper removes them.
  const std::string dir = *directory;
  absl::StatusOr<std::unique_ptr<ChildGroup>> group =
      ChildGroup::Create([dir] { RemoveChannelDirectory(dir); });
  if (!group.ok()) return group.status();

  ChaosReport report =
      Supervisor(options, config, channel_options, *channel, **board, **group)
          .Run();
  (*group)->KillAll();
  return report;
}

std::string FormatChaosReport(const ChaosReport& r) {
  const ChaosOptions& o = r.options;
  std::string out = absl::StrFormat(
      "chaos: %d sender process(es) x %d thread(s), %u sender slots, "
      "queue_size %u, %.1f s, seed %u\n",
      o.sender_processes, o.threads_per_process, r.num_sender_slots,
      o.queue_size, o.duration.count() / 1e3, o.seed);
  absl::StrAppendFormat(
      &out,
      "  processes: %u sender processes started (%u replacements); %u killed "
      "(%u in %u bursts; "
      "landed: %u starting, %u in MakeSender, %u sending, %u while "
      "stopped); %u stops (%u mid-send, %u in MakeSender, %u continued); %u "
      "reader stops\n",
      r.sender_processes_started,
      r.sender_processes_started -
          std::min<uint64_t>(r.sender_processes_started, o.sender_processes),
      r.kills, r.kills_in_bursts, r.burst_kill_events, r.kills_starting,
      r.kills_in_make_sender, r.kills_sending, r.kills_while_stopped, r.stops,
      r.stops_while_sending, r.stops_in_make_sender, r.continues,
      r.reader_stops);
  absl::StrAppendFormat(
      &out,
      "  MakeSender: %u calls, %u senders made, %u ResourceExhausted "
      "retries; per call p50 %s, p99 %s, max %s (%u calls timed); longest "
      "claim incl. retries %s\n",
      r.make_sender_calls, r.senders_made, r.resource_exhausted,
      Duration(r.make_sender_p50_ns), Duration(r.make_sender_p99_ns),
      Duration(r.make_sender_max_ns), r.call_durations_logged,
      Duration(r.longest_claim_ns));
  absl::StrAppendFormat(&out,
                        "  messages: %u sent; reader: %u GOOD, %u TOO_OLD, "
                        "%u NOTHING_NEW\n",
                        r.messages_sent, r.good_reads, r.too_old_reads,
                        r.nothing_new_reads);
  absl::StrAppendFormat(
      &out,
      "  final: %u/%u slots claimed, %u/%u ring indices GOOD, every message "
      "owned exactly once: %s\n",
      r.final_claims, r.num_sender_slots, r.final_ring_good, o.queue_size,
      r.ownership_ok ? "yes" : "NO");
  if (r.failures.empty()) {
    absl::StrAppend(&out, "  failures: none\n");
  } else {
    absl::StrAppendFormat(&out, "  FAILURES (%u):\n", r.failures.size());
    for (const std::string& failure : r.failures) {
      absl::StrAppend(&out, "  - ", failure, "\n");
    }
    if (!r.channel_summary.empty()) {
      absl::StrAppend(&out, "  the channel at the end:\n", r.channel_summary);
    }
  }
  return out;
}

}  // namespace testing
}  // namespace lockless
