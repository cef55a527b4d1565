// Test-only. Forks, single-steps, stops and SIGKILLs child processes; never
// link it into production code, never call it from a multi-threaded test body.
//
// The interleaving explorer: checks sender recovery (DESIGN.md section 6)
// against many senders dying at once, while others keep sending, are stopped
// mid-send, or die during the recovery itself, one shared-memory write at a
// time.
//
// Actors are forked children working on one channel region:
//   - sender actors s0, s1, ... each claim a Sender (MakeSender, untraced
//     setup, so si owns sender slot i) and then make a few sends of
//     checksummed payloads that encode the actor and a sequence number;
//   - recoverers r0, r1, ... are started by the scheduler at any point: a new
//     process calling MakeSender (which runs recovery under the setup lock),
//     then one send of its own, then releasing its slot. At most one at a
//     time (it holds the setup lock; a second would just block).
// Every write an actor makes to the region stops it first: the shared write
// stepper (testing/internal/write_stepper.h) maps the region read-only, and
// its SIGSEGV handler (plain stores) or futex-write observer (robust mutex
// words) reports the write's offset to the parent through a pipe and blocks
// reading a command pipe. Recovery's accounting passes only read, so the
// recovery-pass test hook (ipc/internal/sender_recovery.h) is a stop too,
// when the library has it (it is linked weakly: without it a recoverer only
// stops at its writes).
//
// The parent is the scheduler. Only one actor runs at a time: it tells one
// parked actor to make its pending write and waits until that actor parks at
// the next one (or exits), so a schedule is a plain sequence of actions and
// replays exactly. Actions: step an actor by one write (or one pass), SIGKILL
// it before its pending write (a real death: the kernel walks its robust list
// and marks its mutexes FUTEX_OWNER_DIED through the twin mapping; the parent
// checks that it did), stop it indefinitely (never stepped again until every
// other actor has finished; then it is either resumed to completion or
// killed), start a recoverer. A recoverer that is the only actor left to run
// is let through its passes up to its next write (nothing could run between
// them). An actor that neither parks nor exits within
// `blocked_ms` (a recovery spinning without a pass hook) is treated as
// blocked and runs free meanwhile: that bound is a scheduling decision only,
// never the synchronisation of a check; such a schedule is no longer exact.
//
// Checks:
//   - after every action (a checkpoint, every actor parked): every index
//     still in the ring reads GOOD with an intact payload, the same bytes as
//     when it was first read, at the index its Send reported; the next index
//     reads GOOD or NOTHING_NEW; no (actor, sequence) is published twice;
//   - every recovery decision against the truth: the parent saw each sender's
//     ring CAS succeed or fail, so when a sender is killed it knows which
//     message it owned; when a recoverer finishes that dead slot (clears its
//     to_replace), the slot's scratch_index must name that message (and
//     after the final recovery too). A wrong decision fails at the write
//     that makes it;
//   - every Send returns kOk; a recoverer's MakeSender returns OK (each
//     recoverer has a spare slot, so anything else, DataLoss above all, is a
//     failure on a healthy channel);
//   - each kill is a real death: no futex word still names the dead actor;
//   - when every actor has ended, in the parent: MakeSender (the final
//     recovery) succeeds; every message is owned exactly once (a ring slot or
//     a sender's scratch_index, no to_replace left); LatestQueueIndex is
//     exact; every kOk send still in the ring reads GOOD at its index with
//     its exact payload, and every overwritten one TOO_OLD; a message whose
//     Send never returned kOk is in the ring only if its actor was killed
//     during that send; a send from the recovered channel works; all
//     num_senders slots can be claimed (none leaked), then are released.
//
// Schedules are explicit (ExplicitSchedule: named steps, e.g. "step s1 until
// it is about to write its ring slot") or random (RunRandomSchedule: the
// channel shape, the actors' work and the events all drawn from one seed,
// some events aimed at the moments recovery must get right: a sender in its
// replacement window or with a stale to_replace, a recovery under way; see
// RandomSchedule in the .cc). Random schedules come in two shapes: roomy
// rings, larger than everything sent, so nothing is ever overwritten and a
// lost message cannot hide; and small rings (2-4 slots) that lap, the only
// way a dead sender's target slot moves on before recovery looks at it
// (which recovery must then decide by accounting).
//
// A schedule replays exactly from its seed, except where time decides: an
// actor running blocked (the trace says so), or recovery's own wall-clock
// deadline ending its passes at a different pass.
//
// Costs: ~13 ms per random schedule in fastbuild on the 2-core CI VM (3-6
// forks, ~110 stepped writes, each a pipe round trip plus the stepper's two
// signals and two mprotects); ~6x under ASan, ~10x under TSan.
//
// x86-64 only (the write stepper's trap flag): elsewhere
// InterleavingExplorerSupported() is false and the run functions return
// Unimplemented.
//
// Thread-safety: none; call from a single-threaded process (it forks).
#ifndef LOCKLESS_TESTING_INTERLEAVING_EXPLORER_H_
#define LOCKLESS_TESTING_INTERLEAVING_EXPLORER_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace lockless::testing {

bool InterleavingExplorerSupported();

// The channel and the actors' work of one schedule.
struct ExplorerScenario {
  uint32_t queue_size = 8;
  uint32_t message_data_size_bytes = 40;
  // Sends each sender actor makes; its size is the number of sender actors.
  std::vector<int> sends = {2, 2, 2};
  // Sent by the parent before the actors start (untraced), from slot 0,
  // which it releases again.
  int setup_sends = 0;
  // Recoverers this schedule may start. Each gets a sender slot of its own
  // (num_senders = sender actors + max_recoverers), so MakeSender never has
  // a reason to fail.
  int max_recoverers = 1;
  // Self-test of the checks only: s0 rewrites one payload byte of each
  // message it published right after its Send returned, as a buggy sender
  // would. Every schedule must then fail.
  bool sabotage_published_payload = false;
  // Sender actors write one byte past max_size() into data() before each
  // send (a traced write); that Send must say kGuardOverwritten (having
  // restored the guard: traced writes too) and the send is then retried.
  // A kill between the overrun and the restore leaves a broken guard for
  // the next MakeSender of that slot to repair; the final checks want every
  // guard intact once every slot was claimed.
  bool overrun_guards = false;
  // Every other kill (the 1st, 3rd, ...) is one the kernel did not mark (as when an OOM-reaped
  // process loses its robust list first): right after the kernel marked the
  // victim's mutexes, the parent puts the victim's tid back into every word
  // it owned, so survivors must prove the death from the owner records
  // (ipc/internal/owner_liveness.h) and mark it themselves. The setup lock
  // is left marked if the victim died before recording itself as its holder
  // (then only the kernel's mark can free it; see setup_lock.h).
  bool unmark_every_other_kill = false;
  // Pinner actors p0, p1, ... (QueueConfig::num_pinners = pinners): each
  // pins `pin_rounds` times (newest, oldest, newest, ...), holding every pin
  // across the scheduler's choices until its unpin write. Checked: after
  // every action, each pin held by a parked pinner still has the bytes it
  // had when pinned; after its unpin, the pinner checks them itself; after
  // the final recovery every pinner slot can be claimed.
  int pinners = 0;
  int pin_rounds = 2;
};

// Bounds of one schedule; none of them synchronises a check.
struct ExplorerLimits {
  // An actor that neither reaches its next stop nor exits within this is
  // treated as blocked (runs free; the schedule goes on without it).
  int blocked_ms = 2000;
  // Once nothing else can run, an actor still running after this long is
  // hung: a failure.
  int hang_seconds = 60;
  // Actions per schedule before it is declared a livelock: a failure.
  int max_actions = 100000;
};

// An actor, by role and number: senders are numbered from 0 (sender slot i),
// recoverers in the order they are started.
struct ActorRef {
  enum class Role { kSender, kRecoverer, kPinner };
  Role role;
  int number;
};
inline ActorRef SenderActor(int number) {
  return {ActorRef::Role::kSender, number};
}
inline ActorRef RecovererActor(int number) {
  return {ActorRef::Role::kRecoverer, number};
}
inline ActorRef PinnerActor(int number) {
  return {ActorRef::Role::kPinner, number};
}

// The parts of a channel region a write can go to.
enum class RegionPlace {
  kSetupLock,
  kSetupLockOwner,  // The holder's OwnerRecord (owner_liveness.h).
  kNextQueueIndex,
  kOtherHeader,
  kRing,
  kMessageQueueIndex,
  kMessageLength,
  kMessageTime,
  kMessageData,
  kWatcher,
  kSenderOwnership,
  kSenderOwner,  // The slot's OwnerRecord, written by MakeSender's claim.
  kSenderScratch,
  kSenderToReplace,
  // Pinning (index: the sender slot, or the pinner slot).
  kSenderSwap,      // swap_take / swap_parked_entry: parking a pinned scratch.
  kSenderParked,    // One of the slot's parked entries.
  kPinnerOwnership,
  kPinnerOwner,
  kPinnerPinned,
  kOutside,
};

// Where an actor is parked, for ExplicitSchedule::StepUntil. Matches if any
// of its alternatives does.
struct StopMatcher {
  struct Alternative {
    enum class Kind { kWrite, kPass, kSends } kind;
    RegionPlace place = RegionPlace::kOutside;
    int index = -1;  // Array element (ring slot, message, sender); -1: any.
    int number = 0;  // kPass: a pass >= number. kSends: sends done >= number.
  };
  std::vector<Alternative> alternatives;
};
// Parked before a write to `place` (element `index`, or any).
StopMatcher BeforeWriteTo(RegionPlace place, int index = -1);
// Parked at recovery pass `pass` or a later one.
StopMatcher AtRecoveryPass(int pass);
// Its `count`-th send has returned kOk (and it is parked at its next write).
StopMatcher AfterSends(int count);
StopMatcher AnyOf(StopMatcher a, const StopMatcher& b);

// What happens to stopped actors once every other actor has finished.
enum class EndOfStops { kResume, kKill };

// An explicit schedule. Actions run in order; then every actor that is not
// stopped runs to its end (lowest actor first), then the stopped ones are
// resumed or killed, and whatever is left runs to its end.
class ExplicitSchedule {
 public:
  ExplicitSchedule& Step(ActorRef actor, int times = 1);
  // Steps `actor` until it is parked where `until` says. Ends early (no
  // error) if the actor exits or runs blocked first; fails the schedule
  // (harness error) after 100000 steps.
  ExplicitSchedule& StepUntil(ActorRef actor, StopMatcher until);
  ExplicitSchedule& Kill(ActorRef actor);
  ExplicitSchedule& Stop(ActorRef actor);
  ExplicitSchedule& StartRecoverer();
  ExplicitSchedule& ThenStopped(EndOfStops end);

  struct Action {
    enum class Kind { kStep, kStepUntil, kKill, kStop, kStartRecoverer };
    Kind kind;
    ActorRef actor{ActorRef::Role::kSender, 0};
    int times = 0;
    StopMatcher until;
  };
  const std::vector<Action>& actions() const { return actions_; }
  EndOfStops end_of_stops() const { return end_of_stops_; }

 private:
  std::vector<Action> actions_;
  EndOfStops end_of_stops_ = EndOfStops::kResume;
};

// What random schedules may contain (caps; each schedule draws below them).
struct RandomScheduleOptions {
  int max_kills = 4;
  int max_stops = 2;
  int max_recoverers = 3;
  // Draw small, lapping rings for about half of the schedules.
  bool allow_wrapping = true;
  // Pinner actors (ExplorerScenario::pinners): 0 keeps every seed's
  // schedule as it was before pinning existed; above 0, each schedule draws
  // 1..max_pinners of them from a second generator seeded from the seed.
  int max_pinners = 0;
  ExplorerLimits limits;
};

// What schedules exercised, summed over schedules.
struct ExplorerStats {
  int64_t schedules = 0;
  int64_t wrapping_schedules = 0;
  int64_t steps = 0;            // Writes made by actors, one at a time.
  int64_t pass_stops = 0;       // Recovery passes stopped at.
  int64_t kills = 0;
  // Kills whose kernel marks were undone (unmark_every_other_kill), and the
  // mutex words put back to name the dead actor.
  int64_t unmarked_kills = 0;
  int64_t unmarked_words = 0;
  // Killed while a recoverer was inside MakeSender.
  int64_t senders_killed_during_recovery = 0;
  int64_t recoverers_killed = 0;
  int64_t stops = 0;
  int64_t stops_resumed = 0;
  int64_t stops_killed = 0;
  int64_t recoverers_started = 0;
  int64_t recoverers_finished = 0;
  // Recoverers started while some sender slot was marked dead.
  int64_t recoveries_facing_dead_senders = 0;
  // Recoverers started while a stopped sender had a replacement in flight.
  int64_t recoveries_facing_stopped_mid_send = 0;
  // Recoverers started while a dead sender had a replacement in flight and
  // its target ring slot had moved on to a later lap.
  int64_t recoveries_facing_lapped_dead = 0;
  // Finished recoverers whose recovery reached an accounting pass (pass 1+:
  // some dead sender's target slot was lapped, or the hook is missing).
  int64_t recoveries_with_accounting = 0;
  // Dead sender slots whose recovered state was checked against the
  // message their owner really owned at its death.
  int64_t decisions_checked = 0;
  int64_t blocked_actors = 0;   // Ran past blocked_ms without stopping.
  // Pinning: pins kGood by pinner actors that ended normally, checkpoints
  // that compared a held pin's bytes, and pinners killed.
  int64_t pins = 0;
  int64_t pin_checks = 0;
  int64_t pinners_killed = 0;
  // Writes of parked entries (a sender or a claimer parking a pinned
  // scratch, or recovery finishing such a swap), and kills of senders
  // inside such a swap.
  int64_t parks = 0;
  int64_t kills_mid_swap = 0;
  // Kills by the place of the write the victim was about to make.
  std::map<std::string, int64_t> kills_before;

  void Add(const ExplorerStats& other);
  std::string ToString() const;
};

struct ScheduleOutcome {
  // Empty if every check passed; else the first violated check.
  std::string failure;
  // The schedule as run: one line per action, with the write each step made.
  std::vector<std::string> trace;
  ExplorerStats stats;

  bool failed() const { return !failure.empty(); }
  // The failure, then the trace, for a test log.
  std::string Describe() const;
};

// Runs one schedule. A failed check is reported in the outcome; the status is
// an error only if the harness itself broke (fork, pipes, mappings, a schedule
// naming an actor that does not exist).
absl::StatusOr<ScheduleOutcome> RunExplicitSchedule(
    const ExplorerScenario& scenario, const ExplicitSchedule& schedule,
    const ExplorerLimits& limits = {});

// Runs the random schedule `seed` names: the same seed gives the same
// schedule (but see "replays exactly" at the top).
absl::StatusOr<ScheduleOutcome> RunRandomSchedule(
    uint64_t seed, const RandomScheduleOptions& options);

}  // namespace lockless::testing

#endif  // LOCKLESS_TESTING_INTERLEAVING_EXPLORER_H_
