// Test-only, and dangerous: installs SIGSEGV/SIGTRAP handlers and changes page
// protections in the calling process. Use only in forked, single-threaded
// children of a test; never link it into production code.
//
// The mechanism shared by the death-test harness (testing/death_test_harness)
// and the interleaving explorer (testing/interleaving_explorer): stop a child
// process right before, and right after, every single write it makes to a
// shared region (DESIGN.md section 8).
//
//   - The region lives in a SteppedRegion: a primary mapping, a PROT_NONE
//     guard page, and a twin mapping of the same memfd pages, at addresses
//     that stay the same when the region is replaced by a fresh one.
//   - In the child, RouteRobustListThroughTwin() makes the library hand the
//     kernel twin addresses for its robust list (sync/test_hooks.h), so the
//     kernel's death-time walk marks a dead owner's futex words
//     FUTEX_OWNER_DIED through the writable twin: a real death, with nothing
//     emulated.
//   - StartWriteStepping() maps the primary read-only. Every store faults;
//     the SIGSEGV handler calls before_write(offset), makes the region
//     writable and sets the x86 trap flag; the faulting instruction then
//     re-executes, and the SIGTRAP after it makes the region read-only again
//     and calls after_write(offset). Futex words are reported through the
//     sync/ futex-write observers instead (the kernel must never fault on a
//     read-only futex word): before_write, region writable, the library's
//     compare-exchange or PI syscall, region read-only, after_write.
//
// Costs: one SIGSEGV, one SIGTRAP and two mprotects per store (~80 us on the
// 2-core CI VM in fastbuild, most of it the two signals).
//
// x86-64 only (the trap flag). Elsewhere WriteSteppingSupported() is false
// and StartWriteStepping() must not be called.
//
// Thread-safety: none. Everything on the child side runs in one forked,
// single-threaded child; the hooks run inside signal handlers (for stores) or
// on the locking path (for futex words), so they must be async-signal-safe:
// write/read/_exit and plain memory accesses only.
#ifndef LOCKLESS_TESTING_INTERNAL_WRITE_STEPPER_H_
#define LOCKLESS_TESTING_INTERNAL_WRITE_STEPPER_H_

#include <cstddef>
#include <cstdint>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace lockless::testing::internal {

// True on x86-64, where trap-flag single-stepping is implemented.
bool WriteSteppingSupported();

// How a traced write reaches the region.
enum class WriteKind {
  kStore,  // A CPU store (found by its SIGSEGV): plain, atomic or RMW.
  kFutex,  // A robust mutex's futex word (userspace CAS or a PI syscall).
};

// Address space for one primary mapping, a PROT_NONE guard page and the twin
// mapping. Parent side: create once, Fresh() before every child (or every
// group of children sharing one region). Children inherit it by fork.
class SteppedRegion {
 public:
  // Reserves the address space; `size_bytes` is rounded up to whole pages.
  static absl::StatusOr<SteppedRegion> Create(size_t size_bytes);

  SteppedRegion(SteppedRegion&& other) noexcept;
  SteppedRegion& operator=(SteppedRegion&& other) noexcept;
  ~SteppedRegion();

  // Replaces both mappings with a new zero-filled memfd, at the same
  // addresses as before.
  absl::Status Fresh();

  char* primary() const { return primary_; }
  char* twin() const { return twin_; }
  size_t size_bytes() const { return size_bytes_; }
  bool Contains(const void* address) const {
    const char* p = static_cast<const char*>(address);
    return p >= primary_ && p < primary_ + size_bytes_;
  }

 private:
  SteppedRegion() = default;

  char* primary_ = nullptr;
  char* twin_ = nullptr;
  size_t size_bytes_ = 0;
  size_t reserved_bytes_ = 0;
};

// Child-side callbacks. Both run in signal-handler context for stores (see
// the top of the file). `offset` is from the start of the primary mapping.
struct WriteStepHooks {
  // Right before the write executes. May block (the explorer waits here for
  // its scheduler) or _exit (the process then dies before this write).
  void (*before_write)(uint64_t offset, WriteKind kind) = nullptr;
  // Right after it completed. May _exit (dies right after this write).
  void (*after_write)(uint64_t offset, WriteKind kind) = nullptr;
  // The child _exits with this code (after a line on stderr) if stepping
  // itself breaks: sigaction or mprotect fails, or a SIGTRAP arrives that
  // stepping did not ask for.
  int failure_exit_code = 1;
};

// Child: makes the library put twin addresses on this thread's robust list.
// Call before the child locks any RobustMutex in the region (contract of
// sync/test_hooks.h); untraced writes (setup) may follow.
void RouteRobustListThroughTwin(const SteppedRegion& region);

// Child: from now on every write to the primary mapping is stepped through
// `hooks` (copied). Call after RouteRobustListThroughTwin, at most once.
// A SIGSEGV that is not a write to the region (a real crash) still kills the
// child with SIGSEGV, after a line on stderr.
void StartWriteStepping(const SteppedRegion& region,
                        const WriteStepHooks& hooks);

// Async-signal-safe stderr output, for children and handlers.
void WriteStderr(const char* message);
void WriteStderrHex(uint64_t value);
void WriteStderrDecimal(uint64_t value);

}  // namespace lockless::testing::internal

#endif  // LOCKLESS_TESTING_INTERNAL_WRITE_STEPPER_H_
