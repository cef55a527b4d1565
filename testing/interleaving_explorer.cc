#include "testing/interleaving_explorer.h"

#include <algorithm>
#include <limits>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "testing/internal/exploration.h"
#include "testing/internal/write_stepper.h"

namespace lockless::testing {
namespace {

using internal::Actor;
using internal::ActorState;
using internal::Exploration;
using internal::IsCheckFailed;
using internal::kMaxActors;
using internal::WriteSteppingSupported;

// ---------------------------------------------------------------- Drivers

// Only blocked actors can move: waits for one of them to stop or exit, up
// to the hang bound (a failure: nothing else is left that could unblock it).
absl::Status WaitForBlocked(Exploration& run, const ExplorerLimits& limits) {
  EXPLORER_RETURN_IF_ERROR(run.CollectBlocked(limits.hang_seconds * 1000));
  if (!run.RunnableActors().empty() || !run.AnyBlocked()) {
    return absl::OkStatus();
  }
  std::vector<std::string> names;
  for (int a = 0; a < run.num_actors(); ++a) {
    if (run.actor(a).state == ActorState::kBlocked) {
      names.push_back(run.actor(a).name);
    }
  }
  return run.Fail(absl::StrCat(absl::StrJoin(names, ", "),
                               " neither stopped nor exited for ",
                               limits.hang_seconds,
                               " s with nothing else left to run: hung"));
}

// Runs every non-stopped actor to its end; `choose` picks the next one from
// the runnable actors.
template <typename Choose>
absl::Status RunToEnd(Exploration& run, const ExplorerLimits& limits,
                      Choose choose) {
  while (true) {
    EXPLORER_RETURN_IF_ERROR(run.CollectBlocked(0));
    const std::vector<int> runnable = run.RunnableActors();
    if (runnable.empty()) {
      if (!run.AnyBlocked()) return absl::OkStatus();
      EXPLORER_RETURN_IF_ERROR(WaitForBlocked(run, limits));
      continue;
    }
    const int a = choose(runnable);
    // Alone, a recoverer need not stop at every pass (nothing could run in
    // between); it still stops at its next write.
    const bool past_passes = runnable.size() == 1 && run.AtPass(a);
    EXPLORER_RETURN_IF_ERROR(run.Step(a, past_passes));
  }
}

// After the main part: stopped actors resumed or killed (per `resume`),
// everything run to its end, `late_recoverers` more recoverers each run to
// its end, then the final checks.
template <typename Choose, typename Resume>
absl::Status Finish(Exploration& run, const ExplorerLimits& limits,
                    Choose choose, Resume resume, int late_recoverers = 0) {
  EXPLORER_RETURN_IF_ERROR(RunToEnd(run, limits, choose));
  for (int a = 0; a < run.num_actors(); ++a) {
    const Actor& actor = run.actor(a);
    if (!actor.stopped || actor.state == ActorState::kEnded) continue;
    if (resume(a)) {
      EXPLORER_RETURN_IF_ERROR(run.Resume(a));
    } else {
      ++run.stats().stops_killed;
      EXPLORER_RETURN_IF_ERROR(run.Kill(a));
    }
  }
  EXPLORER_RETURN_IF_ERROR(RunToEnd(run, limits, choose));
  for (int i = 0; i < late_recoverers; ++i) {
    EXPLORER_RETURN_IF_ERROR(run.StartRecoverer());
    EXPLORER_RETURN_IF_ERROR(RunToEnd(run, limits, choose));
  }
  return run.FinalChecks();
}

absl::StatusOr<ScheduleOutcome> Conclude(Exploration& run,
                                         const absl::Status& status) {
  if (!status.ok() && !IsCheckFailed(status)) return status;
  return run.TakeOutcome();
}

std::string Plural(int n, const char* what) {
  return absl::StrCat(n, " ", what, n == 1 ? "" : "s");
}

}  // namespace

bool InterleavingExplorerSupported() { return WriteSteppingSupported(); }

StopMatcher BeforeWriteTo(RegionPlace place, int index) {
  StopMatcher m;
  m.alternatives.push_back(
      {StopMatcher::Alternative::Kind::kWrite, place, index, 0});
  return m;
}

StopMatcher AtRecoveryPass(int pass) {
  StopMatcher m;
  m.alternatives.push_back({StopMatcher::Alternative::Kind::kPass,
                            RegionPlace::kOutside, -1, pass});
  return m;
}

StopMatcher AfterSends(int count) {
  StopMatcher m;
  m.alternatives.push_back({StopMatcher::Alternative::Kind::kSends,
                            RegionPlace::kOutside, -1, count});
  return m;
}

StopMatcher AnyOf(StopMatcher a, const StopMatcher& b) {
  a.alternatives.insert(a.alternatives.end(), b.alternatives.begin(),
                        b.alternatives.end());
  return a;
}

ExplicitSchedule& ExplicitSchedule::Step(ActorRef actor, int times) {
  actions_.push_back({Action::Kind::kStep, actor, times, {}});
  return *this;
}
ExplicitSchedule& ExplicitSchedule::StepUntil(ActorRef actor,
                                              StopMatcher until) {
  actions_.push_back({Action::Kind::kStepUntil, actor, 0, std::move(until)});
  return *this;
}
ExplicitSchedule& ExplicitSchedule::Kill(ActorRef actor) {
  actions_.push_back({Action::Kind::kKill, actor, 0, {}});
  return *this;
}
ExplicitSchedule& ExplicitSchedule::Stop(ActorRef actor) {
  actions_.push_back({Action::Kind::kStop, actor, 0, {}});
  return *this;
}
ExplicitSchedule& ExplicitSchedule::StartRecoverer() {
  actions_.push_back(
      {Action::Kind::kStartRecoverer, SenderActor(0), 0, {}});
  return *this;
}
ExplicitSchedule& ExplicitSchedule::ThenStopped(EndOfStops end) {
  end_of_stops_ = end;
  return *this;
}

void ExplorerStats::Add(const ExplorerStats& other) {
  schedules += other.schedules;
  wrapping_schedules += other.wrapping_schedules;
  steps += other.steps;
  pass_stops += other.pass_stops;
  kills += other.kills;
  unmarked_kills += other.unmarked_kills;
  unmarked_words += other.unmarked_words;
  senders_killed_during_recovery += other.senders_killed_during_recovery;
  recoverers_killed += other.recoverers_killed;
  stops += other.stops;
  stops_resumed += other.stops_resumed;
  stops_killed += other.stops_killed;
  recoverers_started += other.recoverers_started;
  recoverers_finished += other.recoverers_finished;
  recoveries_facing_dead_senders += other.recoveries_facing_dead_senders;
  recoveries_with_accounting += other.recoveries_with_accounting;
  recoveries_facing_lapped_dead += other.recoveries_facing_lapped_dead;
  decisions_checked += other.decisions_checked;
  recoveries_facing_stopped_mid_send +=
      other.recoveries_facing_stopped_mid_send;
  blocked_actors += other.blocked_actors;
  pins += other.pins;
  pin_checks += other.pin_checks;
  pinners_killed += other.pinners_killed;
  parks += other.parks;
  kills_mid_swap += other.kills_mid_swap;
  for (const auto& [kind, count] : other.kills_before) {
    kills_before[kind] += count;
  }
}

std::string ExplorerStats::ToString() const {
  std::vector<std::string> kills_by_kind;
  for (const auto& [kind, count] : kills_before) {
    kills_by_kind.push_back(absl::StrCat(kind, " ", count));
  }
  return absl::StrFormat(
      "%d schedules (%d with lapping rings), %d stepped writes, %d recovery "
      "pass stops\n"
      "kills: %d (%d senders during a recovery, %d recoverers; %d unmarked, "
      "%d words); killed before: %s\n"
      "stops: %d (%d resumed at the end, %d killed at the end)\n"
      "recoverers: %d started, %d finished OK; %d faced dead senders, %d a "
      "stopped sender mid-send, %d a dead sender whose slot was lapped; %d "
      "ran accounting passes\n"
      "dead slots whose recovered owner was checked against the truth: %d\n"
      "actors that ran blocked (no stop within the bound): %d\n"
      "pinning: %d pins kGood, %d checkpoints checked a held pin's bytes, %d "
      "pinners killed, %d parked-entry writes, %d senders killed mid-swap",
      schedules, wrapping_schedules, steps, pass_stops, kills,
      senders_killed_during_recovery, recoverers_killed, unmarked_kills,
      unmarked_words, absl::StrJoin(kills_by_kind, ", "), stops, stops_resumed, stops_killed,
      recoverers_started, recoverers_finished, recoveries_facing_dead_senders,
      recoveries_facing_stopped_mid_send, recoveries_facing_lapped_dead,
      recoveries_with_accounting, decisions_checked, blocked_actors, pins,
      pin_checks, pinners_killed, parks, kills_mid_swap);
}

std::string ScheduleOutcome::Describe() const {
  return absl::StrCat(failed() ? "FAILED: " : "passed", failure,
                      "\nschedule as run:\n", absl::StrJoin(trace, "\n"));
}

absl::StatusOr<ScheduleOutcome> RunExplicitSchedule(
    const ExplorerScenario& scenario, const ExplicitSchedule& schedule,
    const ExplorerLimits& limits) {
  if (!InterleavingExplorerSupported()) {
    return absl::UnimplementedError(
        "the interleaving explorer needs x86-64 trap-flag stepping");
  }
  Exploration run(scenario, limits);
  const absl::Status status = [&]() -> absl::Status {
    EXPLORER_RETURN_IF_ERROR(run.Begin("explicit"));
    for (const ExplicitSchedule::Action& action : schedule.actions()) {
      using Kind = ExplicitSchedule::Action::Kind;
      if (action.kind == Kind::kStartRecoverer) {
        EXPLORER_RETURN_IF_ERROR(run.StartRecoverer());
        continue;
      }
      const int a = run.Find(action.actor);
      if (a < 0) {
        return absl::InvalidArgumentError(
            "explorer: the schedule names an actor that does not exist");
      }
      switch (action.kind) {
        case Kind::kStep:
          for (int i = 0; i < action.times && run.Runnable(a); ++i) {
            EXPLORER_RETURN_IF_ERROR(run.Step(a, false));
          }
          break;
        case Kind::kStepUntil:
          for (int i = 0; !run.Matches(a, action.until); ++i) {
            if (!run.Runnable(a)) break;  // Ended or running blocked.
            if (i == 100000) {
              return absl::InvalidArgumentError(absl::StrCat(
                  "explorer: ", run.actor(a).name,
                  " never reached the StepUntil condition"));
            }
            EXPLORER_RETURN_IF_ERROR(run.Step(a, false));
          }
          break;
        case Kind::kKill:
          EXPLORER_RETURN_IF_ERROR(run.Kill(a));
          break;
        case Kind::kStop:
          EXPLORER_RETURN_IF_ERROR(run.Stop(a));
          break;
        case Kind::kStartRecoverer:
          break;
      }
    }
    return Finish(
        run, limits, [](const std::vector<int>& runnable) { return runnable[0]; },
        [&](int) { return schedule.end_of_stops() == EndOfStops::kResume; });
  }();
  return Conclude(run, status);
}

namespace {

// The random schedule a seed names: the channel's shape, the actors' work and
// the events are drawn in the constructor; Run() schedules them.
//
// Events are due at steps drawn over the schedule's expected length. Some
// wait, once due, for a moment where they matter (a bias, so that thousands
// of schedules reach the states recovery must get right):
//   kWindow          a sender in its replacement window (to_replace recorded,
//                    not yet cleared): a death there leaves an ambiguous
//                    slot, a stop a to_replace that may go stale;
//   kStaleWindow     the same with a stale to_replace (its target slot no
//                    longer holds it: its CAS fails or failed);
//   kPublished       the same after its CAS succeeded (before it takes the
//                    replaced message): the other half of the ambiguity;
//   kRace            a sender in its window for the same queue index as a
//                    dead sender's replacement in flight (several senders
//                    dying around one slot: the winner, the losers);
//   kDuringRecovery  a recovery under way (a recoverer inside MakeSender,
//                    past its start): a sender dies while recovered around;
//   kAmbiguity       (recoverers) a dead sender with a replacement in flight;
//   kLate            (recoverers) every other actor ended or stopped: by then
//                    the ring has usually lapped a dead sender's target slot,
//                    which recovery must decide by accounting.
class RandomSchedule {
 public:
  RandomSchedule(uint64_t seed, const RandomScheduleOptions& options);

  absl::StatusOr<ScheduleOutcome> Run();

 private:
  enum class EventKind { kKill, kStop, kRecover };
  enum class Moment {
    kAt,
    kWindow,
    kStaleWindow,
    kPublished,
    kRace,
    kDuringRecovery,
    kAmbiguity,
    kLate,
    kSwap,
  };
  struct Event {
    int at;
    EventKind kind;
    Moment moment;
  };

  int Uniform(int lo, int hi) {  // [lo, hi]
    return std::uniform_int_distribution<int>(lo, hi)(rng_);
  }
  // An index drawn with the given relative weights.
  int Weighted(std::initializer_list<int> weights) {
    std::discrete_distribution<int> d(weights.begin(), weights.end());
    return d(rng_);
  }
  int Pick(const std::vector<int>& from) {
    return from[Uniform(0, static_cast<int>(from.size()) - 1)];
  }
  // The next actor to step: often the last one again (stickiness).
  int Choose(const std::vector<int>& runnable);
  int ChooseAmong(const std::vector<int>& runnable);
  // Applies a kill or stop if its moment has come; `applied` says whether.
  absl::Status Apply(const Event& event, bool* applied);
  bool RecoveryDue(const Event& event) const;
  absl::Status Main();

  const RandomScheduleOptions options_;
  std::mt19937_64 rng_;
  ExplorerScenario scenario_;
  bool wrapping_ = false;
  double stickiness_ = 0;
  std::vector<Event> events_;
  std::vector<bool> resume_if_stopped_;
  std::string description_;
  std::optional<Exploration> run_;
  int last_ = -1;
};

RandomSchedule::RandomSchedule(uint64_t seed,
                               const RandomScheduleOptions& options)
    : options_(options), rng_(seed) {
  // The shape. Lapping rings get more sends, so slots are lapped after a
  // death.
  wrapping_ = options.allow_wrapping && Uniform(0, 1) == 1;
  const int senders = Weighted({0, 0, 1, 2});  // 2 or 3.
  scenario_.sends.clear();
  int total_sends = 0;
  for (int s = 0; s < senders; ++s) {
    scenario_.sends.push_back(wrapping_ ? Uniform(2, 4) : Uniform(1, 3));
    total_sends += scenario_.sends.back();
  }
  const int recoverers =
      std::min(options.max_recoverers, Weighted({10, 45, 30, 15}));
  const int kills =
      std::min(options.max_kills, Weighted({10, 30, 30, 20, 10}));
  const int stops = std::min(options.max_stops, Weighted({40, 40, 20}));
  scenario_.setup_sends = Uniform(0, 2);
  scenario_.max_recoverers = std::max(recoverers, 1);
  scenario_.message_data_size_bytes = Uniform(0, 1) == 0 ? 16 : 40;
  // From the seed's parity, not a draw: the other choices of every seed
  // stay what they were before guards existed.
  scenario_.overrun_guards = seed % 2 == 1;
  // Roomy: more slots than messages ever published (setup, sends, one per
  // recoverer, the final check), so nothing is overwritten.
  const int published = scenario_.setup_sends + total_sends + recoverers + 1;
  scenario_.queue_size = static_cast<uint32_t>(
      wrapping_ ? 2 + Weighted({50, 30, 20}) : published + Uniform(0, 2));
  stickiness_ = std::vector<double>{0.0, 0.5, 0.85}[Uniform(0, 2)];
  scenario_.unmark_every_other_kill = true;
  // Pinners from a generator of their own, so that max_pinners == 0 leaves
  // every draw above and below (and so every older seed) unchanged.
  if (options.max_pinners > 0) {
    std::mt19937_64 pin_rng(seed ^ 0x50494e4e45525321ull);
    const int room = kMaxActors - senders - scenario_.max_recoverers;
    scenario_.pinners = std::min<int>(
        room, 1 + static_cast<int>(pin_rng() % options.max_pinners));
    scenario_.pin_rounds = 1 + static_cast<int>(pin_rng() % 3);
  }

  // The events. Swarm-style, each schedule enables only some of the moments
  // (each with probability 1/2), so that some schedules concentrate on one
  // kind of event, e.g. every kill aimed at a race, rather than all of them
  // mixing the same average. With a lapping ring kills come early and
  // mostly in the window, so the ring often laps the victim's target slot
  // before a recoverer looks at it.
  const int expected_steps = total_sends * 14 + recoverers * 20 + 4;
  const auto enabled = [this](std::vector<int> weights) {
    std::vector<int> kept = weights;
    bool any = false;
    for (int& w : kept) {
      if (Uniform(0, 1) == 0) w = 0;
      any = any || w > 0;
    }
    return any ? kept : weights;
  };
  const int during = recoverers > 0 ? 1 : 0;
  std::vector<Moment> kill_moments = {
      Moment::kAt,        Moment::kWindow, Moment::kStaleWindow,
      Moment::kPublished, Moment::kRace,   Moment::kDuringRecovery};
  std::vector<int> kill_weights = wrapping_
                                      ? std::vector<int>{1, 2, 1, 1, 1, during}
                                      : std::vector<int>{2, 1, 1, 1, 1,
                                                         2 * during};
  // With pinners (only then, so older seeds keep their draws): kills aimed
  // at a sender inside a swap of a pinned scratch.
  if (scenario_.pinners > 0) {
    kill_moments.push_back(Moment::kSwap);
    kill_weights.push_back(2);
  }
  kill_weights = enabled(kill_weights);
  for (int i = 0; i < kills; ++i) {
    std::discrete_distribution<int> moment(kill_weights.begin(),
                                           kill_weights.end());
    events_.push_back(
        {Uniform(0, wrapping_ ? expected_steps / 2 : expected_steps),
         EventKind::kKill, kill_moments[moment(rng_)]});
  }
  const std::vector<Moment> stop_moments = {Moment::kAt, Moment::kWindow,
                                            Moment::kStaleWindow};
  const std::vector<int> stop_weights = enabled({1, 1, 1});
  for (int i = 0; i < stops; ++i) {
    std::discrete_distribution<int> moment(stop_weights.begin(),
                                           stop_weights.end());
    events_.push_back({Uniform(0, expected_steps), EventKind::kStop,
                       stop_moments[moment(rng_)]});
  }
  const std::vector<Moment> recover_moments = {Moment::kAt, Moment::kAmbiguity,
                                               Moment::kLate};
  const std::vector<int> recover_weights = enabled({1, 1, 2});
  for (int i = 0; i < recoverers; ++i) {
    std::discrete_distribution<int> pick(recover_weights.begin(),
                                         recover_weights.end());
    const Moment moment = recover_moments[pick(rng_)];
    events_.push_back({moment == Moment::kLate ? std::numeric_limits<int>::max()
                                               : Uniform(0, expected_steps),
                       EventKind::kRecover, moment});
  }
  std::stable_sort(events_.begin(), events_.end(),
                   [](const Event& a, const Event& b) { return a.at < b.at; });
  for (int a = 0; a < kMaxActors; ++a) {
    resume_if_stopped_.push_back(Uniform(0, 1) == 1);
  }
  description_ = absl::StrFormat(
      "seed %u: %s ring, sends %s%s, %d setup sends, %s, %s, %s, "
      "stickiness %.2f",
      seed, wrapping_ ? "lapping" : "roomy",
      absl::StrJoin(scenario_.sends, "/"),
      scenario_.overrun_guards ? " (each after a guard overrun)" : "",
      scenario_.setup_sends, Plural(recoverers, "recoverer"),
      Plural(kills, "kill"), Plural(stops, "stop"), stickiness_);
  if (scenario_.pinners > 0) {
    absl::StrAppendFormat(&description_, ", %s pinning %d time(s) each",
                          Plural(scenario_.pinners, "pinner"),
                          scenario_.pin_rounds);
  }
}

int RandomSchedule::Choose(const std::vector<int>& runnable) {
  // A pinner holding a pin is mostly passed over while others can run, so
  // that senders lap the ring past its pin and must park the message. (Draws
  // only when pinners exist: older seeds keep their schedules.)
  if (scenario_.pinners > 0) {
    std::vector<int> others;
    bool holder = false;
    for (int a : runnable) {
      if (run_->HoldsPin(a)) {
        holder = true;
      } else {
        others.push_back(a);
      }
    }
    if (holder && !others.empty() && Uniform(0, 9) != 0) {
      return ChooseAmong(others);
    }
  }
  return ChooseAmong(runnable);
}

int RandomSchedule::ChooseAmong(const std::vector<int>& runnable) {
  if (last_ >= 0 &&
      std::find(runnable.begin(), runnable.end(), last_) != runnable.end() &&
      std::uniform_real_distribution<double>(0, 1)(rng_) < stickiness_) {
    return last_;
  }
  last_ = Pick(runnable);
  return last_;
}

absl::Status RandomSchedule::Apply(const Event& event, bool* applied) {
  Exploration& run = *run_;
  *applied = false;
  if (event.moment == Moment::kDuringRecovery &&
      (!run.RecoveryUnderWay() || Uniform(0, 1) == 0)) {
    return absl::OkStatus();  // Not yet; and not always at its first chance.
  }
  std::vector<int> anyone, in_window, stale, published, racing, swapping;
  for (int a = 0; a < run.num_actors(); ++a) {
    const bool eligible = event.kind == EventKind::kKill
                              ? run.actor(a).state != ActorState::kEnded
                              : run.Runnable(a);
    if (!eligible) continue;
    if (event.moment == Moment::kDuringRecovery &&
        run.actor(a).spec.recoverer) {
      continue;
    }
    anyone.push_back(a);
    if (run.InReplacementWindow(a)) in_window.push_back(a);
    if (run.HasStaleReplacement(a)) stale.push_back(a);
    if (run.InReplacementWindow(a) && run.actor(a).published) {
      published.push_back(a);
    }
    if (run.RacesDeadSender(a)) racing.push_back(a);
    if (run.InSwap(a)) swapping.push_back(a);
  }
  std::vector<int>* victims = &anyone;
  switch (event.moment) {
    case Moment::kWindow:
      victims = &in_window;
      break;
    case Moment::kStaleWindow:
      victims = &stale;
      break;
    case Moment::kPublished:
      victims = &published;
      break;
    case Moment::kSwap:
      victims = &swapping;
      break;
    case Moment::kRace:
      // Not always at the first chance: before or after its own CAS.
      if (Uniform(0, 1) == 0) return absl::OkStatus();
      victims = &racing;
      break;
    case Moment::kDuringRecovery: {
      const int tier = Uniform(0, 2);  // Prefer stale, then in the window.
      if (tier == 0 && !stale.empty()) victims = &stale;
      if (tier == 1 && !in_window.empty()) victims = &in_window;
      break;
    }
    default:
      break;
  }
  if (victims->empty()) return absl::OkStatus();
  *applied = true;
  const int victim = Pick(*victims);
  if (event.kind == EventKind::kKill && run.InSwap(victim)) {
    ++run.stats().kills_mid_swap;
  }
  return event.kind == EventKind::kKill ? run.Kill(victim) : run.Stop(victim);
}

bool RandomSchedule::RecoveryDue(const Event& event) const {
  return event.moment != Moment::kAmbiguity ||
         run_->DeadSenderMidReplacement();
}

absl::Status RandomSchedule::Main() {
  Exploration& run = *run_;
  const ExplorerLimits& limits = options_.limits;
  EXPLORER_RETURN_IF_ERROR(run.Begin(description_));
  size_t next_event = 0;
  std::vector<Event> armed;  // Due, waiting for their moment.
  for (int t = 0;; ++t) {
    EXPLORER_RETURN_IF_ERROR(run.CollectBlocked(0));
    for (; next_event < events_.size() && events_[next_event].at <= t;
         ++next_event) {
      armed.push_back(events_[next_event]);
    }
    bool recovery_started = false;
    for (size_t i = 0; i < armed.size();) {
      bool applied = false;
      if (armed[i].kind != EventKind::kRecover) {
        EXPLORER_RETURN_IF_ERROR(Apply(armed[i], &applied));
      } else if (!recovery_started && !run.RecovererAlive() &&
                 RecoveryDue(armed[i])) {
        EXPLORER_RETURN_IF_ERROR(run.StartRecoverer());
        applied = recovery_started = true;
      }
      // An untargeted kill or stop with no victim is dropped.
      if (applied || (armed[i].kind != EventKind::kRecover &&
                      armed[i].moment == Moment::kAt)) {
        armed.erase(armed.begin() + static_cast<std::ptrdiff_t>(i));
      } else {
        ++i;
      }
    }
    const std::vector<int> runnable = run.RunnableActors();
    if (!runnable.empty()) {
      const int a = Choose(runnable);
      const bool past_passes = runnable.size() == 1 && run.AtPass(a);
      EXPLORER_RETURN_IF_ERROR(run.Step(a, past_passes));
      continue;
    }
    if (run.AnyBlocked()) {
      EXPLORER_RETURN_IF_ERROR(WaitForBlocked(run, limits));
      continue;
    }
    // Only stopped actors are left. The recoverers still to come start now,
    // one after the other, each facing the stopped ones; or, if a stopped
    // recoverer holds the setup lock, after the stops are resolved. Targeted
    // kills and stops that never found their moment are dropped.
    for (; next_event < events_.size(); ++next_event) {
      armed.push_back(events_[next_event]);
    }
    int late_recoverers = 0;
    for (const Event& event : armed) {
      if (event.kind == EventKind::kRecover) ++late_recoverers;
    }
    if (late_recoverers == 0 || run.RecovererAlive()) {
      return Finish(
          run, limits, [this](const std::vector<int>& r) { return Choose(r); },
          [this](int a) { return static_cast<bool>(resume_if_stopped_[a]); },
          late_recoverers);
    }
    EXPLORER_RETURN_IF_ERROR(run.StartRecoverer());
    for (auto it = armed.begin(); it != armed.end(); ++it) {
      if (it->kind == EventKind::kRecover) {
        armed.erase(it);
        break;
      }
    }
  }
}

absl::StatusOr<ScheduleOutcome> RandomSchedule::Run() {
  run_.emplace(scenario_, options_.limits);
  if (wrapping_) run_->stats().wrapping_schedules = 1;
  return Conclude(*run_, Main());
}

}  // namespace

absl::StatusOr<ScheduleOutcome> RunRandomSchedule(
    uint64_t seed, const RandomScheduleOptions& options) {
  if (!InterleavingExplorerSupported()) {
    return absl::UnimplementedError(
        "the interleaving explorer needs x86-64 trap-flag stepping");
  }
  return RandomSchedule(seed, options).Run();
}

}  // namespace lockless::testing
