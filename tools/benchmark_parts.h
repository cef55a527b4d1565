// The two parts of a tools/benchmark run, each adding its rows to the
// result table (benchmark_report.h).
//
// Thread-safety: call from the main thread, one part at a time. The micro
// part starts threads; the cross-process part forks (see benchmark_driver.h),
// so nothing else may run concurrently.
#ifndef LOCKLESS_TOOLS_BENCHMARK_PARTS_H_
#define LOCKLESS_TOOLS_BENCHMARK_PARTS_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "tools/benchmark_driver.h"
#include "tools/benchmark_micro.h"
#include "tools/benchmark_report.h"
#include "tools/benchmark_transport.h"

namespace lockless {
namespace benchmark_tool {

// Runs the Google Benchmark cases (printing Google Benchmark's own table;
// --benchmark_* flags must already have been given to benchmark::Initialize)
// and `percentile_sends` individually timed Sends per size, with one sender
// and with options.contending_senders. Adds the "micro ..." rows (ours only).
void RunMicroPart(const MicroOptions& options, int percentile_sends,
                  int64_t timer_overhead_ns, ResultTable* table);

// Measures latency and throughput of every column's transport (an empty
// factory leaves the column out) for every size, adds the rows, and appends
// footnotes to `notes`: what each transport was granted, why a cell is n/a
// or failed, losses, and any torn or reordered message (which a correct
// transport never shows).
void RunCrossProcessPart(
    const std::vector<size_t>& sizes,
    const std::array<TransportFactory, kNumColumns>& factories,
    const CrossProcessOptions& options, ResultTable* table,
    std::vector<std::string>* notes);

}  // namespace benchmark_tool
}  // namespace lockless

#endif  // LOCKLESS_TOOLS_BENCHMARK_PARTS_H_
