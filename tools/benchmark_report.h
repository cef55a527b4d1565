// The result table of tools/benchmark: rows are (metric, message size),
// columns are our queue (polling and signal-woken receiver), the two rulers
// (benchmark_rulers.h: the cache-line floor and a minimal SPSC ring) and the
// four peers, followed by
//   - ours as a multiple of each ruler: ours / ruler, for every metric
//     (latency 2.0 = twice the floor; throughput 0.5 = half the ring's);
//   - how many times better ours is than each peer:
//       latency rows:    peer / ours   (how many times slower the peer is)
//       throughput rows: ours / peer   (how many times more ours moves)
// each given against ours (polling) and ours (signal). Printed as aligned
// text and written as CSV with the same content.
//
// Thread-safety: a plain value type.
#ifndef LOCKLESS_TOOLS_BENCHMARK_REPORT_H_
#define LOCKLESS_TOOLS_BENCHMARK_REPORT_H_

#include <array>
#include <cstddef>
#include <optional>
#include <string>
#include <vector>

namespace lockless {
namespace benchmark_tool {

enum Column {
  kOursPolling,
  kOursSignal,
  kFloor,
  kSpscRing,
  kPipe,
  kUnixDgram,
  kPosixMq,
  kBoostMq,
  kNumColumns,
};

// Short names, used as text headers and (lower case) CSV headers.
const char* ColumnName(Column column);
const char* ColumnCsvName(Column column);

enum class Better {
  kLower,   // latency: ratio = peer / ours
  kHigher,  // throughput: ratio = ours / peer
  kNone,    // no ratio (counts, micro rows)
};

struct Cell {
  std::optional<double> value;
  // Shown when there is no value: "n/a" for a peer that cannot run, "-" for
  // a cell that does not apply.
  std::string missing = "-";
};

struct Row {
  std::string metric;  // includes the unit, e.g. "latency p50 (us)"
  size_t size_bytes = 0;
  Better better = Better::kNone;
  int precision = 2;  // digits after the decimal point
  std::array<Cell, kNumColumns> cells;
};

class ResultTable {
 public:
  void Add(Row row) { rows_.push_back(std::move(row)); }

  std::string ToText() const;
  std::string ToCsv() const;

 private:
  std::vector<Row> rows_;
};

}  // namespace benchmark_tool
}  // namespace lockless

#endif  // LOCKLESS_TOOLS_BENCHMARK_REPORT_H_
