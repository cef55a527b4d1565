// Test-only. Forks, single-steps and kills child processes; never link it into
// production code, never call it from a multi-threaded test body.
//
// The death-test harness (DESIGN.md section 8): proves that a function working
// on a shared-memory region leaves the region recoverable whichever write it
// dies after.
//
//   1. Record. A fresh region is prepared in the parent, then `run` executes in
//      a forked child with the region mapped read-only. Every store faults; the
//      SIGSEGV handler records the offset, makes the region writable and sets
//      the x86 trap flag, so the faulting instruction re-executes and the
//      following SIGTRAP makes the region read-only again. Futex words are
//      reported through the sync/ futex-write observers instead (the kernel
//      must never fault on a read-only futex word), and the robust-list offset
//      points the kernel's death-time writes at a writable twin mapping of the
//      same pages. Result: the ordered list of N write offsets. (The stepping
//      itself is testing/internal/write_stepper, shared with the
//      interleaving explorer.)
//   2. For n = 1..N: fresh region, prepare, fork, replay `run`, verify each
//      write hits the recorded offset, and _exit right after the n-th write.
//      The parent then marks every robust futex still owned by the dead child
//      FUTEX_OWNER_DIED (as the kernel would; usually the kernel already did it
//      through the twin) and calls `check`.
//   3. One final run that completes, then `check` again.
//
// Costs: N + 2 forks and N * (N + 3) / 2 traced writes (one SIGSEGV, one
// SIGTRAP, two mprotects each): quadratic in N. Measured on the 2-core CI VM:
// about 4 ms per fork and 80 us per traced write, so N = 500 takes ~12 s.
// Keep `run` small (a few hundred writes) and put the rest in `prepare`.
//
// Contract for the callbacks:
//   - `prepare` and `check` run in the calling (parent) process; `run` runs
//     only in forked children, which always leave through _exit (never return
//     into the test framework, never run atexit handlers or flush stdio).
//   - `run` must be deterministic: the same writes in the same order each time
//     (reads may vary only if they do not change the writes). It must not use
//     gtest assertions (they would fail in a child nobody reads); put every
//     check in `check`. It must not start threads.
//   - `check` may lock robust mutexes in the region but must unlock them before
//     returning: the region is unmapped and replaced after every die point.
//     What `prepare` keeps locked across the child is released in `cleanup`.
//   - Addresses inside the region are stable: every run maps its fresh region
//     at the same address.
//
// Thread-safety: RunDeathTest is not reentrant and must be called from a
// single-threaded process (it forks). Real-time safety: none; test only.
#ifndef LOCKLESS_TESTING_DEATH_TEST_HARNESS_H_
#define LOCKLESS_TESTING_DEATH_TEST_HARNESS_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace lockless::testing {

struct DeathTestOptions {
  // Size of the shared region; rounded up to whole pages internally.
  size_t region_size_bytes = 0;

  // Parent: runs on a fresh zero-filled region before each child, e.g. to
  // initialise the queue and send some messages. Its writes are not traced.
  std::function<void(void* region)> prepare;

  // The function under test. Runs only in forked children; its writes to the
  // region are traced (see the contract above).
  std::function<void(void* region)> run;

  // Parent, after the child died (or completed): OK, or an error describing
  // what is wrong with the region.
  std::function<absl::Status(void* region)> check;

  // Parent, optional: runs once after every `prepare`, when that region's
  // child (and check, if any) are done and before the region is replaced or
  // RunDeathTest returns, error paths included. Releases whatever `prepare`
  // still holds in the region, e.g. a robust mutex it locked: a mutex left
  // locked in an unmapped region stays on the thread's robust list, and the
  // next unlock would rewrite its stale links inside the next region.
  std::function<void(void* region)> cleanup;

  // Parent, after a child died: the futex words (inside `region`) of every
  // robust mutex the region contains, to emulate the kernel's owner-died
  // marking. May be empty for plain-memory protocols.
  std::function<std::vector<std::atomic<uint32_t>*>(void* region)>
      robust_futex_words;

  // Safety bound: RunDeathTest fails if `run` makes more writes than this.
  size_t max_die_points = 100000;

  // Each child is killed by SIGALRM after this long; a hung child becomes an
  // error instead of a hung test.
  unsigned child_timeout_seconds = 60;
};

struct DeathTestReport {
  // Writes `run` made to the region (plain stores + futex word writes).
  size_t writes_recorded = 0;
  // Die points tested; equals writes_recorded on success.
  size_t die_points_tested = 0;
  // Futex words the parent marked FUTEX_OWNER_DIED itself, summed over all
  // die points (0 when the kernel's robust-list walk through the twin mapping
  // already marked every one).
  size_t owner_died_emulated = 0;
  // Offset (from the region start) of each recorded write, in order. A store
  // is reported at its lowest faulting address; `rep movs` (memcpy) reports
  // one write per element it copies.
  std::vector<uint64_t> write_offsets;
};

// Runs the protocol described at the top of this file. Returns the report, or
//   - "dying at n/N: <check message>" when `check` failed after a death at the
//     n-th of N writes ("after completing (no death): ..." for the final run),
//   - a harness error: write order differs between runs, child crashed or
//     timed out, too many writes, missing callbacks, mapping failures.
// On architectures without trap-flag single-stepping (DeathTestSupported() ==
// false) it runs prepare, run (in a child) and check once, says so on stderr,
// and returns an all-zero report.
absl::StatusOr<DeathTestReport> RunDeathTest(const DeathTestOptions& options);

// True on x86-64, where the single-stepping harness is implemented.
bool DeathTestSupported();

}  // namespace lockless::testing

#endif  // LOCKLESS_TESTING_DEATH_TEST_HARNESS_H_
