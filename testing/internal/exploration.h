// Test-only, internal to the interleaving explorer: one schedule in progress.
// Owns the region, the actor processes and everything the checks remember;
// its methods are the scheduler's actions (step, kill, stop, resume, start a
// recoverer) and the checks that follow each of them. The schedule itself
// (which action next) is the drivers' business (interleaving_explorer.cc).
//
// Every action returns OK; or CheckFailed() after recording the first failed
// check (failure()), after which the driver stops; or another error when the
// harness itself broke. After each action every actor is parked at a stop,
// has ended, or runs blocked.
//
// Thread-safety: none; single-threaded (it forks).
#ifndef LOCKLESS_TESTING_INTERNAL_EXPLORATION_H_
#define LOCKLESS_TESTING_INTERNAL_EXPLORATION_H_

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "index/queue_index.h"
#include "ipc/internal/queue_layout.h"
#include "ipc/lockless_queue.h"
#include "ipc/queue_config.h"
#include "testing/interleaving_explorer.h"
#include "testing/internal/explorer_actor.h"
#include "testing/internal/explorer_payload.h"
#include "testing/internal/region_places.h"
#include "testing/internal/write_stepper.h"

namespace lockless::testing::internal {

// The sentinel an action returns after recording a failed check.
inline absl::Status CheckFailed() {
  return absl::AbortedError("check failed");
}
inline bool IsCheckFailed(const absl::Status& status) {
  return status.code() == absl::StatusCode::kAborted;
}

#define EXPLORER_RETURN_IF_ERROR(expr)                                 \
  do {                                                                 \
    if (absl::Status explorer_status = (expr); !explorer_status.ok()) { \
      return explorer_status;                                          \
    }                                                                  \
  } while (false)

enum class ActorState {
  kParked,   // Blocked before its pending write or pass (or stopped there).
  kBlocked,  // Told to go, but not stopped again within the bound.
  kEnded,    // Exited or killed, and reaped.
};

struct Actor {
  std::string name;  // "s0", "r1"
  ActorSpec spec;
  int log_index = 0;  // Its ActorLog.
  pid_t pid = -1;
  int report_fd = -1;
  int command_fd = -1;
  ActorState state = ActorState::kParked;
  bool stopped = false;  // Parked for good, until every other actor ended.
  bool killed = false;
  int writes_done = 0;
  // Whether its current send attempt's ring CAS succeeded (the parent sees
  // the ring after that step): the truth recovery must rediscover.
  bool published = false;
  StopReport pending{};  // Valid while parked.
};

class Exploration {
 public:
  Exploration(const ExplorerScenario& scenario, const ExplorerLimits& limits)
      : scenario_(scenario), limits_(limits) {}
  Exploration(const Exploration&) = delete;
  Exploration& operator=(const Exploration&) = delete;
  // Kills and reaps every actor still alive.
  ~Exploration();

  // Region, queue, the parent's setup sends, and the sender actors, each
  // parked at its first traced write. `description` heads the trace.
  absl::Status Begin(const std::string& description);

  // ---- Actions.
  // Lets runnable actor `a` make its pending write (or pass) and waits for
  // its next stop. `past_passes`: it skips pass stops until its next write.
  absl::Status Step(int a, bool past_passes);
  // SIGKILLs `a` (parked: before its pending write) and checks the kernel
  // marked every robust mutex it held.
  absl::Status Kill(int a);
  // `a` (runnable) is never stepped again until Resume.
  absl::Status Stop(int a);
  absl::Status Resume(int a);
  // Forks a recoverer (one at a time) and waits for its first stop.
  absl::Status StartRecoverer();
  // Picks up stops and exits of blocked actors, waiting up to `timeout_ms`.
  absl::Status CollectBlocked(int timeout_ms);
  // The parent's final recovery and checks, once every actor ended.
  absl::Status FinalChecks();
  // Records a failed check (the first one is kept); returns CheckFailed().
  absl::Status Fail(std::string message);

  // ---- State, for the drivers.
  int num_actors() const { return static_cast<int>(actors_.size()); }
  const Actor& actor(int a) const { return actors_[a]; }
  bool Runnable(int a) const {
    return actors_[a].state == ActorState::kParked && !actors_[a].stopped;
  }
  std::vector<int> RunnableActors() const;
  bool AnyBlocked() const;
  bool RecovererAlive() const;
  // Whether `a` is parked at a recovery pass.
  bool AtPass(int a) const {
    return actors_[a].state == ActorState::kParked &&
           actors_[a].pending.kind == kStopPass;
  }
  // The engine index of `ref`, or -1.
  int Find(ActorRef ref) const;
  // Whether `a` is parked where `matcher` says.
  bool Matches(int a, const StopMatcher& matcher) const;
  // Whether a recovery is under way: a recoverer inside MakeSender, parked
  // past the start of recovery (it has looked at the sender slots).
  bool RecoveryUnderWay() const;
  // Whether `a` is a sender parked with a replacement in flight (its slot's
  // to_replace recorded and not yet cleared: Send's steps c..g).
  bool InReplacementWindow(int a) const;
  // The same, with a stale to_replace: its target slot holds neither
  // to_replace nor its own publish.
  bool HasStaleReplacement(int a) const;
  // Whether `a` is a sender parked inside a swap of a pinned scratch (its
  // slot's swap_take recorded and not yet cleared).
  bool InSwap(int a) const;
  // Whether `a` is a pinner parked while holding a pin.
  bool HoldsPin(int a) const {
    return actors_[a].spec.pinner && actors_[a].state == ActorState::kParked &&
           LogOf(actors_[a]).pin_active != 0;
  }
  // Whether a dead sender slot has a replacement in flight.
  bool DeadSenderMidReplacement() const;
  // Whether `a` is in its replacement window for the same queue index as a
  // dead sender's replacement in flight.
  bool RacesDeadSender(int a) const;

  void Note(std::string line) { trace_.push_back(std::move(line)); }
  ExplorerStats& stats() { return stats_; }
  // The outcome so far (failure, trace, statistics); call once, at the end.
  ScheduleOutcome TakeOutcome();

 private:
  // Puts `actor`'s tid back into the words in `owned` the kernel marked at
  // its death (see ExplorerScenario::unmark_every_other_kill). How many.
  int UnmarkDeath(const Actor& actor,
                  const std::vector<std::atomic<uint32_t>*>& owned);
  absl::Status Spawn(const ActorSpec& spec, const std::string& name);
  absl::Status AwaitStop(int a, int timeout_ms);
  absl::Status ReadStop(int a);
  absl::Status Reap(int a, int wait_status);
  // Reads every index the ring holds, as a reader would (see the .cc).
  absl::Status Checkpoint();
  absl::Status CheckRead(uint32_t q, const std::string& bytes, bool exact);
  // Every parked pinner holding a pin: its message's bytes are unchanged.
  absl::Status CheckPins();
  absl::Status CheckOwnership(const char* when);
  // Bookkeeping after `a` wrote `place`: its publish, recovery's decisions.
  absl::Status AfterWrite(int a, const Place& place);
  absl::Status CheckDecided(uint32_t slot, const std::string& who);
  // Whether a recoverer is alive and its MakeSender has not returned.
  bool RecovererInMakeSender() const;
  std::string PendingName(const Actor& actor) const;
  const ActorLog& LogOf(const Actor& actor) const {
    return log_->actors[actor.log_index];
  }
  // The actor whose payloads carry `payload_actor`, or -1.
  int ActorOfPayload(int payload_actor) const;
  void CloseFds(Actor& actor);
  std::string Prefix() const;
  QueueIndex Q(uint32_t raw) const { return queue_->MakeQueueIndex(raw); }

  const ExplorerScenario scenario_;
  const ExplorerLimits limits_;
  QueueConfig config_;
  std::optional<SteppedRegion> region_;
  ::lockless::internal::RegionView view_;
  std::optional<LocklessQueue> queue_;
  SharedLog* log_ = nullptr;
  std::vector<Actor> actors_;
  int recoverers_started_ = 0;
  int actions_ = 0;
  // Payloads of the parent's setup sends, by queue index.
  std::vector<std::string> setup_payloads_;
  // Bytes first read GOOD at each queue index; a later GOOD read must match.
  std::map<uint32_t, std::string> seen_;
  // Where each payload was first read GOOD; it must never appear elsewhere.
  std::map<PayloadId, uint32_t> published_at_;
  // For each sender slot whose owner was killed (until a recoverer claims
  // it): the message it owned at its death, known from its own steps.
  std::map<uint32_t, uint32_t> dead_truth_;
  std::vector<std::string> trace_;
  std::string failure_;
  ExplorerStats stats_;
};

}  // namespace lockless::testing::internal

#endif  // LOCKLESS_TESTING_INTERNAL_EXPLORATION_H_
