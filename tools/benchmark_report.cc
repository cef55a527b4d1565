#include "tools/benchmark_report.h"

#include <algorithm>

#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

namespace lockless {
namespace benchmark_tool {
namespace {

constexpr Column kOurs[] = {kOursPolling, kOursSignal};
constexpr Column kRulers[] = {kFloor, kSpscRing};
constexpr Column kPeers[] = {kPipe, kUnixDgram, kPosixMq, kBoostMq};

std::string FormatCell(const Cell& cell, int precision) {
  if (!cell.value.has_value()) return cell.missing;
  return absl::StrFormat("%.*f", precision, *cell.value);
}

// How many times better ours is than the peer, or nullopt if either side
// is missing (or zero, which would make the ratio meaningless).
std::optional<double> Ratio(const Row& row, Column ours, Column peer) {
  const std::optional<double>& mine = row.cells[ours].value;
  const std::optional<double>& theirs = row.cells[peer].value;
  if (row.better == Better::kNone || !mine || !theirs || *mine <= 0 ||
      *theirs <= 0) {
    return std::nullopt;
  }
  return row.better == Better::kLower ? *theirs / *mine : *mine / *theirs;
}

// Ours as a multiple of the ruler (any metric with a direction), or nullopt
// if either side is missing or zero.
std::optional<double> Multiple(const Row& row, Column ours, Column ruler) {
  const std::optional<double>& mine = row.cells[ours].value;
  const std::optional<double>& theirs = row.cells[ruler].value;
  if (row.better == Better::kNone || !mine || !theirs || *mine <= 0 ||
      *theirs <= 0) {
    return std::nullopt;
  }
  return *mine / *theirs;
}

std::string FormatRatio(const std::optional<double>& ratio) {
  if (!ratio) return "-";
  return absl::StrFormat(*ratio >= 100 ? "%.0f" : "%.1f", *ratio);
}

// Multiples of a ruler sit near 1: two decimals.
std::string FormatMultiple(const std::optional<double>& multiple) {
  if (!multiple) return "-";
  return absl::StrFormat(*multiple >= 100 ? "%.0f" : "%.2f", *multiple);
}

}  // namespace

const char* ColumnName(Column column) {
  switch (column) {
    case kOursPolling:
      return "ours poll";
    case kOursSignal:
      return "ours signal";
    case kFloor:
      return "floor line";
    case kSpscRing:
      return "spsc ring";
    case kPipe:
      return "pipe";
    case kUnixDgram:
      return "unix dgram";
    case kPosixMq:
      return "posix mq";
    case kBoostMq:
      return "boost mq";
    case kNumColumns:
      break;
  }
  return "?";
}

const char* ColumnCsvName(Column column) {
  switch (column) {
    case kOursPolling:
      return "ours_polling";
    case kOursSignal:
      return "ours_signal";
    case kFloor:
      return "floor_line";
    case kSpscRing:
      return "spsc_ring";
    case kPipe:
      return "pipe";
    case kUnixDgram:
      return "unix_dgram";
    case kPosixMq:
      return "posix_mq";
    case kBoostMq:
      return "boost_mq";
    case kNumColumns:
      break;
  }
  return "?";
}

std::string ResultTable::ToText() const {
  std::vector<std::vector<std::string>> lines;
  std::vector<std::string> header = {"metric", "size"};
  for (int c = 0; c < kNumColumns; ++c) {
    header.push_back(ColumnName(static_cast<Column>(c)));
  }
  for (Column ruler : kRulers) {
    header.push_back(absl::StrFormat("x %s", ColumnName(ruler)));
  }
  for (Column peer : kPeers) {
    header.push_back(absl::StrFormat("vs %s", ColumnName(peer)));
  }
  lines.push_back(header);
  for (const Row& row : rows_) {
    std::vector<std::string> line = {row.metric,
                                     absl::StrFormat("%d", row.size_bytes)};
    for (const Cell& cell : row.cells) {
      line.push_back(FormatCell(cell, row.precision));
    }
    for (Column ruler : kRulers) {
      const std::optional<double> polling = Multiple(row, kOursPolling, ruler);
      const std::optional<double> signal = Multiple(row, kOursSignal, ruler);
      line.push_back(polling || signal ? FormatMultiple(polling) + "/" +
                                             FormatMultiple(signal)
                                       : "");
    }
    for (Column peer : kPeers) {
      // "vs polling / vs signal" in one cell keeps the table readable.
      const std::optional<double> polling = Ratio(row, kOursPolling, peer);
      const std::optional<double> signal = Ratio(row, kOursSignal, peer);
      line.push_back(polling || signal
                         ? FormatRatio(polling) + "/" + FormatRatio(signal)
                         : "");
    }
    lines.push_back(line);
  }

  std::vector<size_t> widths(header.size(), 0);
  for (const auto& line : lines) {
    for (size_t i = 0; i < line.size(); ++i) {
      widths[i] = std::max(widths[i], line[i].size());
    }
  }
  std::string text;
  for (size_t l = 0; l < lines.size(); ++l) {
    for (size_t i = 0; i < lines[l].size(); ++i) {
      // Metric left-aligned, numbers right-aligned.
      text += i == 0 ? absl::StrFormat("%-*s", widths[i], lines[l][i])
                     : absl::StrFormat("  %*s", widths[i], lines[l][i]);
    }
    text += "\n";
    if (l == 0) {
      size_t total = 0;
      for (size_t w : widths) total += w + 2;
      text += std::string(total - 2, '-') + "\n";
    }
  }
  return text;
}

std::string ResultTable::ToCsv() const {
  std::vector<std::string> header = {"metric", "size_bytes"};
  for (int c = 0; c < kNumColumns; ++c) {
    header.push_back(ColumnCsvName(static_cast<Column>(c)));
  }
  for (Column ruler : kRulers) {
    for (Column ours : kOurs) {
      header.push_back(absl::StrFormat("multiple_%s_of_%s", ColumnCsvName(ours),
                                       ColumnCsvName(ruler)));
    }
  }
  for (Column peer : kPeers) {
    for (Column ours : kOurs) {
      header.push_back(absl::StrFormat("ratio_%s_vs_%s", ColumnCsvName(peer),
                                       ColumnCsvName(ours)));
    }
  }
  std::string csv = absl::StrJoin(header, ",") + "\n";
  for (const Row& row : rows_) {
    // Metrics contain no commas or quotes (we name them), so no quoting.
    std::vector<std::string> fields = {row.metric,
                                       absl::StrFormat("%d", row.size_bytes)};
    for (const Cell& cell : row.cells) {
      fields.push_back(cell.value ? absl::StrFormat("%.6g", *cell.value)
                                  : (cell.missing == "-" ? "" : cell.missing));
    }
    for (Column ruler : kRulers) {
      for (Column ours : kOurs) {
        const std::optional<double> multiple = Multiple(row, ours, ruler);
        fields.push_back(multiple ? absl::StrFormat("%.4g", *multiple) : "");
      }
    }
    for (Column peer : kPeers) {
      for (Column ours : kOurs) {
        const std::optional<double> ratio = Ratio(row, ours, peer);
        fields.push_back(ratio ? absl::StrFormat("%.4g", *ratio) : "");
      }
    }
    csv += absl::StrJoin(fields, ",") + "\n";
  }
  return csv;
}

}  // namespace benchmark_tool
}  // namespace lockless
