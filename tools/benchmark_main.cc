// tools/benchmark: what our queue costs, and how it compares with the IPC a
// robotics team would otherwise use - in one run, on this machine.
//
//   ./bazelw run -c opt //tools:benchmark -- [--sizes=8,64,1K,16K]
//       [--iterations=N] [--duration_ms=N] [--skip_micro] [--csv=path]
//       [--benchmark_filter=...]        (passed to Google Benchmark)
//
// Part 1 (micro, in-process): Google Benchmark means of Send (one sender,
// and N contending senders) and Read, plus per-call Send percentiles.
// Part 2 (cross-process, parent sends, forked child receives): one-way
// latency percentiles and throughput for our queue (polling and
// signal-woken receiver), for two rulers (a cache-line mailbox: the floor;
// a minimal SPSC ring) and for pipe, Unix datagram socket, POSIX message
// queue and Boost.Interprocess message_queue, measured by the same driver;
// ours is also given as a multiple of each ruler.
// The results go to stdout as one table and to a CSV file.
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "benchmark/benchmark.h"
#include "gflags/gflags.h"
#include "tools/benchmark_driver.h"
#include "tools/benchmark_instructions.h"
#include "tools/benchmark_lockless.h"
#include "tools/benchmark_micro.h"
#include "tools/benchmark_parts.h"
#include "tools/benchmark_peers.h"
#include "tools/benchmark_report.h"
#include "tools/benchmark_rulers.h"
#include "tools/benchmark_system.h"

DEFINE_string(sizes, "8,64,1K,16K",
              "Comma-separated message sizes in bytes (suffix K = KiB), "
              "each at least 8 (the timestamp).");
DEFINE_int32(iterations, 10000,
             "Latency samples per (transport, size), after --warmup (at "
             "most; see --latency_budget_ms).");
DEFINE_int32(latency_budget_ms, 1500,
             "Time limit per latency measurement; fewer than --iterations "
             "samples are taken if it runs out (reported below the table).");
DEFINE_int32(warmup, 500, "Latency messages sent before sampling starts.");
DEFINE_int32(latency_gap_us, 10,
             "Idle time before each latency message, so a blocking receiver "
             "is asleep again when it arrives.");
DEFINE_int32(duration_ms, 200, "Sending time per throughput measurement.");
DEFINE_bool(skip_micro, false, "Skip the in-process micro benchmarks.");
DEFINE_bool(skip_cross_process, false,
            "Skip the cross-process latency and throughput part.");
DEFINE_string(transports, "",
              "Comma-separated columns of the cross-process part (CSV names: "
              "ours_polling, ours_signal, floor_line, spsc_ring, pipe, "
              "unix_dgram, posix_mq, boost_mq); empty = all.");
DEFINE_int32(senders, 2, "Contending sender threads in the micro part.");
DEFINE_int32(percentile_sends, 200000,
             "Individually timed Send calls per size (and per thread).");
DEFINE_int32(queue_size, 1024,
             "Ring size of our queue and of the SPSC ring ruler, and depth in "
             "messages of the POSIX and Boost message queues.");
DEFINE_int32(pipe_bytes, 1 << 20, "Pipe buffer requested (F_SETPIPE_SZ).");
DEFINE_int32(socket_buffer_bytes, 4 << 20,
             "SO_SNDBUF/SO_RCVBUF requested for the datagram socketpair.");
DEFINE_bool(pin, true,
            "Pin the cross-process sender to CPU 0 and receiver to CPU 1.");
DEFINE_bool(count_instructions, true,
            "Count instructions per Send and per Read under callgrind, if "
            "valgrind is on PATH (a few seconds per size).");
DEFINE_int32(counted_calls, 20000,
             "Calls per callgrind count (--count_instructions).");
// Internal: set when the benchmark re-runs itself under callgrind.
DEFINE_string(counted_call, "",
              "Internal (the callgrind workload): send, send_zero_copy or "
              "read.");
DEFINE_int32(counted_bytes, 64, "Internal: message size of --counted_call.");
DEFINE_int32(counted_pinning, 0,
             "Internal: CountedPinning of a --counted_call=send workload.");
DEFINE_int32(counted_queue_size, 1024,
             "Internal: ring size of --counted_call.");
DEFINE_string(csv, "benchmark_results.csv",
              "CSV output; a relative path is relative to the directory "
              "`bazel run` was started from.");

namespace lockless {
namespace benchmark_tool {
namespace {

absl::StatusOr<std::vector<size_t>> ParseSizes(const std::string& text) {
  std::vector<size_t> sizes;
  for (absl::string_view part : absl::StrSplit(text, ',', absl::SkipEmpty())) {
    size_t multiplier = 1;
    if (absl::EndsWithIgnoreCase(part, "k")) {
      multiplier = 1024;
      part.remove_suffix(1);
    }
    uint64_t value = 0;
    if (!absl::SimpleAtoi(part, &value) || value * multiplier < 8) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "--sizes: '%s' is not a size of at least 8 bytes", part));
    }
    sizes.push_back(static_cast<size_t>(value * multiplier));
  }
  if (sizes.empty()) return absl::InvalidArgumentError("--sizes is empty");
  return sizes;
}

// `bazel run` starts the binary in its runfiles tree; write where the user
// ran the command instead.
std::string ResolveOutputPath(const std::string& path) {
  const char* cwd = std::getenv("BUILD_WORKING_DIRECTORY");
  if (path.empty() || path[0] == '/' || cwd == nullptr || *cwd == '\0') {
    return path;
  }
  return std::string(cwd) + "/" + path;
}

TransportFactory FactoryFor(Column column) {
  const uint32_t queue_size = static_cast<uint32_t>(FLAGS_queue_size);
  switch (column) {
    case kOursPolling:
      return [=] {
        return std::make_unique<LocklessTransport>(
            LocklessTransport::Wait::kPolling, queue_size);
      };
    case kOursSignal:
      return [=] {
        return std::make_unique<LocklessTransport>(
            LocklessTransport::Wait::kSignal, queue_size);
      };
    case kFloor:
      return [] { return std::make_unique<CacheLineFloorTransport>(); };
    case kSpscRing:
      return [=] { return std::make_unique<SpscRingTransport>(queue_size); };
    case kPipe:
      return [] { return std::make_unique<PipeTransport>(FLAGS_pipe_bytes); };
    case kUnixDgram:
      return [] {
        return std::make_unique<UnixDgramTransport>(FLAGS_socket_buffer_bytes);
      };
    case kPosixMq:
      return [=] { return std::make_unique<PosixMqTransport>(queue_size); };
    case kBoostMq:
      return [=] { return std::make_unique<BoostMqTransport>(queue_size); };
    case kNumColumns:
      break;
  }
  std::abort();
}

// Adds the rows "callgrind instructions per Send/Read" for every size, or a
// note saying why there are none.
void CountInstructions(const std::vector<size_t>& sizes, ResultTable* table,
                       std::vector<std::string>* notes) {
  const std::string valgrind = FindValgrind();
  if (valgrind.empty()) {
    notes->push_back(
        "no valgrind on PATH: no instruction counts (./bazelw installs it)");
    return;
  }
  const std::pair<CountedCall, const char*> kinds[] = {
      {CountedCall::kSend, "callgrind instructions per Send"},
      {CountedCall::kZeroCopySend,
       "callgrind instructions per zero-copy Send (incl. guard check)"},
      {CountedCall::kRateLimitedSend,
       "callgrind instructions per Send, rate limit on (1 ns, never hit)"},
      {CountedCall::kRead, "callgrind instructions per Read (GOOD)"}};
  // One row per message size: `call` counted under callgrind.
  auto add_rows = [&](CountedCall call, CountedPinning pinning,
                      const char* metric) {
    for (size_t size : sizes) {
      std::fprintf(stderr, "callgrind: %s, %zu B\n", metric, size);
      absl::StatusOr<double> per_call = CountInstructionsPerCall(
          valgrind, call, size, FLAGS_counted_calls,
          static_cast<uint32_t>(FLAGS_queue_size), pinning);
      Row row;
      row.metric = metric;
      row.size_bytes = size;
      row.precision = 1;
      if (per_call.ok()) {
        row.cells[kOursPolling].value = *per_call;
      } else {
        row.cells[kOursPolling].missing = "FAIL";
        notes->push_back(absl::StrFormat("%s %d B: %s", metric, size,
                                         per_call.status().message()));
      }
      table->Add(row);
    }
  };
  for (const auto& [call, metric] : kinds) {
    add_rows(call, CountedPinning::kUnconfigured, metric);
  }
  // Pinning's cost per Send: unused (the rows above: num_pinners 0) and
  // used (num_pinners 2), with nothing pinned, one pin held, and a pinned
  // scratch to park on every Send.
  const std::pair<CountedPinning, const char*> pinnings[] = {
      {CountedPinning::kNoPin,
       "callgrind instructions per Send, 2 pinner slots, no pin"},
      {CountedPinning::kHeldPin,
       "callgrind instructions per Send, 2 pinner slots, 1 pin held"},
      {CountedPinning::kSwapEverySend,
       "callgrind instructions per Send, 2 pinner slots, parks every Send"}};
  for (const auto& [pinning, metric] : pinnings) {
    add_rows(CountedCall::kSend, pinning, metric);
  }
  notes->push_back(
      "callgrind counts: vDSO clock reads become system calls under "
      "valgrind and are not counted (Send makes one)");
}

int Main() {
  if (!FLAGS_counted_call.empty()) {
    // We are the workload valgrind runs (CountInstructionsPerCall).
    CountedCall call = CountedCall::kRead;
    for (CountedCall c : {CountedCall::kSend, CountedCall::kZeroCopySend,
                          CountedCall::kRateLimitedSend}) {
      if (FLAGS_counted_call == CountedCallName(c)) call = c;
    }
    return RunCountedCalls(call, static_cast<size_t>(FLAGS_counted_bytes),
                           FLAGS_counted_calls,
                           static_cast<uint32_t>(FLAGS_counted_queue_size),
                           static_cast<CountedPinning>(FLAGS_counted_pinning)) ==
                   0
               ? 0
               : 1;
  }
  absl::StatusOr<std::vector<size_t>> sizes = ParseSizes(FLAGS_sizes);
  if (!sizes.ok()) {
    absl::FPrintF(stderr, "benchmark: %s\n", sizes.status().message());
    return 2;
  }
  // A reader that dies must surface as EPIPE in the sender, not kill us.
  signal(SIGPIPE, SIG_IGN);

  const int64_t timer_overhead_ns = MeasureTimerOverheadNs();
  const std::string pinning =
      FLAGS_pin ? "cross-process sender pinned to CPU 0, receiver to CPU 1 "
                  "(sched_setaffinity)"
                : "no pinning";
  absl::PrintF(
      "lockless queue benchmark\n"
      "machine: %s\n"
      "clock: CLOCK_MONOTONIC (clock_gettime, no rdtsc); one reading costs "
      "~%d ns; per-call Send percentiles have it subtracted\n"
      "pinning: %s; micro contended senders: thread i on CPU i\n"
      "latency: one-way, up to %d samples (+%d warm-up) or %d ms per cell, one "
      "message at a time, %d us idle before each\n"
      "throughput: %d ms of streaming per cell; ours never blocks the sender, "
      "so its reader may lose messages (overwritten, TOO_OLD): throughput "
      "counts only messages received GOOD, lost = sent - received\n"
      "(Debian's libbenchmark says it 'was built as DEBUG': that is the "
      "harness library; the code under test is built with -c opt)\n\n",
      MachineFacts(), timer_overhead_ns, pinning, FLAGS_iterations,
      FLAGS_warmup, FLAGS_latency_budget_ms, FLAGS_latency_gap_us,
      FLAGS_duration_ms);
  std::fflush(stdout);

  ResultTable table;
  if (!FLAGS_skip_micro) {
    MicroOptions micro;
    micro.sizes = *sizes;
    micro.contending_senders = FLAGS_senders;
    micro.queue_size = static_cast<uint32_t>(FLAGS_queue_size);
    RunMicroPart(micro, FLAGS_percentile_sends, timer_overhead_ns, &table);
  }
  CrossProcessOptions cross;
  cross.iterations = FLAGS_iterations;
  cross.latency_budget_ms = FLAGS_latency_budget_ms;
  cross.warmup = FLAGS_warmup;
  cross.gap_ns = int64_t{FLAGS_latency_gap_us} * 1000;
  cross.duration_ms = FLAGS_duration_ms;
  cross.pin = FLAGS_pin;
  std::array<TransportFactory, kNumColumns> factories;
  const std::vector<std::string> selected =
      absl::StrSplit(FLAGS_transports, ',', absl::SkipEmpty());
  for (int c = 0; c < kNumColumns; ++c) {
    const Column column = static_cast<Column>(c);
    if (selected.empty() ||
        std::find(selected.begin(), selected.end(), ColumnCsvName(column)) !=
            selected.end()) {
      factories[c] = FactoryFor(column);
    }
  }
  std::vector<std::string> notes;
  if (FLAGS_count_instructions) CountInstructions(*sizes, &table, &notes);
  if (!FLAGS_skip_cross_process) {
    RunCrossProcessPart(*sizes, factories, cross, &table, &notes);
  }

  std::printf(
      "\nResults (micro rows: in-process, ours only. 'vs X' = how many times "
      "better ours is, against ours poll / ours signal:\n"
      "latency = X / ours, throughput = ours / X)\n\n%s\n",
      table.ToText().c_str());
  for (const std::string& note : notes) std::printf("  %s\n", note.c_str());
  absl::PrintF("  load average at the end: %s\n", LoadAverage());

  const std::string csv_path = ResolveOutputPath(FLAGS_csv);
  std::ofstream csv(csv_path);
  csv << table.ToCsv();
  csv.close();
  if (!csv) {
    std::fprintf(stderr, "benchmark: could not write %s\n", csv_path.c_str());
    return 1;
  }
  std::printf("\nCSV written to %s\n", csv_path.c_str());
  return 0;
}

bool WantsHelp(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    if (absl::StartsWith(argv[i], "--help") ||
        absl::StartsWith(argv[i], "-help")) {
      return true;
    }
  }
  return false;
}

}  // namespace
}  // namespace benchmark_tool
}  // namespace lockless

int main(int argc, char** argv) {
  gflags::SetUsageMessage(
      "Benchmarks the lockless queue against pipe, Unix datagram socket, "
      "POSIX mq and Boost message_queue. --benchmark_* flags go to Google "
      "Benchmark (micro part).");
  // Google Benchmark goes first: it removes the --benchmark_* flags, which
  // gflags would reject as unknown. A shorter default min time keeps the
  // micro part to a few seconds; a user's own flag comes later and wins.
  std::vector<char*> args(argv, argv + argc);
  static char kDefaultMinTime[] = "--benchmark_min_time=0.2";
  args.insert(args.begin() + 1, kDefaultMinTime);
  int args_count = static_cast<int>(args.size());
  char** args_data = args.data();
  // Its --help would hide ours; let gflags answer that.
  if (!lockless::benchmark_tool::WantsHelp(argc, argv)) {
    benchmark::Initialize(&args_count, args_data);
  }
  gflags::ParseCommandLineFlags(&args_count, &args_data, true);
  return lockless::benchmark_tool::Main();
}
