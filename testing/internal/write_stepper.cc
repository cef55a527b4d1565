#include "testing/internal/write_stepper.h"

#include <signal.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "sync/test_hooks.h"

namespace lockless::testing::internal {
namespace {

// x86 EFLAGS.TF: the CPU raises a debug trap (SIGTRAP) after the next
// instruction.
[[maybe_unused]] constexpr greg_t kTrapFlag = 0x100;

// The child's stepping state. Written once before stepping starts, then only
// by the handlers (one thread, handlers never nest: each blocks its own
// signal and SIGSEGV/SIGTRAP alternate).
struct StepperState {
  char* primary = nullptr;
  size_t size_bytes = 0;
  WriteStepHooks hooks;
  // True between the SIGSEGV that opened the region and the SIGTRAP after
  // the faulting instruction completed.
  volatile bool stepping = false;
  // Offset of the store being stepped, for after_write.
  uint64_t stepping_offset = 0;
};

StepperState g_stepper;

[[noreturn]] void StepperFail(const char* message) {
  WriteStderr("write stepper: ");
  WriteStderr(message);
  WriteStderr("\n");
  _exit(g_stepper.hooks.failure_exit_code);
}

bool InPrimary(const void* address) {
  const char* p = static_cast<const char*>(address);
  return p >= g_stepper.primary && p < g_stepper.primary + g_stepper.size_bytes;
}

uint64_t OffsetOf(const void* address) {
  return static_cast<uint64_t>(static_cast<const char*>(address) -
                               g_stepper.primary);
}

void ProtectRegion(int protection) {
  if (mprotect(g_stepper.primary, g_stepper.size_bytes, protection) != 0) {
    StepperFail("mprotect of the region failed");
  }
}

void RestoreDefault(int signal_number) {
  struct sigaction action;
  memset(&action, 0, sizeof(action));
  action.sa_handler = SIG_DFL;
  sigemptyset(&action.sa_mask);
  sigaction(signal_number, &action, nullptr);
}

void InstallHandler(int signal_number,
                    void (*handler)(int, siginfo_t*, void*)) {
  struct sigaction action;
  memset(&action, 0, sizeof(action));
  action.sa_sigaction = handler;
  action.sa_flags = SA_SIGINFO;
  sigemptyset(&action.sa_mask);
  if (sigaction(signal_number, &action, nullptr) != 0) {
    StepperFail("sigaction failed");
  }
}

#if defined(__x86_64__)

// A store hit the read-only region: report it, let the instruction through
// once and single-step it.
void OnSegv(int signal_number, siginfo_t* info, void* context) {
  if (info->si_code != SEGV_ACCERR || !InPrimary(info->si_addr) ||
      g_stepper.stepping) {
    // Not ours: a real crash. Returning re-executes the instruction, which
    // faults again under the default action and kills the child with SIGSEGV.
    WriteStderr("write stepper: SIGSEGV at ");
    WriteStderrHex(reinterpret_cast<uintptr_t>(info->si_addr));
    WriteStderr(" outside the traced region (or while stepping)\n");
    RestoreDefault(SIGSEGV);
    return;
  }
  const int saved_errno = errno;  // The interrupted code may be using it.
  const uint64_t offset = OffsetOf(info->si_addr);
  if (g_stepper.hooks.before_write != nullptr) {
    g_stepper.hooks.before_write(offset, WriteKind::kStore);
  }
  ProtectRegion(PROT_READ | PROT_WRITE);
  g_stepper.stepping_offset = offset;
  g_stepper.stepping = true;
  static_cast<ucontext_t*>(context)->uc_mcontext.gregs[REG_EFL] |= kTrapFlag;
  errno = saved_errno;
}

// The faulting instruction has completed: close the region again.
void OnTrap(int signal_number, siginfo_t* info, void* context) {
  if (!g_stepper.stepping) StepperFail("SIGTRAP while not single-stepping");
  const int saved_errno = errno;
  g_stepper.stepping = false;
  static_cast<ucontext_t*>(context)->uc_mcontext.gregs[REG_EFL] &= ~kTrapFlag;
  ProtectRegion(PROT_READ);
  if (g_stepper.hooks.after_write != nullptr) {
    g_stepper.hooks.after_write(g_stepper.stepping_offset, WriteKind::kStore);
  }
  errno = saved_errno;
}

#endif  // defined(__x86_64__)

// Futex words are written by the library (and by the kernel on its behalf)
// between these two calls; the region must be writable meanwhile.
void BeforeFutexWrite(void* futex_word) {
  if (!InPrimary(futex_word)) return;
  if (g_stepper.hooks.before_write != nullptr) {
    g_stepper.hooks.before_write(OffsetOf(futex_word), WriteKind::kFutex);
  }
  ProtectRegion(PROT_READ | PROT_WRITE);
}

void AfterFutexWrite(void* futex_word) {
  if (!InPrimary(futex_word)) return;
  ProtectRegion(PROT_READ);
  if (g_stepper.hooks.after_write != nullptr) {
    g_stepper.hooks.after_write(OffsetOf(futex_word), WriteKind::kFutex);
  }
}

size_t PageSize() { return static_cast<size_t>(sysconf(_SC_PAGESIZE)); }

std::string ErrnoMessage(const char* what) {
  return absl::StrCat(what, ": ", strerror(errno));
}

}  // namespace

bool WriteSteppingSupported() {
#if defined(__x86_64__)
  return true;
#else
  return false;
#endif
}

// ---------------------------------------------------------------- Parent side

absl::StatusOr<SteppedRegion> SteppedRegion::Create(size_t size_bytes) {
  const size_t page = PageSize();
  SteppedRegion region;
  region.size_bytes_ = (size_bytes + page - 1) / page * page;
  region.reserved_bytes_ = 2 * region.size_bytes_ + page;
  void* base = mmap(nullptr, region.reserved_bytes_, PROT_NONE,
                    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (base == MAP_FAILED) {
    return absl::ResourceExhaustedError(ErrnoMessage("reserving the region"));
  }
  region.primary_ = static_cast<char*>(base);
  region.twin_ = region.primary_ + region.size_bytes_ + page;
  return region;
}

SteppedRegion::SteppedRegion(SteppedRegion&& other) noexcept {
  *this = std::move(other);
}

SteppedRegion& SteppedRegion::operator=(SteppedRegion&& other) noexcept {
  std::swap(primary_, other.primary_);
  std::swap(twin_, other.twin_);
  std::swap(size_bytes_, other.size_bytes_);
  std::swap(reserved_bytes_, other.reserved_bytes_);
  return *this;
}

SteppedRegion::~SteppedRegion() {
  if (primary_ != nullptr) munmap(primary_, reserved_bytes_);
}

absl::Status SteppedRegion::Fresh() {
  const int fd = memfd_create("lockless_stepped_region", MFD_CLOEXEC);
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

// ---------------------------------------------------------------- Child side

void RouteRobustListThroughTwin(const SteppedRegion& region) {
  lockless::internal::SetRobustListOffset(region.twin() - region.primary());
}

void StartWriteStepping(const SteppedRegion& region,
                        const WriteStepHooks& hooks) {
  g_stepper.primary = region.primary();
  g_stepper.size_bytes = region.size_bytes();
  g_stepper.hooks = hooks;
  g_stepper.stepping = false;
#if defined(__x86_64__)
  sigset_t unblock;
  sigemptyset(&unblock);
  sigaddset(&unblock, SIGSEGV);
  sigaddset(&unblock, SIGTRAP);
  sigprocmask(SIG_UNBLOCK, &unblock, nullptr);
  InstallHandler(SIGSEGV, OnSegv);
  InstallHandler(SIGTRAP, OnTrap);
  lockless::internal::SetFutexWriteObservers(BeforeFutexWrite,
                                             AfterFutexWrite);
  ProtectRegion(PROT_READ);
#else
  StepperFail("write stepping needs the x86-64 trap flag");
#endif
}

void WriteStderr(const char* message) {
  size_t length = strlen(message);
  while (length > 0) {
    const ssize_t written = write(STDERR_FILENO, message, length);
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

void WriteStderrDecimal(uint64_t value) {
  char buffer[21];
  buffer[20] = '\0';
  int i = 20;
  do {
    buffer[--i] = static_cast<char>('0' + value % 10);
    value /= 10;
  } while (value != 0);
  WriteStderr(buffer + i);
}

}  // namespace lockless::testing::internal
