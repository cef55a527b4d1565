#include "testing/death_test_harness.h"

#include <linux/futex.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <ucontext.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <exception>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "sync/test_hooks.h"

namespace lockless::testing {
namespace {

// Capacity of the write log shared with the children. A run with more writes
// is a harness error (quadratic cost makes such runs impractical anyway).
constexpr size_t kMaxRecordedWrites = size_t{1} << 20;

// x86 EFLAGS.TF: the CPU raises a debug trap (SIGTRAP) after the next
// instruction.
constexpr greg_t kTrapFlag = 0x100;

// How a child leaves. Never 0, so that a `run` calling exit(0) itself is told
// apart from a clean finish.
enum ChildExitCode : int {
  kExitCompleted = 70,      // run returned.
  kExitDied = 71,           // Died on purpose right after write die_at.
  kExitWriteMismatch = 72,  // Replay wrote a different offset than recorded.
  kExitTooManyWrites = 73,  // More writes than recorded / than the log holds.
  kExitException = 74,      // run threw.
  kExitSetupFailed = 75,    // sigaction/mprotect failed in the child.
  kExitStrayTrap = 76,      // SIGTRAP while not single-stepping.
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
// signal handlers use only write(2), mprotect(2), sigaction(2), _exit(2) and
// plain memory accesses.

struct ChildState {
  char* primary;
  size_t size_bytes;
  SharedLog* log;
  bool recording;
  // 0: never die on purpose; n: _exit right after the n-th write.
  uint64_t die_at;
  // Number of recorded writes (replay only).
  uint64_t recorded_count;
  // True between the SIGSEGV that made the region writable and the SIGTRAP
  // after the faulting instruction completed.
  volatile bool stepping;
};

ChildState g_child;

void WriteStderr(const char* message) {
  size_t length = strlen(message);
  while (length > 0) {
    ssize_t written = write(STDERR_FILENO, message, length);
    if (written <= 0) {
      if (written < 0 && errno == EINTR) continue;
      return;
    }
    message += written;
    length -= static_cast<size_t>(written);
  }
}

void WriteStderrHex(uint64_t value) {
  char buffer[19];
  buffer[18] = '\0';
  int i = 18;
  do {
    buffer[--i] = "0123456789abcdef"[value & 0xf];
    value >>= 4;
  } while (value != 0);
  buffer[--i] = 'x';
  buffer[--i] = '0';
  WriteStderr(buffer + i);
}

[[noreturn]] void ChildFail(ChildExitCode code, const char* message) {
  WriteStderr("death test harness child: ");
  WriteStderr(message);
  WriteStderr("\n");
  _exit(code);
}

bool InPrimary(const void* address) {
  const char* p = static_cast<const char*>(address);
  return p >= g_child.primary && p < g_child.primary + g_child.size_bytes;
}

void ProtectRegion(int protection) {
  if (mprotect(g_child.primary, g_child.size_bytes, protection) != 0) {
    ChildFail(kExitSetupFailed, "mprotect of the region failed");
  }
}

// Accounts one write at `offset`: appends it to the log (record) or checks it
// against the log (replay).
void NoteWrite(uint64_t offset) {
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

void MaybeDie() {
  if (g_child.die_at != 0 && g_child.log->writes_seen == g_child.die_at) {
    _exit(kExitDied);
  }
}

void RestoreDefault(int signal_number) {
  struct sigaction action;
  memset(&action, 0, sizeof(action));
  action.sa_handler = SIG_DFL;
  sigemptyset(&action.sa_mask);
  sigaction(signal_number, &action, nullptr);
}

#if defined(__x86_64__)

// A store hit the read-only region: note it, let the instruction through once
// and single-step it.
void OnSegv(int signal_number, siginfo_t* info, void* context) {
  if (info->si_code != SEGV_ACCERR || !InPrimary(info->si_addr) ||
      g_child.stepping) {
    // Not ours: a real crash. Returning re-executes the instruction, which
    // faults again under the default action and kills the child with SIGSEGV.
    WriteStderr("death test harness child: SIGSEGV at ");
    WriteStderrHex(reinterpret_cast<uintptr_t>(info->si_addr));
    WriteStderr(" outside the traced region (or while stepping)\n");
    RestoreDefault(SIGSEGV);
    return;
  }
  NoteWrite(static_cast<uint64_t>(static_cast<char*>(info->si_addr) -
                                  g_child.primary));
  ProtectRegion(PROT_READ | PROT_WRITE);
  g_child.stepping = true;
  static_cast<ucontext_t*>(context)->uc_mcontext.gregs[REG_EFL] |= kTrapFlag;
}

// The faulting instruction has completed: close the region again and, if this
// was the chosen write, die now.
void OnTrap(int signal_number, siginfo_t* info, void* context) {
  if (!g_child.stepping) {
    ChildFail(kExitStrayTrap, "SIGTRAP while not single-stepping");
  }
  g_child.stepping = false;
  static_cast<ucontext_t*>(context)->uc_mcontext.gregs[REG_EFL] &= ~kTrapFlag;
  ProtectRegion(PROT_READ);
  MaybeDie();
}

#endif  // defined(__x86_64__)

// Futex words are written by the library (and by the kernel on its behalf)
// between these two calls; the region must be writable meanwhile.
void BeforeFutexWrite(void* futex_word) {
  if (!InPrimary(futex_word)) return;
  ProtectRegion(PROT_READ | PROT_WRITE);
}

void AfterFutexWrite(void* futex_word) {
  if (!InPrimary(futex_word)) return;
  NoteWrite(
      static_cast<uint64_t>(static_cast<char*>(futex_word) - g_child.primary));
  ProtectRegion(PROT_READ);
  MaybeDie();
}

void InstallHandler(int signal_number,
                    void (*handler)(int, siginfo_t*, void*)) {
  struct sigaction action;
  memset(&action, 0, sizeof(action));
  action.sa_sigaction = handler;
  action.sa_flags = SA_SIGINFO;
  sigemptyset(&action.sa_mask);
  if (sigaction(signal_number, &action, nullptr) != 0) {
    ChildFail(kExitSetupFailed, "sigaction failed");
  }
}

enum class ChildMode { kPlain, kRecord, kReplay };

// Body of every child; never returns.
[[noreturn]] void ChildMain(const DeathTestOptions& options, ChildMode mode,
                            char* primary, char* twin, size_t size_bytes,
                            SharedLog* log, uint64_t die_at,
                            uint64_t recorded_count) {
  // A hung child is killed by SIGALRM (default action) and reported.
  RestoreDefault(SIGALRM);
  sigset_t unblock;
  sigemptyset(&unblock);
  sigaddset(&unblock, SIGALRM);
  sigaddset(&unblock, SIGSEGV);
  sigaddset(&unblock, SIGTRAP);
  sigprocmask(SIG_UNBLOCK, &unblock, nullptr);
  alarm(options.child_timeout_seconds);

  g_child.primary = primary;
  g_child.size_bytes = size_bytes;
  g_child.log = log;
  g_child.recording = mode == ChildMode::kRecord;
  g_child.die_at = die_at;
  g_child.recorded_count = recorded_count;
  g_child.stepping = false;
  log->writes_seen = 0;
  log->mismatch_offset = 0;

#if defined(__x86_64__)
  if (mode != ChildMode::kPlain) {
    InstallHandler(SIGSEGV, OnSegv);
    InstallHandler(SIGTRAP, OnTrap);
    // The kernel's robust-list walk and the library's list bookkeeping go
    // through the writable twin; futex words are opened around each write.
    lockless::internal::SetRobustListOffset(twin - primary);
    lockless::internal::SetFutexWriteObservers(BeforeFutexWrite,
                                               AfterFutexWrite);
    ProtectRegion(PROT_READ);
  }
#endif

  try {
    options.run(primary);
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

size_t PageSize() { return static_cast<size_t>(sysconf(_SC_PAGESIZE)); }

std::string ErrnoMessage(const char* what) {
  return absl::StrCat(what, ": ", strerror(errno));
}

// Address space for one primary mapping, a PROT_NONE guard page, and the twin
// mapping. Fresh() maps a new zero-filled memfd over both, at the same
// addresses every time.
class Regions {
 public:
  static absl::StatusOr<Regions> Create(size_t size_bytes) {
    const size_t page = PageSize();
    Regions regions;
    regions.size_bytes_ = (size_bytes + page - 1) / page * page;
    regions.reserved_bytes_ = 2 * regions.size_bytes_ + page;
    void* base = mmap(nullptr, regions.reserved_bytes_, PROT_NONE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (base == MAP_FAILED) {
      return absl::ResourceExhaustedError(ErrnoMessage("reserving the region"));
    }
    regions.primary_ = static_cast<char*>(base);
    regions.twin_ = regions.primary_ + regions.size_bytes_ + page;
    return regions;
  }

  Regions(Regions&& other) noexcept { *this = std::move(other); }
  Regions& operator=(Regions&& other) noexcept {
    std::swap(primary_, other.primary_);
    std::swap(twin_, other.twin_);
    std::swap(size_bytes_, other.size_bytes_);
    std::swap(reserved_bytes_, other.reserved_bytes_);
    return *this;
  }
  ~Regions() {
    if (primary_ != nullptr) munmap(primary_, reserved_bytes_);
  }

  // Replaces both mappings with a new zero-filled memfd.
  absl::Status Fresh() {
    int fd = memfd_create("lockless_death_test", MFD_CLOEXEC);
    if (fd < 0) return absl::InternalError(ErrnoMessage("memfd_create"));
    absl::Status status;
    if (ftruncate(fd, static_cast<off_t>(size_bytes_)) != 0) {
      status = absl::InternalError(ErrnoMessage("ftruncate"));
    }
    for (char* address : {primary_, twin_}) {
      if (!status.ok()) break;
      if (mmap(address, size_bytes_, PROT_READ | PROT_WRITE,
               MAP_SHARED | MAP_FIXED, fd, 0) == MAP_FAILED) {
        status = absl::InternalError(ErrnoMessage("mapping the region"));
      }
    }
    close(fd);
    return status;
  }

  char* primary() const { return primary_; }
  char* twin() const { return twin_; }
  size_t size_bytes() const { return size_bytes_; }

 private:
  Regions() = default;

  char* primary_ = nullptr;
  char* twin_ = nullptr;
  size_t size_bytes_ = 0;
  size_t reserved_bytes_ = 0;
};

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
                                       ChildMode mode, const Regions& regions,
                                       SharedLog* log, uint64_t die_at,
                                       uint64_t recorded_count) {
  fflush(nullptr);  // Nothing buffered may be written twice.
  const pid_t pid = fork();
  if (pid < 0) return absl::ResourceExhaustedError(ErrnoMessage("fork"));
  if (pid == 0) {
    ChildMain(options, mode, regions.primary(), regions.twin(),
              regions.size_bytes(), log, die_at, recorded_count);
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
    case kExitSetupFailed:
      return absl::InternalError(absl::StrCat(
          stage, ": child setup (sigaction/mprotect) failed; see its stderr"));
    case kExitStrayTrap:
      return absl::InternalError(absl::StrCat(
          stage, ": child got a SIGTRAP it did not ask for (breakpoint?)"));
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
                                        const Regions& regions, pid_t pid) {
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

absl::Status RunCheck(const DeathTestOptions& options, const Regions& regions,
                      const std::string& stage) {
  if (!options.check) return absl::OkStatus();
  absl::Status status = options.check(regions.primary());
  if (status.ok()) return status;
  return absl::Status(status.code(),
                      absl::StrCat(stage, ": ", status.message()));
}

absl::Status PrepareFresh(const DeathTestOptions& options, Regions& regions) {
  if (absl::Status status = regions.Fresh(); !status.ok()) return status;
  if (options.prepare) options.prepare(regions.primary());
  return absl::OkStatus();
}

// Calls options.cleanup on the current region when a prepared run's scope
// ends, however it ends (see DeathTestOptions::cleanup).
class CleanupAtScopeEnd {
 public:
  CleanupAtScopeEnd(const DeathTestOptions& options, const Regions& regions)
      : options_(options), regions_(regions) {}
  CleanupAtScopeEnd(const CleanupAtScopeEnd&) = delete;
  CleanupAtScopeEnd& operator=(const CleanupAtScopeEnd&) = delete;
  ~CleanupAtScopeEnd() {
    if (options_.cleanup) options_.cleanup(regions_.primary());
  }

 private:
  const DeathTestOptions& options_;
  const Regions& regions_;
};

}  // namespace

bool DeathTestSupported() {
#if defined(__x86_64__)
  return true;
#else
  return false;
#endif
}

absl::StatusOr<DeathTestReport> RunDeathTest(const DeathTestOptions& options) {
  if (options.region_size_bytes == 0) {
    return absl::InvalidArgumentError("region_size_bytes must be positive");
  }
  if (!options.run) return absl::InvalidArgumentError("run is required");

  absl::StatusOr<Regions> regions_or =
      Regions::Create(options.region_size_bytes);
  if (!regions_or.ok()) return regions_or.status();
  Regions& regions = *regions_or;
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
