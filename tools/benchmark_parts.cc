#include "tools/benchmark_parts.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "benchmark/benchmark.h"
#include "tools/benchmark_system.h"

namespace lockless {
namespace benchmark_tool {
namespace {

// Keeps Google Benchmark's console output and remembers each mean, in ns.
class CapturingReporter : public benchmark::ConsoleReporter {
 public:
  // Colour only on a terminal: escape codes would litter a saved log.
  CapturingReporter()
      : ConsoleReporter(isatty(STDOUT_FILENO) ? OO_Defaults : OO_Tabular) {}

  void ReportRuns(const std::vector<Run>& runs) override {
    ConsoleReporter::ReportRuns(runs);
    for (const Run& run : runs) {
      if (run.error_occurred || run.run_type != Run::RT_Iteration) continue;
      // For a threaded case Google Benchmark divides wall time by the
      // iterations of all threads together; times threads is what one call
      // cost the thread that made it.
      mean_ns_[run.benchmark_name()] =
          run.GetAdjustedRealTime() * static_cast<double>(run.threads);
    }
  }

  // The mean of the case whose name starts with `prefix`, if it ran.
  std::optional<double> MeanNs(const std::string& prefix) const {
    for (const auto& [name, mean_ns] : mean_ns_) {
      if (name == prefix || absl::StartsWith(name, prefix + "/")) {
        return mean_ns;
      }
    }
    return std::nullopt;
  }

 private:
  std::map<std::string, double> mean_ns_;
};

Row OursOnlyRow(const std::string& metric, size_t size_bytes, int precision,
                std::optional<double> value) {
  Row row;
  row.metric = metric;
  row.size_bytes = size_bytes;
  row.precision = precision;
  row.cells[kOursPolling].value = value;
  return row;
}

// Results of one (column, size) pair of cross-process measurements.
struct CrossResult {
  absl::StatusOr<LatencyResult> latency = absl::UnknownError("not run");
  absl::StatusOr<ThroughputResult> throughput = absl::UnknownError("not run");
};

Cell MakeCell(const absl::Status& status, double value) {
  Cell cell;
  if (status.ok()) {
    cell.value = value;
  } else if (absl::IsNotFound(status)) {
    cell.missing = "-";  // not selected
  } else {
    cell.missing = absl::IsUnavailable(status) ? "n/a" : "FAIL";
  }
  return cell;
}

}  // namespace

void RunMicroPart(const MicroOptions& options, int percentile_sends,
                  int64_t timer_overhead_ns, ResultTable* table) {
  const std::vector<size_t>& sizes = options.sizes;
  const int contenders = options.contending_senders;
  // With --senders=1 the contended case is the uncontended one: list it once.
  std::vector<int> sender_counts = {1};
  if (contenders > 1) sender_counts.push_back(contenders);
  RegisterMicroBenchmarks(options);
  CapturingReporter reporter;
  const int64_t start_ns = MonotonicNowNs();
  benchmark::RunSpecifiedBenchmarks(&reporter);
  absl::FPrintF(stderr, "Google Benchmark part took %.1f s\n",
                static_cast<double>(MonotonicNowNs() - start_ns) / 1e9);

  std::map<std::pair<int, size_t>, LatencySummary> calls;
  for (size_t size : sizes) {
    for (int senders : sender_counts) {
      std::fprintf(stderr, "timing single Send calls: %zu B, %d sender(s)\n",
                   size, senders);
      calls[{senders, size}] =
          MeasureSendCalls(size, senders, percentile_sends, options.queue_size,
                           timer_overhead_ns);
    }
  }

  const std::string contended = absl::StrFormat("%d senders", contenders);
  for (size_t size : sizes) {
    table->Add(OursOnlyRow("micro Send mean (ns)", size, 1,
                           reporter.MeanNs(absl::StrFormat("Send/%d", size))));
  }
  for (size_t size : sizes) {
    table->Add(OursOnlyRow(
        absl::StrFormat("micro Send mean, %s (ns/call)", contended), size, 1,
        reporter.MeanNs(absl::StrFormat("SendContended/%d", size))));
  }
  for (size_t size : sizes) {
    table->Add(OursOnlyRow("micro Read mean (ns)", size, 1,
                           reporter.MeanNs(absl::StrFormat("Read/%d", size))));
  }
  for (size_t size : sizes) {
    table->Add(
        OursOnlyRow("micro Send+Wakeup mean, 1 watcher (ns)", size, 1,
                    reporter.MeanNs(absl::StrFormat("SendWakeup/%d", size))));
  }
  struct Percentile {
    const char* name;
    double LatencySummary::*field;
  };
  const Percentile percentiles[] = {{"p50", &LatencySummary::p50_ns},
                                    {"p99", &LatencySummary::p99_ns},
                                    {"p99.9", &LatencySummary::p999_ns},
                                    {"max", &LatencySummary::max_ns},
                                    {"mean", &LatencySummary::mean_ns}};
  for (int senders : sender_counts) {
    const std::string who = senders == 1 ? std::string("1 sender") : contended;
    for (const Percentile& p : percentiles) {
      for (size_t size : sizes) {
        table->Add(OursOnlyRow(
            absl::StrFormat("micro Send call %s, %s (ns)", p.name, who), size,
            0, calls[{senders, size}].*p.field));
      }
    }
  }
}

void RunCrossProcessPart(
    const std::vector<size_t>& sizes,
    const std::array<TransportFactory, kNumColumns>& factories,
    const CrossProcessOptions& options, ResultTable* table,
    std::vector<std::string>* notes) {
  std::map<std::pair<int, size_t>, CrossResult> results;
  for (size_t size : sizes) {
    for (int c = 0; c < kNumColumns; ++c) {
      const Column column = static_cast<Column>(c);
      CrossResult& result = results[{c, size}];
      if (!factories[c]) {
        // Left out (--transports): an empty cell, not a failure.
        result.latency = absl::NotFoundError("not selected");
        result.throughput = absl::NotFoundError("not selected");
        continue;
      }
      const int64_t start_ns = MonotonicNowNs();
      result.latency = MeasureLatency(factories[c], size, options);
      result.throughput = MeasureThroughput(factories[c], size, options);
      absl::FPrintF(stderr, "cross-process: %-11s %6d B done in %.1f s\n",
                    ColumnName(column), size,
                    static_cast<double>(MonotonicNowNs() - start_ns) / 1e9);
    }
  }

  struct LatencyMetric {
    const char* name;
    double LatencySummary::*field;
  };
  const LatencyMetric latency_metrics[] = {
      {"latency p50 (us)", &LatencySummary::p50_ns},
      {"latency p99 (us)", &LatencySummary::p99_ns},
      {"latency p99.9 (us)", &LatencySummary::p999_ns}};
  for (const LatencyMetric& metric : latency_metrics) {
    for (size_t size : sizes) {
      Row row;
      row.metric = metric.name;
      row.size_bytes = size;
      row.better = Better::kLower;
      for (int c = 0; c < kNumColumns; ++c) {
        const auto& latency = results[{c, size}].latency;
        row.cells[c] =
            MakeCell(latency.status(),
                     latency.ok() ? latency->summary.*metric.field / 1e3 : 0);
      }
      table->Add(row);
    }
  }
  enum class Quantity { kMessages, kMegabytes, kLost };
  const std::pair<const char*, Quantity> throughput_metrics[] = {
      {"throughput (M msg/s)", Quantity::kMessages},
      {"throughput (MB/s)", Quantity::kMegabytes},
      {"lost as TOO_OLD (% of sent)", Quantity::kLost}};
  for (const auto& [name, quantity] : throughput_metrics) {
    for (size_t size : sizes) {
      Row row;
      row.metric = name;
      row.size_bytes = size;
      row.better =
          quantity == Quantity::kLost ? Better::kNone : Better::kHigher;
      row.precision = quantity == Quantity::kMegabytes ? 0 : 3;
      for (int c = 0; c < kNumColumns; ++c) {
        const auto& throughput = results[{c, size}].throughput;
        double value = 0;
        if (throughput.ok()) {
          const double per_second = throughput->messages_per_second();
          switch (quantity) {
            case Quantity::kMessages:
              value = per_second / 1e6;
              break;
            case Quantity::kMegabytes:
              value = per_second * size / 1e6;
              break;
            case Quantity::kLost:
              value = throughput->sent == 0
                          ? 0
                          : 100.0 * throughput->lost / throughput->sent;
              break;
          }
        }
        row.cells[c] = MakeCell(throughput.status(), value);
      }
      table->Add(row);
    }
  }

  // Footnotes: what each transport was granted, then why a cell is missing
  // and anything a correct transport should never show.
  std::vector<std::string> problems;
  std::vector<std::string> short_of_samples;
  for (int c = 0; c < kNumColumns; ++c) {
    std::string settings;
    for (size_t size : sizes) {
      const CrossResult& result = results[{c, size}];
      const char* name = ColumnName(static_cast<Column>(c));
      for (const absl::Status& status :
           {result.latency.status(), result.throughput.status()}) {
        if (!status.ok() && !absl::IsNotFound(status)) {
          problems.push_back(
              absl::StrFormat("%s %d B: %s: %s", name, size,
                              absl::IsUnavailable(status) ? "n/a" : "FAILED",
                              status.message()));
        }
      }
      if (result.latency.ok()) {
        if (settings.empty()) settings = result.latency->settings;
        if (result.latency->summary.count <
            static_cast<size_t>(options.iterations)) {
          short_of_samples.push_back(absl::StrFormat(
              "%s %d B: %d", name, size, result.latency->summary.count));
        }
        if (result.latency->torn != 0) {
          problems.push_back(
              absl::StrFormat("%s %d B: %d TORN latency messages!", name, size,
                              result.latency->torn));
        }
      }
      if (result.throughput.ok()) {
        const ThroughputResult& t = *result.throughput;
        if (t.torn != 0 || t.reordered != 0) {
          problems.push_back(
              absl::StrFormat("%s %d B: %d torn, %d out-of-order messages!",
                              name, size, t.torn, t.reordered));
        }
        if (t.too_old_events != 0 || t.lost != 0) {
          problems.push_back(absl::StrFormat(
              "%s %d B throughput: sent %d, received %d GOOD, lost %d "
              "(%d TOO_OLD resyncs)",
              name, size, t.sent, t.received, t.lost, t.too_old_events));
        }
      }
    }
    if (!settings.empty()) {
      notes->push_back(absl::StrFormat(
          "%s: %s", ColumnName(static_cast<Column>(c)), settings));
    }
  }
  if (!short_of_samples.empty()) {
    notes->push_back(absl::StrFormat(
        "latency cells that hit --latency_budget_ms before --iterations=%d "
        "samples: %s",
        options.iterations, absl::StrJoin(short_of_samples, ", ")));
  }
  // Latency and throughput usually fail for the same reason: say it once.
  for (const std::string& problem : problems) {
    if (std::find(notes->begin(), notes->end(), problem) == notes->end()) {
      notes->push_back(problem);
    }
  }
}

}  // namespace benchmark_tool
}  // namespace lockless
