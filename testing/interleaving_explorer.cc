#include "testing/interleaving_explorer.h"

#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <limits>
#include <optional>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "index/index.h"
#include "index/queue_index.h"
#include "ipc/internal/queue_layout.h"
#include "ipc/internal/sender_recovery.h"
#include "ipc/lockless_queue.h"
#include "ipc/queue_config.h"
#include "sync/robust_mutex.h"
#include "testing/internal/write_stepper.h"

// Weak: the recovery-pass hook is a test hook of the recovery under test. A
// library without it (an older recovery) still links; recoverers then stop
// only at their writes, and a recovery spinning without writing runs blocked.
namespace lockless::internal {
void SetRecoveryPassObserver(RecoveryPassObserver observer)
    __attribute__((weak));
}  // namespace lockless::internal

namespace lockless::testing {
namespace {

using internal::RouteRobustListThroughTwin;
using internal::StartWriteStepping;
using internal::SteppedRegion;
using internal::WriteKind;
using internal::WriteStderr;
using internal::WriteStepHooks;
using internal::WriteSteppingSupported;
using RegionView = ::lockless::internal::RegionView;

// ---------------------------------------------------------------- Payloads
//
// byte 0: magic, 1: payload actor, 2: sequence number, 3: length, then a
// pattern derived from all three, then the FNV-1a hash of everything before
// it (4 bytes). A torn or foreign payload fails at least one of these.

constexpr unsigned char kPayloadMagic = 0xa7;
constexpr size_t kMinPayloadBytes = 12;
constexpr size_t kMaxPayloadBytes = 255;  // Length must fit in byte 3.
// Payload actor ids: sender actor i is i, recoverer k is 16 + k.
constexpr int kFirstRecovererPayloadActor = 16;
constexpr int kSetupPayloadActor = 0xee;  // The parent's setup sends.
constexpr int kCheckPayloadActor = 0xef;  // The parent's final send.

uint32_t Fnv1a(const unsigned char* data, size_t length) {
  uint32_t hash = 2166136261u;
  for (size_t i = 0; i < length; ++i) {
    hash = (hash ^ data[i]) * 16777619u;
  }
  return hash;
}

unsigned char PatternByte(int actor, int seq, size_t i) {
  return static_cast<unsigned char>(actor * 37 + seq * 11 + i * 13 + 5);
}

size_t PayloadLength(int actor, int seq, size_t max_bytes) {
  const size_t span = std::min(max_bytes, kMaxPayloadBytes) -
                      kMinPayloadBytes + 1;
  return kMinPayloadBytes + static_cast<size_t>(actor * 7 + seq * 5) % span;
}

void FillPayload(int actor, int seq, size_t length, unsigned char* out) {
  out[0] = kPayloadMagic;
  out[1] = static_cast<unsigned char>(actor);
  out[2] = static_cast<unsigned char>(seq);
  out[3] = static_cast<unsigned char>(length);
  for (size_t i = 4; i + 4 < length; ++i) out[i] = PatternByte(actor, seq, i);
  const uint32_t hash = Fnv1a(out, length - 4);
  std::memcpy(out + length - 4, &hash, sizeof(hash));
}

std::string PayloadBytes(int actor, int seq, size_t max_bytes) {
  std::string bytes(PayloadLength(actor, seq, max_bytes), '\0');
  FillPayload(actor, seq, bytes.size(),
              reinterpret_cast<unsigned char*>(bytes.data()));
  return bytes;
}

struct PayloadId {
  int actor;
  int seq;
  bool operator<(const PayloadId& other) const {
    return actor != other.actor ? actor < other.actor : seq < other.seq;
  }
};

std::string PayloadActorName(int actor) {
  if (actor == kSetupPayloadActor) return "setup";
  if (actor == kCheckPayloadActor) return "check";
  if (actor >= kFirstRecovererPayloadActor) {
    return absl::StrCat("r", actor - kFirstRecovererPayloadActor);
  }
  return absl::StrCat("s", actor);
}

std::string PayloadName(PayloadId id) {
  return absl::StrCat(PayloadActorName(id.actor), "#", id.seq);
}

// Decodes a payload read back, or says why it is not one of ours intact.
absl::StatusOr<PayloadId> DecodePayload(const std::string& bytes) {
  const auto* data = reinterpret_cast<const unsigned char*>(bytes.data());
  const size_t length = bytes.size();
  if (length < kMinPayloadBytes || length > kMaxPayloadBytes) {
    return absl::DataLossError(absl::StrCat("length ", length));
  }
  if (data[0] != kPayloadMagic || data[3] != length) {
    return absl::DataLossError("bad magic or length byte");
  }
  const int actor = data[1];
  const int seq = data[2];
  for (size_t i = 4; i + 4 < length; ++i) {
    if (data[i] != PatternByte(actor, seq, i)) {
      return absl::DataLossError(absl::StrCat("byte ", i, " differs"));
    }
  }
  uint32_t hash;
  std::memcpy(&hash, data + length - 4, sizeof(hash));
  if (hash != Fnv1a(data, length - 4)) {
    return absl::DataLossError("checksum mismatch");
  }
  return PayloadId{actor, seq};
}

// ---------------------------------------------------------------- Shared log
//
// One MAP_SHARED anonymous mapping outside the region. Each actor writes only
// its own ActorLog; the parent reads it only while that actor is parked (the
// stop report it wrote to the pipe orders its log writes before our reads)
// or after it ended (waitpid orders them).

constexpr int kMaxActors = 8;
constexpr int kMaxSendsPerActor = 8;

struct SendRecord {
  uint32_t seq;
  uint32_t queue_index;
  uint32_t length;
};

struct ActorLog {
  uint32_t sends_ok;
  SendRecord sends[kMaxSendsPerActor];
  int32_t failed_send_result;  // SendResult of a failed Send; -1: none.
  int32_t failed_send_seq;
  int32_t make_sender_code;  // absl::StatusCode; -1: not returned.
  int32_t slot;              // Sender slot; -1: none.
  int32_t max_pass;          // Highest recovery pass its recovery reached.
  char make_sender_message[240];
};

struct SharedLog {
  ActorLog actors[kMaxActors];
};

// ---------------------------------------------------------------- Child side

// What a child reports when it stops.
enum StopKind : uint32_t {
  kStopStore = 1,  // Before a plain store at `offset`.
  kStopFutex = 2,  // Before a futex word write at `offset`.
  kStopPass = 3,   // At recovery pass `pass`.
};

struct StopReport {
  uint32_t kind;
  int32_t pass;
  uint64_t offset;
};
static_assert(sizeof(StopReport) <= PIPE_BUF, "reports must be atomic");

// Commands: make the pending write (or pass); 'p' also skips pass stops
// until the next write, for a recoverer that is the only actor left to run.
constexpr char kCommandStep = 'g';
constexpr char kCommandPastPasses = 'p';

// How an actor child ends. Never 0, so a stray exit(0) is told apart.
enum ActorExitCode : int {
  kExitDone = 80,
  kExitSetupFailed = 81,    // Attach or the setup MakeSender failed.
  kExitSendFailed = 82,     // A Send did not return kOk (see the log).
  kExitSteppingFailed = 83, // The write stepper broke.
  kExitParentGone = 84,     // A pipe to the parent closed.
};

struct ChildPipes {
  int report_fd = -1;
  int command_fd = -1;
  bool skip_passes = false;
};

ChildPipes g_pipes;
// This child's log, for the pass observer.
ActorLog* g_log = nullptr;

// Async-signal-safe: runs in the stepper's SIGSEGV handler.
void ReportAndWait(const StopReport& report) {
  const char* bytes = reinterpret_cast<const char*>(&report);
  size_t left = sizeof(report);
  while (left > 0) {
    const ssize_t n = write(g_pipes.report_fd, bytes, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) _exit(kExitParentGone);
    bytes += n;
    left -= static_cast<size_t>(n);
  }
  char command = 0;
  while (true) {
    const ssize_t n = read(g_pipes.command_fd, &command, 1);
    if (n == 1) break;
    if (n < 0 && errno == EINTR) continue;
    _exit(kExitParentGone);
  }
  g_pipes.skip_passes = command == kCommandPastPasses;
}

void StopBeforeWrite(uint64_t offset, WriteKind kind) {
  ReportAndWait(StopReport{
      kind == WriteKind::kStore ? kStopStore : kStopFutex, 0, offset});
}

void StopAtPass(int pass) {
  g_log->max_pass = std::max(g_log->max_pass, static_cast<int32_t>(pass));
  if (g_pipes.skip_passes) return;
  ReportAndWait(StopReport{kStopPass, pass, 0});
}

struct ActorSpec {
  bool recoverer = false;
  int payload_actor = 0;
  int sends = 0;
  bool sabotage = false;
};

// Body of every actor child; never returns.
[[noreturn]] void ActorMain(const ActorSpec& spec, const SteppedRegion& region,
                            const QueueConfig& config, ActorLog* log,
                            pid_t parent, int report_fd, int command_fd,
                            const std::vector<int>& parent_fds) {
  // Dies with the test instead of lingering, stopped, if the parent dies.
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != parent) _exit(kExitParentGone);
  for (int fd : parent_fds) close(fd);
  g_pipes = ChildPipes{report_fd, command_fd, false};
  g_log = log;

  RouteRobustListThroughTwin(region);
  absl::StatusOr<LocklessQueue> queue =
      LocklessQueue::Attach(region.primary(), region.size_bytes(), config);
  if (!queue.ok()) {
    WriteStderr("explorer actor: Attach failed\n");
    _exit(kExitSetupFailed);
  }
  WriteStepHooks hooks;
  hooks.before_write = StopBeforeWrite;
  hooks.failure_exit_code = kExitSteppingFailed;

  std::optional<Sender> sender;
  if (!spec.recoverer) {
    // Untraced setup: s_i claims slot i before anything else happens.
    absl::StatusOr<Sender> made = queue->MakeSender();
    if (!made.ok()) {
      WriteStderr("explorer actor: setup MakeSender failed\n");
      _exit(kExitSetupFailed);
    }
    log->slot = static_cast<int32_t>(made->slot());
    sender.emplace(*std::move(made));
    StartWriteStepping(region, hooks);
  } else {
    if (&::lockless::internal::SetRecoveryPassObserver != nullptr) {
      ::lockless::internal::SetRecoveryPassObserver(StopAtPass);
    }
    StartWriteStepping(region, hooks);
    absl::StatusOr<Sender> made = queue->MakeSender();
    log->make_sender_code = static_cast<int32_t>(made.status().code());
    const std::string message(made.status().message());
    std::snprintf(log->make_sender_message, sizeof(log->make_sender_message),
                  "%s", message.c_str());
    if (!made.ok()) _exit(kExitDone);
    log->slot = static_cast<int32_t>(made->slot());
    sender.emplace(*std::move(made));
  }

  // Static: the same source address in every run, so memcpy makes the same
  // stores and schedules replay exactly.
  static unsigned char payload[kMaxPayloadBytes];
  for (int seq = 0; seq < spec.sends; ++seq) {
    const size_t length = PayloadLength(spec.payload_actor, seq,
                                        config.message_data_size_bytes);
    FillPayload(spec.payload_actor, seq, length, payload);
    MessageInfo info;
    const SendResult result = sender->Send(payload, length, &info);
    if (result != SendResult::kOk) {
      log->failed_send_result = static_cast<int32_t>(result);
      log->failed_send_seq = seq;
      _exit(kExitSendFailed);
    }
    log->sends[seq] = SendRecord{static_cast<uint32_t>(seq),
                                 info.queue_index.index(),
                                 static_cast<uint32_t>(length)};
    log->sends_ok = static_cast<uint32_t>(seq + 1);
    if (spec.sabotage) {
      // Self-test: scribble on the message just published (a traced write).
      const RegionView view(region.primary(),
                            *::lockless::internal::ComputeLayout(config));
      const Index entry = view.ring(info.queue_index.Wrapped())->Load();
      view.message(entry.message_index())->data()[4] ^= 0x5a;
    }
  }
  sender.reset();  // Releases the slot (a traced futex write).
  _exit(kExitDone);
}

// ---------------------------------------------------------------- Places

struct Place {
  RegionPlace place = RegionPlace::kOutside;
  int index = -1;
  uint64_t byte = 0;  // kMessageData: offset into the payload.
};

bool Within(const void* address, const void* field, size_t size) {
  const char* a = static_cast<const char*>(address);
  const char* f = static_cast<const char*>(field);
  return a >= f && a < f + size;
}

Place Locate(const RegionView& view, uint64_t offset) {
  const ::lockless::internal::Layout& layout = view.layout();
  const char* address = static_cast<const char*>(view.base()) + offset;
  const auto* header = view.header();
  if (Within(address, &header->setup_lock, sizeof(header->setup_lock))) {
    return {RegionPlace::kSetupLock};
  }
  if (Within(address, &header->next_queue_index,
             sizeof(header->next_queue_index))) {
    return {RegionPlace::kNextQueueIndex};
  }
  if (offset < layout.ring_offset) return {RegionPlace::kOtherHeader};
  const uint64_t ring_end =
      layout.ring_offset + uint64_t{view.queue_size()} * sizeof(AtomicIndex);
  if (offset < ring_end) {
    return {RegionPlace::kRing,
            static_cast<int>((offset - layout.ring_offset) /
                             sizeof(AtomicIndex))};
  }
  const uint64_t messages_end =
      layout.messages_offset + layout.num_messages * layout.message_stride_bytes;
  if (offset >= layout.messages_offset && offset < messages_end) {
    const uint64_t m =
        (offset - layout.messages_offset) / layout.message_stride_bytes;
    const int index = static_cast<int>(m);
    const auto* message = view.message(m);
    const auto& h = message->header;
    if (Within(address, &h.queue_index, sizeof(h.queue_index))) {
      return {RegionPlace::kMessageQueueIndex, index};
    }
    if (Within(address, &h.length, sizeof(h.length))) {
      return {RegionPlace::kMessageLength, index};
    }
    if (Within(address, &h.monotonic_sent_time_ns,
               sizeof(h.monotonic_sent_time_ns)) ||
        Within(address, &h.realtime_sent_time_ns,
               sizeof(h.realtime_sent_time_ns))) {
      return {RegionPlace::kMessageTime, index};
    }
    const char* data = reinterpret_cast<const char*>(message->data());
    if (address >= data) {
      return {RegionPlace::kMessageData, index,
              static_cast<uint64_t>(address - data)};
    }
    return {RegionPlace::kOutside};
  }
  if (offset >= layout.watchers_offset && offset < layout.senders_offset) {
    return {RegionPlace::kWatcher,
            static_cast<int>((offset - layout.watchers_offset) /
                             sizeof(::lockless::internal::WatcherSlot))};
  }
  const uint64_t senders_end =
      layout.senders_offset + uint64_t{view.config().num_senders} *
                                  sizeof(::lockless::internal::SenderSlot);
  if (offset >= layout.senders_offset && offset < senders_end) {
    const int s = static_cast<int>((offset - layout.senders_offset) /
                                   sizeof(::lockless::internal::SenderSlot));
    const auto* slot = view.sender(static_cast<uint32_t>(s));
    if (Within(address, &slot->ownership, sizeof(slot->ownership))) {
      return {RegionPlace::kSenderOwnership, s};
    }
    if (Within(address, &slot->scratch_index, sizeof(slot->scratch_index))) {
      return {RegionPlace::kSenderScratch, s};
    }
    if (Within(address, &slot->to_replace, sizeof(slot->to_replace))) {
      return {RegionPlace::kSenderToReplace, s};
    }
  }
  return {RegionPlace::kOutside};
}

std::string PlaceName(const Place& p) {
  switch (p.place) {
    case RegionPlace::kSetupLock:
      return "setup_lock";
    case RegionPlace::kNextQueueIndex:
      return "next_queue_index";
    case RegionPlace::kOtherHeader:
      return "header";
    case RegionPlace::kRing:
      return absl::StrCat("ring[", p.index, "]");
    case RegionPlace::kMessageQueueIndex:
      return absl::StrCat("msg[", p.index, "].queue_index");
    case RegionPlace::kMessageLength:
      return absl::StrCat("msg[", p.index, "].length");
    case RegionPlace::kMessageTime:
      return absl::StrCat("msg[", p.index, "].sent_time");
    case RegionPlace::kMessageData:
      return absl::StrCat("msg[", p.index, "].data+", p.byte);
    case RegionPlace::kWatcher:
      return absl::StrCat("watcher[", p.index, "]");
    case RegionPlace::kSenderOwnership:
      return absl::StrCat("sender[", p.index, "].ownership");
    case RegionPlace::kSenderScratch:
      return absl::StrCat("sender[", p.index, "].scratch_index");
    case RegionPlace::kSenderToReplace:
      return absl::StrCat("sender[", p.index, "].to_replace");
    case RegionPlace::kOutside:
      break;
  }
  return "outside the layout";
}

// A coarse name for the kill histogram.
std::string PlaceKind(const Place& p) {
  switch (p.place) {
    case RegionPlace::kMessageData:
      return "payload";
    case RegionPlace::kMessageLength:
      return "length";
    case RegionPlace::kMessageTime:
      return "send time";
    case RegionPlace::kMessageQueueIndex:
      return "message queue_index";
    case RegionPlace::kSenderScratch:
      return "scratch_index";
    case RegionPlace::kSenderToReplace:
      return "to_replace";
    case RegionPlace::kRing:
      return "ring CAS";
    case RegionPlace::kNextQueueIndex:
      return "next_queue_index CAS";
    case RegionPlace::kSenderOwnership:
      return "sender mutex";
    case RegionPlace::kSetupLock:
      return "setup lock";
    default:
      return PlaceName(p);
  }
}

// The value now at a place the trace just saw written, for display.
std::string ValueAt(const RegionView& view, const Place& p) {
  switch (p.place) {
    case RegionPlace::kRing:
      return view.ring(static_cast<uint32_t>(p.index))->Load().DebugString();
    case RegionPlace::kSenderScratch:
      return view.sender(static_cast<uint32_t>(p.index))
          ->scratch_index.Load()
          .DebugString();
    case RegionPlace::kSenderToReplace:
      return view.sender(static_cast<uint32_t>(p.index))
          ->to_replace.Load()
          .DebugString();
    case RegionPlace::kNextQueueIndex:
      return view.header()
          ->next_queue_index.Load(view.queue_size())
          .DebugString();
    case RegionPlace::kMessageQueueIndex:
      return view.message(static_cast<uint64_t>(p.index))
          ->header.queue_index.Load(view.queue_size())
          .DebugString();
    case RegionPlace::kMessageLength:
      return absl::StrCat(view.message(static_cast<uint64_t>(p.index))
                              ->header.length.load(std::memory_order_relaxed));
    case RegionPlace::kSetupLock:
      return absl::StrFormat("0x%08x",
                             view.header()->setup_lock.RawOwnerWord());
    case RegionPlace::kSenderOwnership:
      return absl::StrFormat(
          "0x%08x",
          view.sender(static_cast<uint32_t>(p.index))
              ->ownership.RawOwnerWord());
    default:
      return "";
  }
}

// ---------------------------------------------------------------- Parent side

enum class ActorState { kParked, kBlocked, kEnded };

struct Actor {
  std::string name;
  ActorSpec spec;
  int log_index = 0;  // Its ActorLog.
  pid_t pid = -1;
  int report_fd = -1;
  int command_fd = -1;
  ActorState state = ActorState::kParked;
  bool stopped = false;  // Parked for good, until every other actor ended.
  bool killed = false;
  int writes_done = 0;
  // Whether its current send attempt's ring CAS succeeded (seen by the
  // parent after that step): the ground truth recovery must rediscover.
  bool published = false;
  StopReport pending{};  // Valid while parked.
};

// The sentinel an action returns after recording a failed check.
absl::Status CheckFailed() { return absl::AbortedError("check failed"); }
bool IsCheckFailed(const absl::Status& s) {
  return s.code() == absl::StatusCode::kAborted;
}

std::string ErrnoMessage(const char* what) {
  return absl::StrCat(what, ": ", strerror(errno));
}

#define EXPLORER_RETURN_IF_ERROR(expr)                  \
  do {                                                  \
    if (absl::Status explorer_status = (expr);          \
        !explorer_status.ok()) {                        \
      return explorer_status;                           \
    }                                                   \
  } while (false)

// One schedule: the region, the actors, the checks. Its methods are the
// scheduler's actions; each returns OK, CheckFailed() after recording
// failure_, or a harness error.
class Exploration {
 public:
  Exploration(const ExplorerScenario& scenario, const ExplorerLimits& limits)
      : scenario_(scenario), limits_(limits) {}
  Exploration(const Exploration&) = delete;
  Exploration& operator=(const Exploration&) = delete;
  ~Exploration() {
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

  // Region, queue, setup sends, and the sender actors, each parked at its
  // first traced write.
  absl::Status Begin(const std::string& description);

  absl::Status Step(int a, bool past_passes);
  absl::Status Kill(int a);
  absl::Status Stop(int a);
  absl::Status Resume(int a);
  absl::Status StartRecoverer();
  // Picks up stops and exits of blocked actors (poll, no wait).
  absl::Status CollectBlocked(int timeout_ms);
  // The parent's final recovery and checks, once every actor ended.
  absl::Status FinalChecks();
  absl::Status Fail(std::string message) {
    if (failure_.empty()) failure_ = std::move(message);
    return CheckFailed();
  }

  int num_actors() const { return static_cast<int>(actors_.size()); }
  const Actor& actor(int a) const { return actors_[a]; }
  bool Runnable(int a) const {
    return actors_[a].state == ActorState::kParked && !actors_[a].stopped;
  }
  std::vector<int> RunnableActors() const {
    std::vector<int> out;
    for (int a = 0; a < num_actors(); ++a) {
      if (Runnable(a)) out.push_back(a);
    }
    return out;
  }
  bool AnyBlocked() const {
    for (const Actor& actor : actors_) {
      if (actor.state == ActorState::kBlocked) return true;
    }
    return false;
  }
  bool RecovererAlive() const {
    for (const Actor& actor : actors_) {
      if (actor.spec.recoverer && actor.state != ActorState::kEnded) {
        return true;
      }
    }
    return false;
  }
  // Whether a recoverer is alive and its MakeSender has not returned.
  bool RecovererInMakeSender() const {
    for (const Actor& actor : actors_) {
      if (actor.spec.recoverer && actor.state != ActorState::kEnded &&
          LogOf(actor).make_sender_code < 0) {
        return true;
      }
    }
    return false;
  }
  int recoverers_started() const { return recoverers_started_; }
  // Whether a recovery is under way: a recoverer inside MakeSender, parked
  // past the start of recovery (it has looked at the sender slots).
  bool RecoveryUnderWay() const {
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
  // Whether `a` is in its replacement window with a stale to_replace: its
  // target slot holds neither to_replace nor its own publish.
  bool HasStaleReplacement(int a) const {
    if (!InReplacementWindow(a)) return false;
    const auto* slot =
        view_.sender(static_cast<uint32_t>(LogOf(actors_[a]).slot));
    // acquire, all: only the values matter; the actor is parked.
    const Index to_replace = slot->to_replace.Load();
    const Index scratch = slot->scratch_index.Load();
    const Index target =
        view_.ring(scratch.queue_index() % config_.queue_size)->Load();
    return target != to_replace && target != scratch;
  }
  // Whether a dead sender slot has a replacement in flight (recovery must
  // decide whether it published).
  bool DeadSenderMidReplacement() const {
    for (uint32_t s = 0; s < config_.num_senders; ++s) {
      const auto* slot = view_.sender(s);
      // acquire: only the values matter.
      if (OwnerDied(slot->ownership.RawOwnerWord()) &&
          slot->to_replace.Load().valid() &&
          slot->to_replace.Load() != slot->scratch_index.Load()) {
        return true;
      }
    }
    return false;
  }
  // Whether `a` is a sender parked with a replacement in flight (its slot's
  // to_replace recorded and not yet cleared: Send's steps c..g).
  bool InReplacementWindow(int a) const {
    const Actor& actor = actors_[a];
    if (actor.spec.recoverer || actor.state != ActorState::kParked) {
      return false;
    }
    const int slot = LogOf(actor).slot;
    // acquire: only the value matters; the actor is parked.
    return slot >= 0 && view_.sender(static_cast<uint32_t>(slot))
                            ->to_replace.Load()
                            .valid();
  }
  // The engine index of `ref`, or -1.
  int Find(ActorRef ref) const;
  bool Matches(int a, const StopMatcher& matcher) const;
  // Whether `a` is parked at a recovery pass.
  bool AtPass(int a) const {
    return actors_[a].state == ActorState::kParked &&
           actors_[a].pending.kind == kStopPass;
  }
  void Note(std::string line) { trace_.push_back(std::move(line)); }
  bool failed() const { return !failure_.empty(); }

  ScheduleOutcome TakeOutcome() {
    ScheduleOutcome outcome;
    outcome.failure = failure_;
    outcome.trace = std::move(trace_);
    stats_.schedules = 1;
    outcome.stats = stats_;
    return outcome;
  }
  ExplorerStats& stats() { return stats_; }

 private:
  absl::Status Spawn(const ActorSpec& spec, const std::string& name);
  absl::Status AwaitStop(int a, int timeout_ms);
  absl::Status ReadStop(int a);
  absl::Status Reap(int a, int wait_status);
  absl::Status Checkpoint();
  absl::Status CheckRead(uint32_t q, const std::string& bytes, bool exact);
  absl::Status CheckOwnership(const char* when);
  // Bookkeeping after `a` wrote `p`: its publish, and recovery's decisions.
  absl::Status AfterWrite(int a, const Place& p);
  absl::Status CheckDecided(uint32_t slot, const std::string& who);
  std::string PendingName(const Actor& actor) const;
  const ActorLog& LogOf(const Actor& actor) const {
    return log_->actors[actor.log_index];
  }
  // The actor whose payloads carry `payload_actor`, or -1.
  int ActorOfPayload(int payload_actor) const {
    for (int a = 0; a < num_actors(); ++a) {
      if (actors_[a].spec.payload_actor == payload_actor) return a;
    }
    return -1;
  }
  void CloseFds(Actor& actor) {
    if (actor.report_fd >= 0) close(actor.report_fd);
    if (actor.command_fd >= 0) close(actor.command_fd);
    actor.report_fd = actor.command_fd = -1;
  }
  std::string Prefix() const { return absl::StrFormat("%4d  ", actions_); }
  QueueIndex Q(uint32_t raw) const { return queue_->MakeQueueIndex(raw); }

  const ExplorerScenario scenario_;
  const ExplorerLimits limits_;
  QueueConfig config_;
  std::optional<SteppedRegion> region_;
  RegionView view_;
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
  // For each sender slot whose owner was killed (until it is claimed
  // again): the message it owned at its death, known from the steps it made.
  std::map<uint32_t, uint32_t> dead_truth_;
  std::vector<std::string> trace_;
  std::string failure_;
  ExplorerStats stats_;
};

int Exploration::Find(ActorRef ref) const {
  int seen = 0;
  const bool recoverer = ref.role == ActorRef::Role::kRecoverer;
  for (int a = 0; a < num_actors(); ++a) {
    if (actors_[a].spec.recoverer != recoverer) continue;
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
  if (senders < 1 || senders + scenario_.max_recoverers > kMaxActors ||
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
    EXPLORER_RETURN_IF_ERROR(Spawn(spec, absl::StrCat("s", s)));
    if (actors_.back().state != ActorState::kParked) {
      return absl::InternalError(absl::StrCat(
          "explorer: s", s, " did not reach its first write"));
    }
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
  // ring CAS succeeded, the message it replaced.
  if (const int slot = LogOf(actor).slot; slot >= 0) {
    const auto* words = view_.sender(static_cast<uint32_t>(slot));
    // acquire, both: only the values matter; the actor is parked or about
    // to die, and only it writes its slot.
    const Index scratch = words->scratch_index.Load();
    const Index to_replace = words->to_replace.Load();
    const bool took_replaced = actor.published && to_replace.valid();
    dead_truth_[static_cast<uint32_t>(slot)] =
        took_replaced ? to_replace.message_index() : scratch.message_index();
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
  return Checkpoint();
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
  if (failed()) return CheckFailed();
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
    // Every index in the ring reads GOOD (checked by Checkpoint above), and
    // every payload ever read that no kOk Send accounts for was in flight
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
    return absl::OkStatus();
  }();
  senders.clear();
  if (!status.ok()) return status;
  return CheckOwnership("after releasing every slot");
}

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
      "kills: %d (%d senders during a recovery, %d recoverers); killed "
      "before: %s\n"
      "stops: %d (%d resumed at the end, %d killed at the end)\n"
      "recoverers: %d started, %d finished OK; %d faced dead senders, %d a "
      "stopped sender mid-send, %d a dead sender whose slot was lapped; %d "
      "ran accounting passes\n"
      "dead slots whose recovered owner was checked against the truth: %d\n"
      "actors that ran blocked (no stop within the bound): %d",
      schedules, wrapping_schedules, steps, pass_stops, kills,
      senders_killed_during_recovery, recoverers_killed,
      absl::StrJoin(kills_by_kind, ", "), stops, stops_resumed, stops_killed,
      recoverers_started, recoverers_finished, recoveries_facing_dead_senders,
      recoveries_facing_stopped_mid_send, recoveries_facing_lapped_dead,
      recoveries_with_accounting, decisions_checked, blocked_actors);
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
    kDuringRecovery,
    kAmbiguity,
    kLate
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
  const int kills = std::min(options.max_kills, Weighted({15, 40, 30, 15}));
  const int stops = std::min(options.max_stops, Weighted({50, 35, 15}));
  scenario_.setup_sends = Uniform(0, 2);
  scenario_.max_recoverers = std::max(recoverers, 1);
  scenario_.message_data_size_bytes = Uniform(0, 1) == 0 ? 16 : 40;
  // Roomy: more slots than messages ever published (setup, sends, one per
  // recoverer, the final check), so nothing is overwritten.
  const int published = scenario_.setup_sends + total_sends + recoverers + 1;
  scenario_.queue_size = static_cast<uint32_t>(
      wrapping_ ? 2 + Weighted({50, 30, 20}) : published + Uniform(0, 2));
  stickiness_ = std::vector<double>{0.0, 0.5, 0.85}[Uniform(0, 2)];

  // The events. With a lapping ring kills come early and mostly in the
  // window, so the ring often laps the victim's target slot before a
  // recoverer looks at it.
  const int expected_steps = total_sends * 14 + recoverers * 20 + 4;
  const int during = recoverers > 0 ? 1 : 0;
  for (int i = 0; i < kills; ++i) {
    const int moment = wrapping_ ? Weighted({1, 2, 1, during})
                                 : Weighted({2, 1, 1, 2 * during});
    events_.push_back(
        {Uniform(0, wrapping_ ? expected_steps / 2 : expected_steps),
         EventKind::kKill, static_cast<Moment>(moment)});
  }
  for (int i = 0; i < stops; ++i) {
    events_.push_back({Uniform(0, expected_steps), EventKind::kStop,
                       static_cast<Moment>(Weighted({1, 1, 1}))});
  }
  for (int i = 0; i < recoverers; ++i) {
    const Moment moment = std::vector<Moment>{
        Moment::kAt, Moment::kAmbiguity, Moment::kLate,
        Moment::kLate}[Uniform(0, 3)];
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
      "seed %u: %s ring, sends %s, %d setup sends, %s, %s, %s, "
      "stickiness %.2f",
      seed, wrapping_ ? "lapping" : "roomy",
      absl::StrJoin(scenario_.sends, "/"), scenario_.setup_sends,
      Plural(recoverers, "recoverer"), Plural(kills, "kill"),
      Plural(stops, "stop"), stickiness_);
}

int RandomSchedule::Choose(const std::vector<int>& runnable) {
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
  std::vector<int> anyone, in_window, stale;
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
  }
  std::vector<int>* victims = &anyone;
  switch (event.moment) {
    case Moment::kWindow:
      victims = &in_window;
      break;
    case Moment::kStaleWindow:
      victims = &stale;
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
