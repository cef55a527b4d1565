#include "testing/internal/exploration.h"

#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <utility>

#include "absl/status/statusor.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "index/index.h"
#include "sync/robust_mutex.h"

namespace lockless::testing::internal {
namespace {

using ::lockless::internal::RegionView;

std::string ErrnoMessage(const char* what) {
  return absl::StrCat(what, ": ", strerror(errno));
}

}  // namespace

Exploration::~Exploration() {
  for (Actor& actor : actors_) {
    if (actor.state == ActorState::kEnded) continue;
    kill(actor.pid, SIGKILL);
    int status;
    while (waitpid(actor.pid, &status, 0) < 0 && errno == EINTR) {
    }
    CloseFds(actor);
  }
  if (log_ != nullptr) munmap(log_, sizeof(SharedLog));
}

absl::Status Exploration::Fail(std::string message) {
  if (failure_.empty()) failure_ = std::move(message);
  return CheckFailed();
}

std::vector<int> Exploration::RunnableActors() const {
  std::vector<int> out;
  for (int a = 0; a < num_actors(); ++a) {
    if (Runnable(a)) out.push_back(a);
  }
  return out;
}

bool Exploration::AnyBlocked() const {
  for (const Actor& actor : actors_) {
    if (actor.state == ActorState::kBlocked) return true;
  }
  return false;
}

bool Exploration::RecovererAlive() const {
  for (const Actor& actor : actors_) {
    if (actor.spec.recoverer && actor.state != ActorState::kEnded) return true;
  }
  return false;
}

bool Exploration::RecovererInMakeSender() const {
  for (const Actor& actor : actors_) {
    if (actor.spec.recoverer && actor.state != ActorState::kEnded &&
        LogOf(actor).make_sender_code < 0) {
      return true;
    }
  }
  return false;
}

bool Exploration::RecoveryUnderWay() const {
  for (const Actor& actor : actors_) {
    // Its first write takes the setup lock; recovery starts right after.
    if (!actor.spec.recoverer || actor.state != ActorState::kParked ||
        LogOf(actor).make_sender_code >= 0 || actor.writes_done == 0) {
      continue;
    }
    if (actor.pending.kind == kStopPass && actor.pending.pass == 0) continue;
    return true;
  }
  return false;
}

bool Exploration::InReplacementWindow(int a) const {
  const Actor& actor = actors_[a];
  if (actor.spec.recoverer || actor.state != ActorState::kParked) return false;
  const int slot = LogOf(actor).slot;
  // acquire: only the value matters; the actor is parked.
  return slot >= 0 &&
         view_.sender(static_cast<uint32_t>(slot))->to_replace.Load().valid();
}

bool Exploration::InSwap(int a) const {
  const Actor& actor = actors_[a];
  if (actor.state != ActorState::kParked) return false;
  const int slot = LogOf(actor).slot;
  // acquire: only the value matters; the actor is parked.
  return slot >= 0 &&
         view_.sender(static_cast<uint32_t>(slot))->swap_take.Load().valid();
}

bool Exploration::HasStaleReplacement(int a) const {
  if (!InReplacementWindow(a)) return false;
  const auto* slot =
      view_.sender(static_cast<uint32_t>(LogOf(actors_[a]).slot));
  // acquire, all: only the values matter; the actor is parked. (The queue
  // indices in these tests stay far below 2^16, so the stored bits are the
  // whole index even with 16-bit entries.)
  const Index to_replace = slot->to_replace.Load();
  const Index scratch = slot->scratch_index.Load();
  const Index target =
      view_.ring(scratch.queue_index() % config_.queue_size)->Load();
  return target != to_replace && target != scratch;
}

bool Exploration::DeadSenderMidReplacement() const {
  for (uint32_t s = 0; s < config_.num_senders; ++s) {
    const auto* slot = view_.sender(s);
    // acquire: only the values matter.
    const Index to_replace = slot->to_replace.Load();
    if (OwnerDied(slot->ownership.RawOwnerWord()) && to_replace.valid() &&
        to_replace != slot->scratch_index.Load()) {
      return true;
    }
  }
  return false;
}

bool Exploration::RacesDeadSender(int a) const {
  if (!InReplacementWindow(a)) return false;
  // acquire, all: only the values matter; every actor is parked.
  const Index mine =
      view_.sender(static_cast<uint32_t>(LogOf(actors_[a]).slot))
          ->scratch_index.Load();
  for (uint32_t s = 0; s < config_.num_senders; ++s) {
    const auto* slot = view_.sender(s);
    const Index to_replace = slot->to_replace.Load();
    const Index scratch = slot->scratch_index.Load();
    if (OwnerDied(slot->ownership.RawOwnerWord()) && to_replace.valid() &&
        to_replace != scratch && scratch.queue_index() == mine.queue_index()) {
      return true;
    }
  }
  return false;
}

int Exploration::ActorOfPayload(int payload_actor) const {
  for (int a = 0; a < num_actors(); ++a) {
    if (actors_[a].spec.payload_actor == payload_actor) return a;
  }
  return -1;
}

void Exploration::CloseFds(Actor& actor) {
  if (actor.report_fd >= 0) close(actor.report_fd);
  if (actor.command_fd >= 0) close(actor.command_fd);
  actor.report_fd = actor.command_fd = -1;
}

std::string Exploration::Prefix() const {
  return absl::StrFormat("%4d  ", actions_);
}

ScheduleOutcome Exploration::TakeOutcome() {
  ScheduleOutcome outcome;
  outcome.failure = failure_;
  outcome.trace = std::move(trace_);
  stats_.schedules = 1;
  outcome.stats = stats_;
  return outcome;
}

int Exploration::Find(ActorRef ref) const {
  int seen = 0;
  const bool recoverer = ref.role == ActorRef::Role::kRecoverer;
  const bool pinner = ref.role == ActorRef::Role::kPinner;
  for (int a = 0; a < num_actors(); ++a) {
    if (actors_[a].spec.recoverer != recoverer ||
        actors_[a].spec.pinner != pinner) {
      continue;
    }
    if (seen++ == ref.number) return a;
  }
  return -1;
}

bool Exploration::Matches(int a, const StopMatcher& matcher) const {
  const Actor& actor = actors_[a];
  if (actor.state != ActorState::kParked) return false;
  for (const StopMatcher::Alternative& alt : matcher.alternatives) {
    switch (alt.kind) {
      case StopMatcher::Alternative::Kind::kWrite: {
        if (actor.pending.kind == kStopPass) break;
        const Place p = Locate(view_, actor.pending.offset);
        if (p.place == alt.place && (alt.index < 0 || alt.index == p.index)) {
          return true;
        }
        break;
      }
      case StopMatcher::Alternative::Kind::kPass:
        if (actor.pending.kind == kStopPass &&
            actor.pending.pass >= alt.number) {
          return true;
        }
        break;
      case StopMatcher::Alternative::Kind::kSends:
        if (static_cast<int>(LogOf(actor).sends_ok) >= alt.number) {
          return true;
        }
        break;
    }
  }
  return false;
}

std::string Exploration::PendingName(const Actor& actor) const {
  switch (actor.state) {
    case ActorState::kEnded:
      return "ended";
    case ActorState::kBlocked:
      return "running blocked";
    case ActorState::kParked:
      break;
  }
  if (actor.pending.kind == kStopPass) {
    return actor.pending.pass == 0
               ? std::string("at the start of recovery")
               : absl::StrCat("at recovery pass ", actor.pending.pass);
  }
  return absl::StrCat("before ",
                      PlaceName(Locate(view_, actor.pending.offset)));
}

absl::Status Exploration::Begin(const std::string& description) {
  const int senders = static_cast<int>(scenario_.sends.size());
  if (senders < 1 || scenario_.pinners < 0 ||
      senders + scenario_.pinners + scenario_.max_recoverers > kMaxActors ||
      scenario_.max_recoverers < 0) {
    return absl::InvalidArgumentError("explorer: 1..8 actors in all");
  }
  for (int sends : scenario_.sends) {
    if (sends < 0 || sends > kMaxSendsPerActor) {
      return absl::InvalidArgumentError("explorer: 0..8 sends per actor");
    }
  }
  if (scenario_.message_data_size_bytes < kMinPayloadBytes) {
    return absl::InvalidArgumentError("explorer: messages of 12+ bytes");
  }
  config_.num_watchers = 0;
  config_.num_senders =
      static_cast<uint32_t>(senders + std::max(scenario_.max_recoverers, 1));
  config_.queue_size = scenario_.queue_size;
  config_.message_data_size_bytes = scenario_.message_data_size_bytes;
  config_.num_pinners = static_cast<uint32_t>(scenario_.pinners);
  absl::StatusOr<::lockless::internal::Layout> layout =
      ::lockless::internal::ComputeLayout(config_);
  if (!layout.ok()) return layout.status();

  absl::StatusOr<SteppedRegion> region =
      SteppedRegion::Create(layout->total_size_bytes);
  if (!region.ok()) return region.status();
  region_.emplace(*std::move(region));
  EXPLORER_RETURN_IF_ERROR(region_->Fresh());
  view_ = RegionView(region_->primary(), *layout);

  void* log = mmap(nullptr, sizeof(SharedLog), PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (log == MAP_FAILED) {
    return absl::ResourceExhaustedError(ErrnoMessage("mapping the log"));
  }
  log_ = static_cast<SharedLog*>(log);
  for (ActorLog& actor_log : log_->actors) {
    actor_log.failed_send_result = -1;
    actor_log.make_sender_code = -1;
    actor_log.slot = -1;
    actor_log.max_pass = -1;
  }

  absl::StatusOr<LocklessQueue> queue = LocklessQueue::Attach(
      region_->primary(), region_->size_bytes(), config_);
  if (!queue.ok()) return queue.status();
  queue_.emplace(*queue);
  Note(absl::StrCat("schedule: ", description, "; ", config_.DebugString()));

  if (scenario_.setup_sends > 0) {
    absl::StatusOr<Sender> sender = queue_->MakeSender();
    if (!sender.ok()) return sender.status();
    for (int i = 0; i < scenario_.setup_sends; ++i) {
      const std::string bytes = PayloadBytes(
          kSetupPayloadActor, i, config_.message_data_size_bytes);
      MessageInfo info;
      if (sender->Send(bytes.data(), bytes.size(), &info) != SendResult::kOk ||
          info.queue_index.index() != static_cast<uint32_t>(i)) {
        return absl::InternalError("explorer: a setup send failed");
      }
      setup_payloads_.push_back(bytes);
    }
  }
  for (int s = 0; s < senders; ++s) {
    ActorSpec spec;
    spec.payload_actor = s;
    spec.sends = scenario_.sends[s];
    spec.sabotage = scenario_.sabotage_published_payload && s == 0;
    spec.overrun_guards = scenario_.overrun_guards;
    EXPLORER_RETURN_IF_ERROR(Spawn(spec, absl::StrCat("s", s)));
    if (actors_.back().state != ActorState::kParked) {
      return absl::InternalError(absl::StrCat(
          "explorer: s", s, " did not reach its first write"));
    }
  }
  for (int p = 0; p < scenario_.pinners; ++p) {
    ActorSpec spec;
    spec.pinner = true;
    spec.pins = scenario_.pin_rounds;
    spec.payload_actor = kFirstPinnerPayloadActor + p;  // Sends nothing.
    EXPLORER_RETURN_IF_ERROR(Spawn(spec, absl::StrCat("p", p)));
  }
  return Checkpoint();
}

absl::Status Exploration::Spawn(const ActorSpec& spec,
                                const std::string& name) {
  int report[2];
  int command[2];
  if (pipe(report) != 0) return absl::InternalError(ErrnoMessage("pipe"));
  if (pipe(command) != 0) {
    close(report[0]);
    close(report[1]);
    return absl::InternalError(ErrnoMessage("pipe"));
  }
  // The child keeps only its own ends.
  std::vector<int> parent_fds = {report[0], command[1]};
  for (const Actor& other : actors_) {
    if (other.report_fd >= 0) parent_fds.push_back(other.report_fd);
    if (other.command_fd >= 0) parent_fds.push_back(other.command_fd);
  }
  Actor actor;
  actor.name = name;
  actor.spec = spec;
  actor.log_index = num_actors();
  fflush(nullptr);  // Nothing buffered may be written twice.
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid < 0) {
    for (int fd : {report[0], report[1], command[0], command[1]}) close(fd);
    return absl::ResourceExhaustedError(ErrnoMessage("fork"));
  }
  if (pid == 0) {
    ActorMain(spec, *region_, config_, &log_->actors[actor.log_index], parent,
              report[1], command[0], parent_fds);
  }
  close(report[1]);
  close(command[0]);
  actor.pid = pid;
  actor.report_fd = report[0];
  actor.command_fd = command[1];
  actors_.push_back(std::move(actor));
  return AwaitStop(num_actors() - 1, limits_.blocked_ms);
}

absl::Status Exploration::AwaitStop(int a, int timeout_ms) {
  Actor& actor = actors_[a];
  pollfd fd{actor.report_fd, POLLIN, 0};
  int ready;
  do {
    ready = poll(&fd, 1, timeout_ms);
  } while (ready < 0 && errno == EINTR);
  if (ready < 0) return absl::InternalError(ErrnoMessage("poll"));
  if (ready == 0) {
    actor.state = ActorState::kBlocked;
    ++stats_.blocked_actors;
    Note(absl::StrCat(Prefix(), actor.name, " runs on without a stop for ",
                      timeout_ms,
                      " ms: treated as blocked (runs free from here)"));
    return absl::OkStatus();
  }
  return ReadStop(a);
}

absl::Status Exploration::ReadStop(int a) {
  Actor& actor = actors_[a];
  StopReport report;
  char* bytes = reinterpret_cast<char*>(&report);
  size_t got = 0;
  while (got < sizeof(report)) {
    const ssize_t n = read(actor.report_fd, bytes + got, sizeof(report) - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return absl::InternalError(ErrnoMessage("read"));
    if (n == 0) break;
    got += static_cast<size_t>(n);
  }
  if (got == 0) {  // EOF: the child exited.
    int status = 0;
    while (waitpid(actor.pid, &status, 0) < 0) {
      if (errno != EINTR) return absl::InternalError(ErrnoMessage("waitpid"));
    }
    return Reap(a, status);
  }
  if (got != sizeof(report)) {
    return absl::InternalError("explorer: short stop report");
  }
  actor.pending = report;
  actor.state = ActorState::kParked;
  return absl::OkStatus();
}

absl::Status Exploration::Reap(int a, int status) {
  Actor& actor = actors_[a];
  actor.state = ActorState::kEnded;
  CloseFds(actor);
  const ActorLog& log = LogOf(actor);
  if (WIFSIGNALED(status)) {
    return Fail(absl::StrFormat("%s crashed with signal %d (%s); see its "
                                "stderr",
                                actor.name, WTERMSIG(status),
                                strsignal(WTERMSIG(status))));
  }
  const int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  switch (code) {
    case kExitDone:
      break;
    case kExitPinFailed:
      return Fail(absl::StrFormat("%s: %s", actor.name, log.pin_failure));
    case kExitSendFailed:
      return Fail(absl::StrFormat(
          "%s: its send #%d returned %s on a healthy channel", actor.name,
          log.failed_send_seq,
          SendResultName(static_cast<SendResult>(log.failed_send_result))));
    case kExitSetupFailed:
      return Fail(absl::StrCat(actor.name,
                               ": Attach or its setup MakeSender failed"));
    case kExitSteppingFailed:
      return absl::InternalError(
          absl::StrCat("explorer: write stepping broke in ", actor.name,
                       "; see its stderr"));
    default:
      return absl::InternalError(absl::StrFormat(
          "explorer: %s ended with wait status %#x", actor.name, status));
  }
  if (actor.spec.recoverer) {
    const auto code = static_cast<absl::StatusCode>(log.make_sender_code);
    if (code != absl::StatusCode::kOk) {
      return Fail(absl::StrFormat(
          "%s: MakeSender returned %s: %s (every recoverer has a spare "
          "slot, and nothing corrupted the channel)",
          actor.name, absl::StatusCodeToString(code),
          log.make_sender_message));
    }
    ++stats_.recoverers_finished;
    if (log.max_pass >= 1) ++stats_.recoveries_with_accounting;
    Note(absl::StrFormat("%s%s ends: MakeSender OK (slot %d), %u send(s) kOk",
                         Prefix(), actor.name, log.slot, log.sends_ok));
  } else if (actor.spec.pinner) {
    stats_.pins += log.pins_ok;
    Note(absl::StrFormat("%s%s ends: %d pin(s) kGood", Prefix(), actor.name,
                         log.pins_ok));
  } else {
    Note(absl::StrFormat("%s%s ends: %u send(s) kOk", Prefix(), actor.name,
                         log.sends_ok));
  }
  return absl::OkStatus();
}

absl::Status Exploration::CollectBlocked(int timeout_ms) {
  std::vector<pollfd> fds;
  std::vector<int> who;
  for (int a = 0; a < num_actors(); ++a) {
    if (actors_[a].state != ActorState::kBlocked) continue;
    fds.push_back(pollfd{actors_[a].report_fd, POLLIN, 0});
    who.push_back(a);
  }
  if (fds.empty()) return absl::OkStatus();
  int ready;
  do {
    ready = poll(fds.data(), fds.size(), timeout_ms);
  } while (ready < 0 && errno == EINTR);
  if (ready < 0) return absl::InternalError(ErrnoMessage("poll"));
  for (size_t i = 0; i < fds.size(); ++i) {
    if (fds[i].revents == 0) continue;
    const int a = who[i];
    EXPLORER_RETURN_IF_ERROR(ReadStop(a));
    if (actors_[a].state == ActorState::kParked) {
      Note(absl::StrCat(Prefix(), actors_[a].name, " stops again, ",
                        PendingName(actors_[a])));
    }
  }
  return Checkpoint();
}

absl::Status Exploration::Step(int a, bool past_passes) {
  Actor& actor = actors_[a];
  if (!Runnable(a)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "explorer: cannot step ", actor.name, ", it is ", PendingName(actor)));
  }
  ++actions_;
  const StopReport done = actor.pending;
  const char command = past_passes ? kCommandPastPasses : kCommandStep;
  while (write(actor.command_fd, &command, 1) != 1) {
    if (errno != EINTR) return absl::InternalError(ErrnoMessage("write"));
  }
  // The step's own line goes before whatever AwaitStop notes (its end).
  const size_t step_line = trace_.size();
  const absl::Status awaited = AwaitStop(a, limits_.blocked_ms);
  std::vector<std::string> later(trace_.begin() + step_line, trace_.end());
  trace_.resize(step_line);
  if (done.kind == kStopPass) {
    ++stats_.pass_stops;
    if (past_passes) {
      Note(absl::StrCat(Prefix(), actor.name,
                        " runs recovery (no more pass stops) up to its next "
                        "write"));
    } else if (done.pass == 0) {
      Note(absl::StrCat(Prefix(), actor.name, " starts recovery"));
    } else {
      Note(absl::StrCat(Prefix(), actor.name, " runs recovery pass ",
                        done.pass));
    }
  } else {
    ++stats_.steps;
    ++actor.writes_done;
    const Place p = Locate(view_, done.offset);
    // The value after the write: what it stored, or, for a CAS that lost,
    // what the winner had stored.
    const std::string value = ValueAt(view_, p);
    Note(absl::StrCat(Prefix(), actor.name, " writes ", PlaceName(p),
                      value.empty() ? "" : " (now ", value,
                      value.empty() ? "" : ")"));
  }
  trace_.insert(trace_.end(), later.begin(), later.end());
  EXPLORER_RETURN_IF_ERROR(awaited);
  if (done.kind != kStopPass) {
    EXPLORER_RETURN_IF_ERROR(AfterWrite(a, Locate(view_, done.offset)));
  }
  if (actions_ > limits_.max_actions) {
    return Fail(absl::StrCat("more than ", limits_.max_actions,
                             " actions in one schedule: livelock?"));
  }
  return Checkpoint();
}

absl::Status Exploration::Kill(int a) {
  Actor& actor = actors_[a];
  if (actor.state == ActorState::kEnded) {
    return absl::InvalidArgumentError(
        absl::StrCat("explorer: cannot kill ", actor.name, ", it ended"));
  }
  ++actions_;
  const std::string where = PendingName(actor);
  std::string kind = "running blocked";
  if (actor.state == ActorState::kParked) {
    kind = actor.pending.kind == kStopPass
               ? std::string("recovery pass")
               : PlaceKind(Locate(view_, actor.pending.offset));
  }
  // What it owns as it dies: its scratch message, or, if this attempt's
  // ring CAS succeeded, the message it replaced. (Unknown if it runs
  // blocked: then its slot is not checked.)
  if (const int slot = LogOf(actor).slot;
      slot >= 0 && actor.state != ActorState::kParked) {
    dead_truth_.erase(static_cast<uint32_t>(slot));
  } else if (slot >= 0) {
    const auto* words = view_.sender(static_cast<uint32_t>(slot));
    // acquire, both: only the values matter; the actor is parked or about
    // to die, and only it writes its slot.
    const Index scratch = words->scratch_index.Load();
    const Index to_replace = words->to_replace.Load();
    const bool took_replaced = actor.published && to_replace.valid();
    uint32_t owned =
        took_replaced ? to_replace.message_index() : scratch.message_index();
    // Mid-swap of a pinned scratch (scratch_parking.h): once the scratch is
    // parked (parked[j] == scratch), what it owns as scratch is swap_take.
    const Index take = words->swap_take.Load();
    if (take.valid()) {
      const uint32_t j = words->swap_parked_entry.load();
      if (j < config_.num_pinners &&
          view_.parked(static_cast<uint32_t>(slot), j)->Load() == scratch) {
        owned = take.message_index();
      }
    }
    dead_truth_[static_cast<uint32_t>(slot)] = owned;
  }
  // The words the kernel will mark at this death (actors are
  // single-threaded: tid == pid).
  std::vector<std::atomic<uint32_t>*> owned;
  for (std::atomic<uint32_t>* word :
       ::lockless::internal::RobustFutexWords(view_)) {
    // relaxed: the actor is parked (or dying); only the value matters.
    const uint32_t value = word->load(std::memory_order_relaxed);
    if (OwnerTid(value) != static_cast<pid_t>(actor.pid)) continue;
    // A setup lock taken from a dead holder keeps the owner-died mark until
    // its new holder has recorded itself and cleared it; unmarked, such a
    // death would leave the mark with the tid, which no waiter judges (the
    // window SetupLock does not cover), so only the kernel's mark frees it.
    if (word == &view_.header()->setup_lock.futex && OwnerDied(value)) {
      continue;
    }
    owned.push_back(word);
  }
  kill(actor.pid, SIGKILL);
  int status = 0;
  while (waitpid(actor.pid, &status, 0) < 0) {
    if (errno != EINTR) return absl::InternalError(ErrnoMessage("waitpid"));
  }
  actor.state = ActorState::kEnded;
  actor.killed = true;
  CloseFds(actor);
  ++stats_.kills;
  ++stats_.kills_before[kind];
  if (actor.spec.recoverer) {
    ++stats_.recoverers_killed;
  } else if (actor.spec.pinner) {
    ++stats_.pinners_killed;
  } else if (RecovererInMakeSender()) {
    ++stats_.senders_killed_during_recovery;
  }
  Note(absl::StrCat(Prefix(), "KILL ", actor.name, " (", where, ")"));
  // A real death: the kernel walked its robust list (through the twin
  // mapping) and marked every mutex it held. waitpid returned only after.
  for (std::atomic<uint32_t>* word :
       ::lockless::internal::RobustFutexWords(view_)) {
    // relaxed: the owner is dead and reaped; nothing orders against it.
    const uint32_t value = word->load(std::memory_order_relaxed);
    if (OwnerTid(value) == static_cast<pid_t>(actor.pid)) {
      return Fail(absl::StrFormat(
          "%s was killed but a futex word still names it (0x%08x): the "
          "kernel did not walk its robust list",
          actor.name, value));
    }
  }
  if (scenario_.unmark_every_other_kill && stats_.kills % 2 == 1) {
    const int unmarked = UnmarkDeath(actor, owned);
    ++stats_.unmarked_kills;
    stats_.unmarked_words += unmarked;
    Note(absl::StrCat(Prefix(), "  (unmarked: ", unmarked,
                      " word(s) name ", actor.name, " again)"));
  }
  return Checkpoint();
}

int Exploration::UnmarkDeath(const Actor& actor,
                             const std::vector<std::atomic<uint32_t>*>& owned) {
  const auto* header = view_.header();
  int unmarked = 0;
  for (std::atomic<uint32_t>* word : owned) {
    // The setup lock's holder records itself just after locking; one killed
    // in between has no record, and only the kernel's mark frees the lock.
    if (word == &header->setup_lock.futex &&
        header->setup_lock_owner.tid.load() != static_cast<pid_t>(actor.pid)) {
      continue;
    }
    // seq_cst: the parent's write, made while every actor is parked.
    word->store(static_cast<uint32_t>(actor.pid));
    ++unmarked;
  }
  return unmarked;
}

absl::Status Exploration::Stop(int a) {
  Actor& actor = actors_[a];
  if (!Runnable(a)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "explorer: cannot stop ", actor.name, ", it is ", PendingName(actor)));
  }
  ++actions_;
  actor.stopped = true;
  ++stats_.stops;
  Note(absl::StrCat(Prefix(), "STOP ", actor.name, " (", PendingName(actor),
                    ") until every other actor has finished"));
  return absl::OkStatus();
}

absl::Status Exploration::Resume(int a) {
  Actor& actor = actors_[a];
  if (!actor.stopped || actor.state == ActorState::kEnded) {
    return absl::InvalidArgumentError(
        absl::StrCat("explorer: ", actor.name, " is not stopped"));
  }
  ++actions_;
  actor.stopped = false;
  ++stats_.stops_resumed;
  Note(absl::StrCat(Prefix(), "RESUME ", actor.name));
  return absl::OkStatus();
}

absl::Status Exploration::StartRecoverer() {
  if (RecovererAlive()) {
    return absl::InvalidArgumentError(
        "explorer: one recoverer at a time (it holds the setup lock)");
  }
  if (recoverers_started_ >= scenario_.max_recoverers) {
    return absl::InvalidArgumentError(absl::StrCat(
        "explorer: the scenario allows ", scenario_.max_recoverers,
        " recoverer(s)"));
  }
  ++actions_;
  // What it faces, for the statistics and the trace.
  std::vector<std::string> slots;
  bool dead = false;
  bool stopped_mid_send = false;
  bool lapped = false;
  for (uint32_t s = 0; s < config_.num_senders; ++s) {
    const uint32_t word = view_.sender(s)->ownership.RawOwnerWord();
    const char* state = word == 0 ? "free" : OwnerDied(word) ? "dead" : "live";
    dead = dead || OwnerDied(word);
    slots.push_back(absl::StrCat(s, " ", state));
    // A dead sender mid-replacement whose target slot has moved on to a
    // later lap: its own slot cannot tell whether it published.
    const Index scratch = view_.sender(s)->scratch_index.Load();
    const Index to_replace = view_.sender(s)->to_replace.Load();
    if (OwnerDied(word) && to_replace.valid() && to_replace != scratch) {
      const Index target =
          view_.ring(scratch.queue_index() % config_.queue_size)->Load();
      if (target != scratch && target != to_replace &&
          target.queue_index() != scratch.queue_index()) {
        lapped = true;
      }
    }
  }
  if (lapped) ++stats_.recoveries_facing_lapped_dead;
  for (const Actor& actor : actors_) {
    if (actor.stopped && actor.state != ActorState::kEnded &&
        !actor.spec.recoverer && LogOf(actor).slot >= 0 &&
        view_.sender(static_cast<uint32_t>(LogOf(actor).slot))
            ->to_replace.Load()
            .valid()) {
      stopped_mid_send = true;
    }
  }
  ++stats_.recoverers_started;
  if (dead) ++stats_.recoveries_facing_dead_senders;
  if (stopped_mid_send) ++stats_.recoveries_facing_stopped_mid_send;
  const int number = recoverers_started_++;
  Note(absl::StrCat(Prefix(), "START r", number,
                    " (a new process calling MakeSender; slots: ",
                    absl::StrJoin(slots, ", "), ")"));
  ActorSpec spec;
  spec.recoverer = true;
  spec.payload_actor = kFirstRecovererPayloadActor + number;
  spec.sends = 1;
  EXPLORER_RETURN_IF_ERROR(Spawn(spec, absl::StrCat("r", number)));
  return Checkpoint();
}

// Every index the ring still holds, read as a reader would, between two
// actions (every actor parked, unless one runs blocked: then `exact` is off
// and only what holds under concurrency is checked).
absl::Status Exploration::Checkpoint() {
  if (!failure_.empty()) return CheckFailed();
  EXPLORER_RETURN_IF_ERROR(CheckPins());
  const bool exact = !AnyBlocked();
  const uint32_t queue_size = config_.queue_size;
  const QueueIndex latest = queue_->LatestQueueIndex();
  const uint32_t next = latest.valid() ? latest.index() + 1 : 0;
  // Index `next` may already be published (its sender has not advanced
  // next_queue_index yet); then it has overwritten next - queue_size.
  // acquire: as a reader's.
  const bool next_published =
      view_.ring(Q(next).Wrapped())->Load().IsPlausible(Q(next));
  const uint32_t first = next > queue_size ? next - queue_size : 0;
  std::string buffer(config_.message_data_size_bytes, '\0');
  for (uint32_t q = first; q <= next; ++q) {
    MessageInfo info;
    const ReadResult result =
        queue_->Read(Q(q), &info, buffer.data(), buffer.size());
    if (result == ReadResult::kGood) {
      EXPLORER_RETURN_IF_ERROR(
          CheckRead(q, buffer.substr(0, info.length), exact));
      continue;
    }
    if (result == ReadResult::kCorrupted) {
      return Fail(absl::StrCat("index ", q, " reads CORRUPTED"));
    }
    if (!exact) continue;
    const bool overwritten = next_published && q + queue_size == next;
    if (q < next && !overwritten) {
      return Fail(absl::StrCat("index ", q, " (published: next_queue_index "
                               "is ", next, ") reads ",
                               ReadResultName(result), " instead of GOOD"));
    }
    if (q == next && result != ReadResult::kNothingNew) {
      return Fail(absl::StrCat("index ", q, " = next_queue_index reads ",
                               ReadResultName(result)));
    }
  }
  return absl::OkStatus();
}

absl::Status Exploration::CheckPins() {
  for (const Actor& actor : actors_) {
    // A parked pinner's log is final until it is stepped again; a blocked
    // one's may be changing; an ended one's pin is released or dead.
    if (!actor.spec.pinner || actor.state != ActorState::kParked) continue;
    const ActorLog& log = LogOf(actor);
    if (log.pin_active == 0) continue;
    ++stats_.pin_checks;
    const unsigned char* data = view_.message(log.pinned_message)->data();
    if (std::memcmp(data, log.pinned_bytes, log.pinned_length) != 0) {
      return Fail(absl::StrFormat(
          "%s pins message %u, but its bytes changed while pinned: %s "
          "instead of %s",
          actor.name, log.pinned_message,
          absl::CHexEscape(std::string(reinterpret_cast<const char*>(data),
                                       log.pinned_length)),
          absl::CHexEscape(
              std::string(reinterpret_cast<const char*>(log.pinned_bytes),
                          log.pinned_length))));
    }
  }
  return absl::OkStatus();
}

// A GOOD read of index q returned `bytes`.
absl::Status Exploration::CheckRead(uint32_t q, const std::string& bytes,
                                    bool exact) {
  absl::StatusOr<PayloadId> id = DecodePayload(bytes);
  if (!id.ok()) {
    return Fail(absl::StrFormat(
        "index %u reads GOOD but its payload is torn or foreign (%s): \"%s\"",
        q, id.status().message(), absl::CHexEscape(bytes)));
  }
  auto [it, first_read] = seen_.emplace(q, bytes);
  if (!first_read && it->second != bytes) {
    return Fail(absl::StrFormat(
        "index %u reads GOOD with different bytes than before (%s, was %s)",
        q, PayloadName(*id),
        DecodePayload(it->second).ok()
            ? PayloadName(*DecodePayload(it->second))
            : "?"));
  }
  auto [at, new_payload] = published_at_.emplace(*id, q);
  if (!new_payload && at->second != q) {
    return Fail(absl::StrFormat("%s is published twice: at %u and at %u",
                                PayloadName(*id), at->second, q));
  }
  if (id->actor == kSetupPayloadActor) {
    if (static_cast<size_t>(id->seq) >= setup_payloads_.size() ||
        static_cast<uint32_t>(id->seq) != q) {
      return Fail(absl::StrFormat("setup payload %d at index %u", id->seq, q));
    }
    return absl::OkStatus();
  }
  const int a = ActorOfPayload(id->actor);
  if (a < 0) {
    return Fail(absl::StrFormat("index %u holds %s, from no actor", q,
                                PayloadName(*id)));
  }
  if (!exact) return absl::OkStatus();  // Its log may be changing.
  const ActorLog& log = LogOf(actors_[a]);
  if (static_cast<uint32_t>(id->seq) < log.sends_ok &&
      log.sends[id->seq].queue_index != q) {
    return Fail(absl::StrFormat(
        "%s: its Send reported index %u, but it is published at %u",
        PayloadName(*id), log.sends[id->seq].queue_index, q));
  }
  return absl::OkStatus();
}

absl::Status Exploration::AfterWrite(int a, const Place& p) {
  Actor& actor = actors_[a];
  if (p.place == RegionPlace::kSenderParked) ++stats_.parks;
  const int own_slot = LogOf(actor).slot;
  if (own_slot >= 0) {
    const auto* slot = view_.sender(static_cast<uint32_t>(own_slot));
    // acquire, all: the values only; every actor is parked.
    if (p.place == RegionPlace::kRing &&
        view_.ring(static_cast<uint32_t>(p.index))->Load() ==
            slot->scratch_index.Load()) {
      actor.published = true;  // Its CAS put its message in the ring.
    }
    if (!slot->to_replace.Load().valid()) actor.published = false;
    // A recoverer that has claimed a slot is its owner now.
    if (actor.spec.recoverer) dead_truth_.erase(static_cast<uint32_t>(own_slot));
  }
  // A recoverer locking a sender slot claims it: from then on the slot is
  // its own (its claim may park a pinned scratch, changing the scratch).
  if (actor.spec.recoverer && p.place == RegionPlace::kSenderOwnership) {
    dead_truth_.erase(static_cast<uint32_t>(p.index));
  }
  // A recovery (a recoverer inside MakeSender) that has just finished a dead
  // slot (to_replace cleared) must have left it owning the truth.
  if (actor.spec.recoverer && LogOf(actor).make_sender_code < 0 &&
      (p.place == RegionPlace::kSenderToReplace ||
       p.place == RegionPlace::kSenderScratch) &&
      dead_truth_.count(static_cast<uint32_t>(p.index)) != 0 &&
      !view_.sender(static_cast<uint32_t>(p.index))
           ->to_replace.Load()
           .valid()) {
    return CheckDecided(static_cast<uint32_t>(p.index), actor.name);
  }
  return absl::OkStatus();
}

absl::Status Exploration::CheckDecided(uint32_t slot, const std::string& who) {
  ++stats_.decisions_checked;
  const uint32_t truth = dead_truth_.at(slot);
  // acquire: the value only.
  const Index scratch = view_.sender(slot)->scratch_index.Load();
  if (scratch.message_index() != truth) {
    return Fail(absl::StrFormat(
        "%s decided that dead sender slot %u owns message %u (scratch %s), "
        "but its owner died owning message %u",
        who, slot, scratch.message_index(), scratch.DebugString(), truth));
  }
  return absl::OkStatus();
}

absl::Status Exploration::CheckOwnership(const char* when) {
  std::vector<int> owners(view_.layout().num_messages, 0);
  std::vector<std::string> owner_names(owners.size());
  for (uint32_t i = 0; i < config_.queue_size; ++i) {
    const Index entry = view_.ring(i)->Load();
    if (!view_.NamesMessage(entry)) {
      return Fail(absl::StrCat(when, ": ring[", i, "] holds ",
                               entry.DebugString()));
    }
    ++owners[entry.message_index()];
    absl::StrAppend(&owner_names[entry.message_index()], " ring[", i, "]");
  }
  for (uint32_t s = 0; s < config_.num_senders; ++s) {
    const ::lockless::internal::SenderSlot* slot = view_.sender(s);
    const Index to_replace = slot->to_replace.Load();
    if (to_replace.valid()) {
      return Fail(absl::StrCat(when, ": sender[", s, "] still has to_replace ",
                               to_replace.DebugString(), " in flight"));
    }
    const Index scratch = slot->scratch_index.Load();
    if (!view_.NamesMessage(scratch)) {
      return Fail(absl::StrCat(when, ": sender[", s, "] has scratch ",
                               scratch.DebugString()));
    }
    ++owners[scratch.message_index()];
    absl::StrAppend(&owner_names[scratch.message_index()], " sender[", s,
                    "]");
    const Index take = slot->swap_take.Load();
    if (take.valid()) {
      return Fail(absl::StrCat(when, ": sender[", s, "] still has a swap ",
                               take.DebugString(), " in flight"));
    }
    for (uint32_t j = 0; j < config_.num_pinners; ++j) {
      const Index parked = view_.parked(s, j)->Load();
      if (!view_.NamesMessage(parked)) {
        return Fail(absl::StrCat(when, ": sender[", s, "].parked[", j,
                                 "] holds ", parked.DebugString()));
      }
      ++owners[parked.message_index()];
      absl::StrAppend(&owner_names[parked.message_index()], " sender[", s,
                      "].parked[", j, "]");
    }
  }
  for (size_t m = 0; m < owners.size(); ++m) {
    if (owners[m] != 1) {
      return Fail(absl::StrFormat("%s: message %u has %d owners:%s", when, m,
                                  owners[m], owner_names[m]));
    }
  }
  return absl::OkStatus();
}

absl::Status Exploration::FinalChecks() {
  EXPLORER_RETURN_IF_ERROR(Checkpoint());
  Note(absl::StrCat(Prefix(), "every actor ended: the parent runs MakeSender "
                    "(final recovery) and checks"));
  absl::StatusOr<Sender> mine = queue_->MakeSender();
  if (!mine.ok()) {
    return Fail(absl::StrCat("the final MakeSender (recovery with every "
                             "actor gone) failed: ",
                             mine.status().ToString()));
  }
  std::vector<Sender> senders;
  senders.push_back(*std::move(mine));
  // Whatever happens next, release the slots before the region goes away.
  absl::Status status = [&]() -> absl::Status {
    // Every slot whose owner was killed now owns what that owner owned
    // (claiming a slot does not change its scratch; this Sender sent
    // nothing yet).
    for (const auto& [slot, truth] : dead_truth_) {
      EXPLORER_RETURN_IF_ERROR(
          CheckDecided(slot, "the final recovery (in the parent)"));
    }
    EXPLORER_RETURN_IF_ERROR(CheckOwnership("after the final recovery"));
    // Recovery may have advanced next_queue_index past a dead sender's
    // publish: every index the ring holds reads GOOD again, intact.
    EXPLORER_RETURN_IF_ERROR(Checkpoint());
    const uint32_t queue_size = config_.queue_size;
    const QueueIndex latest = queue_->LatestQueueIndex();
    const uint32_t next = latest.valid() ? latest.index() + 1 : 0;
    if (view_.ring(Q(next).Wrapped())->Load().IsPlausible(Q(next))) {
      return Fail(absl::StrCat("after the final recovery index ", next,
                               " is published but LatestQueueIndex says ",
                               latest.DebugString()));
    }
    // Every send that returned kOk: GOOD with its bytes, or TOO_OLD once a
    // later lap overwrote it.
    const auto expect = [&](uint32_t q, const std::string& bytes,
                            const std::string& who) -> absl::Status {
      std::string buffer(config_.message_data_size_bytes, '\0');
      MessageInfo info;
      const ReadResult result =
          queue_->Read(Q(q), &info, buffer.data(), buffer.size());
      const bool overwritten = q + queue_size < next;
      if (overwritten) {
        if (result != ReadResult::kTooOld) {
          return Fail(absl::StrFormat(
              "%s at index %u was overwritten (next %u) but reads %s", who, q,
              next, ReadResultName(result)));
        }
        return absl::OkStatus();
      }
      if (result != ReadResult::kGood) {
        return Fail(absl::StrFormat("%s (Send said index %u) reads %s", who,
                                    q, ReadResultName(result)));
      }
      if (buffer.substr(0, info.length) != bytes) {
        return Fail(absl::StrFormat("%s at index %u has other bytes: %s", who,
                                    q,
                                    absl::CHexEscape(
                                        buffer.substr(0, info.length))));
      }
      return absl::OkStatus();
    };
    for (size_t i = 0; i < setup_payloads_.size(); ++i) {
      EXPLORER_RETURN_IF_ERROR(expect(static_cast<uint32_t>(i),
                                      setup_payloads_[i],
                                      absl::StrCat("setup send ", i)));
    }
    for (const Actor& actor : actors_) {
      const ActorLog& log = LogOf(actor);
      for (uint32_t seq = 0; seq < log.sends_ok; ++seq) {
        EXPLORER_RETURN_IF_ERROR(expect(
            log.sends[seq].queue_index,
            PayloadBytes(actor.spec.payload_actor, static_cast<int>(seq),
                         config_.message_data_size_bytes),
            PayloadName({actor.spec.payload_actor, static_cast<int>(seq)})));
      }
    }
    // Every payload ever read that no kOk Send accounts for was in flight
    // when its actor was killed.
    for (const auto& [id, q] : published_at_) {
      if (id.actor == kSetupPayloadActor) continue;
      const Actor& actor = actors_[ActorOfPayload(id.actor)];
      const ActorLog& log = LogOf(actor);
      if (static_cast<uint32_t>(id.seq) < log.sends_ok) continue;
      if (!actor.killed || static_cast<uint32_t>(id.seq) != log.sends_ok) {
        return Fail(absl::StrFormat(
            "%s is published at index %u, but its Send never returned kOk "
            "and %s was not killed during it",
            PayloadName(id), q, actor.name));
      }
    }
    // The recovered channel works: a send lands at `next`, intact.
    const std::string check =
        PayloadBytes(kCheckPayloadActor, 0, config_.message_data_size_bytes);
    MessageInfo info;
    const SendResult sent = senders[0].Send(check.data(), check.size(), &info);
    if (sent != SendResult::kOk || info.queue_index.index() != next) {
      return Fail(absl::StrFormat(
          "a send after the final recovery returned %s at index %s "
          "(expected %u)",
          SendResultName(sent), info.queue_index.DebugString(), next));
    }
    EXPLORER_RETURN_IF_ERROR(expect(next, check, "the final check send"));
    // No slot leaked.
    for (uint32_t s = 1; s < config_.num_senders; ++s) {
      absl::StatusOr<Sender> other = queue_->MakeSender();
      if (!other.ok()) {
        return Fail(absl::StrFormat(
            "sender slot leaked: MakeSender %u of %u with every actor gone "
            "failed: %s",
            s + 1, config_.num_senders, other.status().ToString()));
      }
      senders.push_back(*std::move(other));
    }
    // Every slot is claimed, so every guard a killed overrunner left
    // broken has been repaired by the MakeSender that claimed its slot, and
    // no Send published a broken one.
    if (absl::Status guards = queue_->CheckGuards(); !guards.ok()) {
      return Fail(absl::StrCat("with every slot claimed: ",
                               guards.ToString()));
    }
    // No pinner slot leaked either (dead pinners were released).
    std::vector<Pinner> pinners;
    for (uint32_t p = 0; p < config_.num_pinners; ++p) {
      absl::StatusOr<Pinner> pinner = queue_->MakePinner();
      if (!pinner.ok()) {
        return Fail(absl::StrFormat(
            "pinner slot leaked: MakePinner %u of %u with every actor gone "
            "failed: %s",
            p + 1, config_.num_pinners, pinner.status().ToString()));
      }
      pinners.push_back(*std::move(pinner));
    }
    return absl::OkStatus();
  }();
  senders.clear();
  if (!status.ok()) return status;
  return CheckOwnership("after releasing every slot");
}

}  // namespace lockless::testing::internal
