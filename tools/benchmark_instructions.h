// Instructions per Send and per Read, counted by callgrind: deterministic,
// so it decides hot-path changes on a machine too busy for wall-clock
// figures.
//
// tools/benchmark re-runs itself under `valgrind --tool=callgrind
// --toggle-collect=<function>` with --counted_call (RunCountedCalls in
// benchmark_micro.h), so only instructions executed inside Sender::Send or
// LocklessQueue::Read (and what they call) are counted, and divides the total
// by the number of calls.
//
// Caveat: under valgrind the vDSO is not used, so clock_gettime becomes a
// system call whose kernel side callgrind does not see: the count excludes
// the clock read(s) of each Send (one per Send; natively ~27 ns each on a
// KVM guest).
//
// Thread-safety: forks and waits; call from a single-threaded phase.
#ifndef LOCKLESS_TOOLS_BENCHMARK_INSTRUCTIONS_H_
#define LOCKLESS_TOOLS_BENCHMARK_INSTRUCTIONS_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "tools/benchmark_micro.h"

namespace lockless {
namespace benchmark_tool {

// --counted_call's value for `call`: send, send_zero_copy or read.
const char* CountedCallName(CountedCall call);

// The valgrind binary found on PATH, or "" if there is none.
std::string FindValgrind();

// Runs `valgrind_path` on this very executable with
//   --counted_call=send|send_zero_copy|read --counted_bytes=N --counted_calls=N
//   --counted_queue_size=N
// and returns instructions per call. Errors if valgrind fails or the
// workload reports failed calls.
// (--counted_pinning=N passes `pinning` along for sends.)
absl::StatusOr<double> CountInstructionsPerCall(
    const std::string& valgrind_path, CountedCall call, size_t message_bytes,
    int calls, uint32_t queue_size,
    CountedPinning pinning = CountedPinning::kUnconfigured);

}  // namespace benchmark_tool
}  // namespace lockless

#endif  // LOCKLESS_TOOLS_BENCHMARK_INSTRUCTIONS_H_
