// Test-only, internal to the interleaving explorer: what runs in an actor
// child, and the protocol between it and the scheduling parent.
//
// An actor reports every stop on its report pipe (one StopReport, written
// atomically) and then blocks reading one command byte from its command
// pipe: kCommandStep makes the pending write (or pass) and runs to the next
// stop; kCommandPastPasses does the same but does not stop at recovery
// passes until the next write. The parent kills an actor with SIGKILL while
// it blocks there, i.e. right before its pending write.
//
// What an actor did is in its ActorLog, in a MAP_SHARED mapping outside the
// region. Each actor writes only its own; the parent reads it only while the
// actor is parked (the report it wrote to the pipe after its log writes
// orders them before our reads) or after it ended (waitpid orders them).
#ifndef LOCKLESS_TESTING_INTERNAL_EXPLORER_ACTOR_H_
#define LOCKLESS_TESTING_INTERNAL_EXPLORER_ACTOR_H_

#include <limits.h>
#include <sys/types.h>

#include <cstdint>
#include <vector>

#include "ipc/queue_config.h"
#include "testing/internal/write_stepper.h"

namespace lockless::testing::internal {

inline constexpr int kMaxActors = 8;
inline constexpr int kMaxSendsPerActor = 8;

struct SendRecord {
  uint32_t seq;
  uint32_t queue_index;  // As MessageInfo reported it.
  uint32_t length;
};

struct ActorLog {
  uint32_t sends_ok;  // Sends that returned kOk, recorded in `sends`.
  SendRecord sends[kMaxSendsPerActor];
  int32_t failed_send_result;  // SendResult of a failed Send; -1: none.
  int32_t failed_send_seq;
  int32_t make_sender_code;  // Recoverers: absl::StatusCode; -1: not yet.
  int32_t slot;              // Its sender slot; -1: none (yet).
  int32_t max_pass;          // Highest recovery pass reached; -1: none.
  char make_sender_message[240];
  // Pinners: while pin_active, the actor holds a pin on message
  // pinned_message, whose payload was pinned_bytes (pinned_length) when
  // pinned. pins_ok counts kGood pins; pin_failure says why it gave up.
  int32_t pin_active;
  uint32_t pinned_message;
  uint32_t pinned_length;
  unsigned char pinned_bytes[256];
  int32_t pins_ok;
  char pin_failure[120];
};

struct SharedLog {
  ActorLog actors[kMaxActors];
};

// Why an actor stopped.
enum StopKind : uint32_t {
  kStopStore = 1,  // Before a plain store at `offset`.
  kStopFutex = 2,  // Before a futex word write at `offset`.
  kStopPass = 3,   // At recovery pass `pass` (0: the start of recovery).
};

struct StopReport {
  uint32_t kind;
  int32_t pass;
  uint64_t offset;  // From the start of the region.
};
static_assert(sizeof(StopReport) <= PIPE_BUF, "reports must be atomic");

inline constexpr char kCommandStep = 'g';
inline constexpr char kCommandPastPasses = 'p';

// How an actor child ends. Never 0, so a stray exit(0) is told apart.
enum ActorExitCode : int {
  kExitDone = 80,
  kExitSetupFailed = 81,     // Attach or the setup MakeSender failed.
  kExitSendFailed = 82,      // A Send did not return kOk (see the log).
  kExitSteppingFailed = 83,  // The write stepper broke.
  kExitParentGone = 84,      // A pipe to the parent closed.
  kExitPinFailed = 85,       // A pinner's check failed (see the log).
};

struct ActorSpec {
  // A recoverer calls MakeSender stepped (recovery included); a sender
  // claims its slot before stepping starts.
  bool recoverer = false;
  int payload_actor = 0;
  int sends = 0;
  // Self-test of the checks: after each kOk send, flip a payload byte of
  // the message just published.
  bool sabotage = false;
  // ExplorerScenario::overrun_guards.
  bool overrun_guards = false;
  // A pinner claims a pinner slot (untraced) and then, `pins` times, pins
  // the newest (even rounds) or oldest (odd rounds) index, holds the pin
  // until its next write (the scheduler runs others meanwhile), unpins and
  // checks the bytes did not change; finally it releases its slot.
  bool pinner = false;
  int pins = 0;
};

// The body of every actor child, right after fork(); never returns. Closes
// `parent_fds` (the parent's ends of every pipe), dies with the parent,
// then does what `spec` says on the channel in `region` (initialised), with
// every write to it stepped through the pipes.
[[noreturn]] void ActorMain(const ActorSpec& spec, const SteppedRegion& region,
                            const QueueConfig& config, ActorLog* log,
                            pid_t parent, int report_fd, int command_fd,
                            const std::vector<int>& parent_fds);

}  // namespace lockless::testing::internal

#endif  // LOCKLESS_TESTING_INTERNAL_EXPLORER_ACTOR_H_
