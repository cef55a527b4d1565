#include "testing/death_test_harness.h"

#include <linux/futex.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <exception>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "testing/internal/write_stepper.h"

namespace lockless::testing {
namespace {

using internal::RouteRobustListThroughTwin;
using internal::StartWriteStepping;
using internal::SteppedRegion;
using internal::WriteKind;
using internal::WriteStderr;
using internal::WriteStepHooks;
using internal::WriteSteppingSupported;

// Capacity of the write log shared with the children. A run with more writes
// is a harness error (quadratic cost makes such runs impractical anyway).
constexpr size_t kMaxRecordedWrites = size_t{1} << 20;

// How a child leaves. Never 0, so that a `run` calling exit(0) itself is told
// apart from a clean finish.
enum ChildExitCode : int {
  kExitCompleted = 70,       // run returned.
  kExitDied = 71,            // Died on purpose right after write die_at.
  kExitWriteMismatch = 72,   // Replay wrote a different offset than recorded.
  kExitTooManyWrites = 73,   // More writes than recorded / than the log holds.
  kExitException = 74,       // run threw.
  kExitSteppingFailed = 75,  // sigaction/mprotect failed, or a stray SIGTRAP.
};

// Shared (MAP_SHARED | MAP_ANONYMOUS) between the parent and its children;
// allocated before any fork. Written by one child at a time; read by the
// parent only after waitpid, which orders it after the child's writes.
struct SharedLog {
  // Writes the current child has made so far.
  uint64_t writes_seen;
  // Set by a replaying child on kExitWriteMismatch / kExitTooManyWrites.
  uint64_t mismatch_offset;
  // Offsets (from the primary mapping) of the recorded writes, in order.
  // Written by the recording child, read by replaying children.
  uint64_t offsets[kMaxRecordedWrites];
};

// ---------------------------------------------------------------------------
// Child side. Everything here runs in a forked, single-threaded child; the
// write hooks run inside the stepper's signal handlers and use only write(2),
// _exit(2) and plain memory accesses.

struct ChildState {
  SharedLog* log;
  bool recording;
  // 0: never die on purpose; n: _exit right after the n-th write.
  uint64_t die_at;
  // Number of recorded writes (replay only).
  uint64_t recorded_count;
};

ChildState g_child;

[[noreturn]] void ChildFail(ChildExitCode code, const char* message) {
  WriteStderr("death test harness child: ");
  WriteStderr(message);
  WriteStderr("\n");
  _exit(code);
}

// Accounts one write at `offset`, before it executes: appends it to the log
// (record) or checks it against the log (replay).
void NoteWrite(uint64_t offset, WriteKind) {
  SharedLog* log = g_child.log;
  const uint64_t k = log->writes_seen;
  if (g_child.recording) {
    if (k >= kMaxRecordedWrites) {
      ChildFail(kExitTooManyWrites, "write log full");
    }
    log->offsets[k] = offset;
  } else if (k >= g_child.recorded_count) {
    log->mismatch_offset = offset;
    _exit(kExitTooManyWrites);
  } else if (log->offsets[k] != offset) {
    log->mismatch_offset = offset;
    _exit(kExitWriteMismatch);
  }
  log->writes_seen = k + 1;
}

// After a write completed: if it was the chosen one, die now.
void MaybeDie(uint64_t, WriteKind) {
  if (g_child.die_at != 0 && g_child.log->writes_seen == g_child.die_at) {
    _exit(kExitDied);
  }
}

enum class ChildMode { kPlain, kRecord, kReplay };

// Body of every child; never returns.
[[noreturn]] void ChildMain(const DeathTestOptions& options, ChildMode mode,
                            const SteppedRegion& region, SharedLog* log,
                            uint64_t die_at, uint64_t recorded_count) {
  // A hung child is killed by SIGALRM (default action) and reported.
  struct sigaction alarm_action;
  memset(&alarm_action, 0, sizeof(alarm_action));
  alarm_action.sa_handler = SIG_DFL;
  sigemptyset(&alarm_action.sa_mask);
  sigaction(SIGALRM, &alarm_action, nullptr);
  sigset_t unblock;
  sigemptyset(&unblock);
  sigaddset(&unblock, SIGALRM);
  sigprocmask(SIG_UNBLOCK, &unblock, nullptr);
  alarm(options.child_timeout_seconds);

  g_child.log = log;
  g_child.recording = mode == ChildMode::kRecord;
  g_child.die_at = die_at;
  g_child.recorded_count = recorded_count;
  log->writes_seen = 0;
  log->mismatch_offset = 0;

  if (mode != ChildMode::kPlain) {
    // The kernel's robust-list walk and the library's list bookkeeping go
    // through the writable twin; every write to the primary is stepped.
    RouteRobustListThroughTwin(region);
    WriteStepHooks hooks;
    hooks.before_write = NoteWrite;
    hooks.after_write = MaybeDie;
    hooks.failure_exit_code = kExitSteppingFailed;
    StartWriteStepping(region, hooks);
  }

  try {
    options.run(region.primary());
  } catch (const std::exception& e) {
    WriteStderr("death test harness child: run threw: ");
    WriteStderr(e.what());
    WriteStderr("\n");
    _exit(kExitException);
  } catch (...) {
    ChildFail(kExitException, "run threw an exception");
  }
  _exit(kExitCompleted);
}

// ---------------------------------------------------------------------------
// Parent side.

std::string ErrnoMessage(const char* what) {
  return absl::StrCat(what, ": ", strerror(errno));
}

// The shared write log; unmapped on destruction.
class SharedLogMapping {
 public:
  static absl::StatusOr<SharedLogMapping> Create() {
    void* memory = mmap(nullptr, sizeof(SharedLog), PROT_READ | PROT_WRITE,
                        MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (memory == MAP_FAILED) {
      return absl::ResourceExhaustedError(
          ErrnoMessage("mapping the write log"));
    }
    return SharedLogMapping(static_cast<SharedLog*>(memory));
  }
  SharedLogMapping(SharedLogMapping&& other) noexcept
      : log_(std::exchange(other.log_, nullptr)) {}
  SharedLogMapping& operator=(SharedLogMapping&&) = delete;
  ~SharedLogMapping() {
    if (log_ != nullptr) munmap(log_, sizeof(SharedLog));
  }
  SharedLog* get() const { return log_; }

 private:
  explicit SharedLogMapping(SharedLog* log) : log_(log) {}
  SharedLog* log_;
};

// How one child ended, as seen by waitpid.
struct ChildOutcome {
  pid_t pid = 0;
  int wait_status = 0;
};

absl::StatusOr<ChildOutcome> ForkChild(const DeathTestOptions& options,
                                       ChildMode mode, const SteppedRegion& regions,
                                       SharedLog* log, uint64_t die_at,
                                       uint64_t recorded_count) {
  fflush(nullptr);  // Nothing buffered may be written twice.
  const pid_t pid = fork();
  if (pid < 0) return absl::ResourceExhaustedError(ErrnoMessage("fork"));
  if (pid == 0) {
    ChildMain(options, mode, regions, log, die_at, recorded_count);
  }
  ChildOutcome outcome;
  outcome.pid = pid;
  while (waitpid(pid, &outcome.wait_status, 0) < 0) {
    if (errno != EINTR) return absl::InternalError(ErrnoMessage("waitpid"));
  }
  return outcome;
}

// Turns the child's end into OK (it ended as `expected_code` with
// `expected_writes` writes) or a harness error. `stage` names the run.
absl::Status InterpretOutcome(const ChildOutcome& outcome, const SharedLog& log,
                              const DeathTestOptions& options,
                              const std::string& stage, int expected_code,
                              uint64_t expected_writes,
                              uint64_t recorded_count) {
  const int status = outcome.wait_status;
  const uint64_t writes = log.writes_seen;
  if (WIFSIGNALED(status)) {
    const int signal_number = WTERMSIG(status);
    if (signal_number == SIGALRM) {
      return absl::DeadlineExceededError(absl::StrFormat(
          "%s: child timed out after %u s (after %d writes); does run block?",
          stage, options.child_timeout_seconds, writes));
    }
    return absl::InternalError(absl::StrFormat(
        "%s: child crashed with signal %d (%s) after %d writes; see its "
        "stderr above",
        stage, signal_number, strsignal(signal_number), writes));
  }
  if (!WIFEXITED(status)) {
    return absl::InternalError(
        absl::StrFormat("%s: child ended with wait status %#x", stage, status));
  }
  const int code = WEXITSTATUS(status);
  switch (code) {
    case kExitWriteMismatch:
      return absl::InternalError(absl::StrFormat(
          "%s: write order differs between runs at write %d: expected offset "
          "%d got %d; run must be deterministic",
          stage, writes + 1, log.offsets[writes], log.mismatch_offset));
    case kExitTooManyWrites:
      if (recorded_count == 0 && writes >= kMaxRecordedWrites) {
        return absl::ResourceExhaustedError(absl::StrFormat(
            "%s: run makes more than %d writes", stage, kMaxRecordedWrites));
      }
      return absl::InternalError(absl::StrFormat(
          "%s: write order differs between runs at write %d: the recording "
          "has only %d writes, got one more at offset %d",
          stage, writes + 1, recorded_count, log.mismatch_offset));
    case kExitException:
      return absl::InternalError(
          absl::StrCat(stage, ": run threw an exception"));
    case kExitSteppingFailed:
      return absl::InternalError(absl::StrCat(
          stage,
          ": write stepping failed in the child (sigaction/mprotect, or a "
          "SIGTRAP it did not ask for, e.g. a breakpoint); see its stderr"));
    case kExitCompleted:
    case kExitDied:
      break;
    default:
      return absl::InternalError(absl::StrFormat(
          "%s: child exited with unexpected code %d after %d writes; run must "
          "not call exit()",
          stage, code, writes));
  }
  if (code != expected_code || writes != expected_writes) {
    return absl::InternalError(absl::StrFormat(
        "%s: write order differs between runs: child %s after %d writes, "
        "expected it to %s after %d",
        stage, code == kExitDied ? "died" : "completed", writes,
        expected_code == kExitDied ? "die" : "complete", expected_writes));
  }
  return absl::OkStatus();
}

// Pretends to be the kernel's robust-list walk for the dead child `pid`:
// every robust futex it still owns gets FUTEX_OWNER_DIED (keeping
// FUTEX_WAITERS). Returns how many words it changed.
absl::StatusOr<size_t> EmulateOwnerDied(const DeathTestOptions& options,
                                        const SteppedRegion& regions, pid_t pid) {
  if (!options.robust_futex_words) return 0;
  size_t marked = 0;
  for (std::atomic<uint32_t>* word :
       options.robust_futex_words(regions.primary())) {
    const char* address = reinterpret_cast<const char*>(word);
    if (address < regions.primary() ||
        address + sizeof(*word) > regions.primary() + regions.size_bytes()) {
      return absl::InvalidArgumentError(
          "robust_futex_words returned a word outside the region");
    }
    // Relaxed: the child is dead and reaped (waitpid ordered its writes
    // before this); no other process touches the region now.
    const uint32_t value = word->load(std::memory_order_relaxed);
    if ((value & FUTEX_TID_MASK) == static_cast<uint32_t>(pid) &&
        (value & FUTEX_OWNER_DIED) == 0) {
      word->store((value & FUTEX_WAITERS) | FUTEX_OWNER_DIED,
                  std::memory_order_relaxed);
      ++marked;
    }
  }
  return marked;
}

absl::Status RunCheck(const DeathTestOptions& options, const SteppedRegion& regions,
                      const std::string& stage) {
  if (!options.check) return absl::OkStatus();
  absl::Status status = options.check(regions.primary());
  if (status.ok()) return status;
  return absl::Status(status.code(),
                      absl::StrCat(stage, ": ", status.message()));
}

absl::Status PrepareFresh(const DeathTestOptions& options, SteppedRegion& regions) {
  if (absl::Status status = regions.Fresh(); !status.ok()) return status;
  if (options.prepare) options.prepare(regions.primary());
  return absl::OkStatus();
}

// Calls options.cleanup on the current region when a prepared run's scope
// ends, however it ends (see DeathTestOptions::cleanup).
class CleanupAtScopeEnd {
 public:
  CleanupAtScopeEnd(const DeathTestOptions& options, const SteppedRegion& regions)
      : options_(options), regions_(regions) {}
  CleanupAtScopeEnd(const CleanupAtScopeEnd&) = delete;
  CleanupAtScopeEnd& operator=(const CleanupAtScopeEnd&) = delete;
  ~CleanupAtScopeEnd() {
    if (options_.cleanup) options_.cleanup(regions_.primary());
  }

 private:
  const DeathTestOptions& options_;
  const SteppedRegion& regions_;
};

}  // namespace

bool DeathTestSupported() { return WriteSteppingSupported(); }

absl::StatusOr<DeathTestReport> RunDeathTest(const DeathTestOptions& options) {
  if (options.region_size_bytes == 0) {
    return absl::InvalidArgumentError("region_size_bytes must be positive");
  }
  if (!options.run) return absl::InvalidArgumentError("run is required");

  absl::StatusOr<SteppedRegion> regions_or =
      SteppedRegion::Create(options.region_size_bytes);
  if (!regions_or.ok()) return regions_or.status();
  SteppedRegion& regions = *regions_or;
  absl::StatusOr<SharedLogMapping> log_mapping = SharedLogMapping::Create();
  if (!log_mapping.ok()) return log_mapping.status();
  SharedLog* log = log_mapping->get();
  DeathTestReport report;

  if (!DeathTestSupported()) {
    WriteStderr(
        "death test harness: no trap-flag single-stepping on this "
        "architecture; running prepare/run/check once without the robustness "
        "part\n");
    if (absl::Status s = PrepareFresh(options, regions); !s.ok()) return s;
    const CleanupAtScopeEnd cleanup(options, regions);
    absl::StatusOr<ChildOutcome> outcome =
        ForkChild(options, ChildMode::kPlain, regions, log, 0, 0);
    if (!outcome.ok()) return outcome.status();
    const uint64_t writes = log->writes_seen;  // 0: nothing is traced.
    if (absl::Status s = InterpretOutcome(*outcome, *log, options, "plain run",
                                          kExitCompleted, writes, 0);
        !s.ok()) {
      return s;
    }
    if (absl::Status s = RunCheck(options, regions, "plain run"); !s.ok()) {
      return s;
    }
    return report;
  }

  // 1. Record.
  if (absl::Status s = PrepareFresh(options, regions); !s.ok()) return s;
  {
    const CleanupAtScopeEnd cleanup(options, regions);
    absl::StatusOr<ChildOutcome> recorded =
        ForkChild(options, ChildMode::kRecord, regions, log, 0, 0);
    if (!recorded.ok()) return recorded.status();
    if (absl::Status s =
            InterpretOutcome(*recorded, *log, options, "recording run",
                             kExitCompleted, log->writes_seen, 0);
        !s.ok()) {
      return s;
    }
  }
  const uint64_t total = log->writes_seen;
  report.writes_recorded = total;
  report.write_offsets.assign(log->offsets, log->offsets + total);
  if (total > options.max_die_points) {
    return absl::ResourceExhaustedError(
        absl::StrFormat("run makes %d writes, more than max_die_points = %d",
                        total, options.max_die_points));
  }

  // 2. Die after write n, for every n; 3. finally complete (n = total + 1).
  for (uint64_t n = 1; n <= total + 1; ++n) {
    const bool dies = n <= total;
    const std::string stage =
        dies ? absl::StrFormat("dying at %d/%d", n, total)
             : absl::StrFormat("after completing all %d writes (no death)",
                               total);
    if (absl::Status s = PrepareFresh(options, regions); !s.ok()) {
      return absl::Status(s.code(), absl::StrCat(stage, ": ", s.message()));
    }
    const CleanupAtScopeEnd cleanup(options, regions);
    absl::StatusOr<ChildOutcome> outcome = ForkChild(
        options, ChildMode::kReplay, regions, log, dies ? n : 0, total);
    if (!outcome.ok()) return outcome.status();
    if (absl::Status s = InterpretOutcome(*outcome, *log, options, stage,
                                          dies ? kExitDied : kExitCompleted,
                                          dies ? n : total, total);
        !s.ok()) {
      return s;
    }
    absl::StatusOr<size_t> marked =
        EmulateOwnerDied(options, regions, outcome->pid);
    if (!marked.ok()) return marked.status();
    report.owner_died_emulated += *marked;
    if (absl::Status s = RunCheck(options, regions, stage); !s.ok()) return s;
    if (dies) ++report.die_points_tested;
  }
  return report;
}

}  // namespace lockless::testing
