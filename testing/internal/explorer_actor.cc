#include "testing/internal/explorer_actor.h"

#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <optional>
#include <string>
#include <utility>

#include "absl/status/statusor.h"
#include "index/index.h"
#include "ipc/internal/queue_layout.h"
#include "ipc/internal/sender_recovery.h"
#include "ipc/lockless_queue.h"
#include "testing/internal/explorer_payload.h"

// Weak: the recovery-pass hook is a test hook of the recovery under test. A
// library without it (an older recovery) still links; recoverers then stop
// only at their writes, and a recovery spinning without writing runs blocked.
namespace lockless::internal {
void SetRecoveryPassObserver(RecoveryPassObserver observer)
    __attribute__((weak));
}  // namespace lockless::internal

namespace lockless::testing::internal {
namespace {

struct ChildState {
  int report_fd = -1;
  int command_fd = -1;
  bool skip_passes = false;
  ActorLog* log = nullptr;
};

ChildState g_child;

// Async-signal-safe: runs in the stepper's SIGSEGV handler.
void ReportAndWait(const StopReport& report) {
  const char* bytes = reinterpret_cast<const char*>(&report);
  size_t left = sizeof(report);
  while (left > 0) {
    const ssize_t n = write(g_child.report_fd, bytes, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) _exit(kExitParentGone);
    bytes += n;
    left -= static_cast<size_t>(n);
  }
  char command = 0;
  while (true) {
    const ssize_t n = read(g_child.command_fd, &command, 1);
    if (n == 1) break;
    if (n < 0 && errno == EINTR) continue;
    _exit(kExitParentGone);
  }
  g_child.skip_passes = command == kCommandPastPasses;
}

void StopBeforeWrite(uint64_t offset, WriteKind kind) {
  ReportAndWait(StopReport{
      kind == WriteKind::kStore ? kStopStore : kStopFutex, 0, offset});
}

void StopAtPass(int pass) {
  g_child.log->max_pass =
      std::max(g_child.log->max_pass, static_cast<int32_t>(pass));
  if (g_child.skip_passes) return;
  ReportAndWait(StopReport{kStopPass, pass, 0});
}

[[noreturn]] void PinFailed(ActorLog* log, const char* why) {
  std::snprintf(log->pin_failure, sizeof(log->pin_failure), "%s", why);
  _exit(kExitPinFailed);
}

// The pinner actor (ActorSpec::pinner).
[[noreturn]] void PinnerMain(const ActorSpec& spec,
                             const SteppedRegion& region,
                             const QueueConfig& config,
                             const LocklessQueue& queue,
                             const WriteStepHooks& hooks, ActorLog* log) {
  absl::StatusOr<Pinner> pinner = queue.MakePinner();  // Untraced setup.
  if (!pinner.ok()) {
    WriteStderr("explorer actor: setup MakePinner failed\n");
    _exit(kExitSetupFailed);
  }
  const ::lockless::internal::RegionView view(
      region.primary(), *::lockless::internal::ComputeLayout(config));
  StartWriteStepping(region, hooks);
  for (int round = 0; round < spec.pins; ++round) {
    const QueueIndex target = round % 2 == 0 ? queue.LatestQueueIndex()
                                             : queue.OldestQueueIndex();
    PinnedMessage pinned;
    const PinResult result = pinner->Pin(target, &pinned);
    if (result == PinResult::kNothingNew || result == PinResult::kTooOld ||
        result == PinResult::kOverwrote) {
      continue;  // Refused cleanly; nothing pinned.
    }
    if (result != PinResult::kGood) PinFailed(log, PinResultName(result));
    if (pinned.info.length > sizeof(log->pinned_bytes) ||
        pinned.info.queue_index != target) {
      PinFailed(log, "Pin returned a view of another index or length");
    }
    // relaxed: our own word; only the value matters.
    log->pinned_message = view.pinner(pinner->slot())
                              ->pinned.RelaxedLoad()
                              .message_index();
    log->pinned_length = static_cast<uint32_t>(pinned.info.length);
    std::memcpy(log->pinned_bytes, pinned.data, pinned.info.length);
    log->pin_active = 1;
    ++log->pins_ok;
    // Our next write is the unpin: the scheduler runs others before it.
    pinner->Unpin();
    // Nobody ran between the unpin's store and here (one actor at a time):
    // these are the bytes as they were when the pin ended.
    if (std::memcmp(log->pinned_bytes, pinned.data, pinned.info.length) !=
        0) {
      PinFailed(log, "the pinned bytes changed while pinned");
    }
    log->pin_active = 0;
  }
  {
    // Releases the slot (a traced futex write).
    Pinner done = *std::move(pinner);
  }
  _exit(kExitDone);
}

}  // namespace

void ActorMain(const ActorSpec& spec, const SteppedRegion& region,
               const QueueConfig& config, ActorLog* log, pid_t parent,
               int report_fd, int command_fd,
               const std::vector<int>& parent_fds) {
  // Dies with the test instead of lingering, stopped, if the parent dies.
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != parent) _exit(kExitParentGone);
  for (int fd : parent_fds) close(fd);
  g_child = ChildState{report_fd, command_fd, false, log};

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

  if (spec.pinner) PinnerMain(spec, region, config, *queue, hooks, log);
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
    if (spec.overrun_guards) {
      // One byte past max_size(), certainly unlike the guard byte there.
      const ::lockless::internal::RegionView view(
          region.primary(), *::lockless::internal::ComputeLayout(config));
      const uint64_t scratch =
          view.sender(sender->slot())->scratch_index.Load().message_index();
      unsigned char* const past =
          static_cast<unsigned char*>(sender->data()) + sender->max_size();
      *past = static_cast<unsigned char>(
          ~::lockless::internal::GuardByte(scratch, 0));
      const SendResult refused = sender->Send(payload, length);
      if (refused != SendResult::kGuardOverwritten) {
        log->failed_send_result = static_cast<int32_t>(refused);
        log->failed_send_seq = seq;
        _exit(kExitSendFailed);
      }
    }
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
      // Scribble on the message just published (a traced write).
      const ::lockless::internal::RegionView view(
          region.primary(), *::lockless::internal::ComputeLayout(config));
      const Index entry = view.ring(info.queue_index.Wrapped())->Load();
      view.message(entry.message_index())->data()[4] ^= 0x5a;
    }
  }
  sender.reset();  // Releases the slot (a traced futex write).
  _exit(kExitDone);
}

}  // namespace lockless::testing::internal
