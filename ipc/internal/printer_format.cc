#include "ipc/internal/printer_format.h"

#include <time.h>
#include <unistd.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "index/queue_index.h"
#include "sync/robust_mutex.h"

namespace lockless {
namespace internal {

bool DefaultIsAlive(pid_t tid) {
  if (tid <= 0) return false;
  char path[32];
  absl::SNPrintF(path, sizeof(path), "/proc/%d", tid);
  // /proc/<tid> exists for every thread (not only thread-group leaders),
  // even though only leaders are listed by readdir.
  return access(path, F_OK) == 0;
}

std::string FormatMonotonic(int64_t ns) {
  if (ns == 0) return "unset";
  // Magnitude as unsigned so INT64_MIN does not overflow.
  const uint64_t magnitude = ns < 0 ? 0 - static_cast<uint64_t>(ns)
                                    : static_cast<uint64_t>(ns);
  return absl::StrFormat("%s%u.%09u s", ns < 0 ? "-" : "",
                         magnitude / 1000000000u, magnitude % 1000000000u);
}

std::string FormatRealtime(int64_t ns) {
  if (ns == 0) return "unset";
  int64_t seconds = ns / 1000000000;
  int64_t nanos = ns % 1000000000;
  if (nanos < 0) {  // Floor division for times before 1970.
    nanos += 1000000000;
    seconds -= 1;
  }
  const time_t t = static_cast<time_t>(seconds);
  struct tm tm;
  char date[64];
  if (gmtime_r(&t, &tm) == nullptr ||
      strftime(date, sizeof(date), "%Y-%m-%d %H:%M:%S", &tm) == 0) {
    return absl::StrFormat("%d ns (not a representable date)", ns);
  }
  return absl::StrFormat("%s.%09d UTC", date, nanos);
}

std::string QueueIndexText(uint32_t raw, uint32_t queue_size) {
  if (raw == QueueIndex::kInvalidValue) return "invalid";
  if (!QueueIndex::IsLegalRaw(raw, queue_size)) {
    return absl::StrFormat("%u (illegal: not below the wrap point %u)", raw,
                           QueueIndex::MaxIndex(QueueIndex::kMaxValue,
                                                queue_size));
  }
  return absl::StrFormat("%u", raw);
}

void AppendEscaped(const std::string& bytes, std::string* out) {
  for (unsigned char c : bytes) {
    switch (c) {
      case '\\': out->append("\\\\"); break;
      case '"': out->append("\\\""); break;
      case '\n': out->append("\\n"); break;
      case '\r': out->append("\\r"); break;
      case '\t': out->append("\\t"); break;
      case '\0': out->append("\\0"); break;
      default:
        if (c >= 0x20 && c < 0x7f) {
          out->push_back(static_cast<char>(c));
        } else {
          absl::StrAppendFormat(out, "\\x%02x", c);
        }
    }
  }
}

void AppendHex(const std::string& bytes, const std::string& indent,
               std::string* out) {
  constexpr size_t kBytesPerLine = 16;
  for (size_t line = 0; line < bytes.size(); line += kBytesPerLine) {
    absl::StrAppendFormat(out, "%s%04x  ", indent, line);
    const size_t end = std::min(bytes.size(), line + kBytesPerLine);
    for (size_t i = line; i < line + kBytesPerLine; ++i) {
      if (i < end) {
        absl::StrAppendFormat(out, "%02x ",
                              static_cast<unsigned char>(bytes[i]));
      } else {
        out->append("   ");
      }
    }
    out->append(" |");
    for (size_t i = line; i < end; ++i) {
      const unsigned char c = static_cast<unsigned char>(bytes[i]);
      out->push_back(c >= 0x20 && c < 0x7f ? static_cast<char>(c) : '.');
    }
    out->append("|\n");
  }
}

std::string OwnerText(uint32_t word,
                      const std::function<bool(pid_t)>& is_alive) {
  const pid_t tid = OwnerTid(word);
  std::string text;
  if (tid == 0) {
    text = "free";
  } else {
    text = absl::StrFormat("owner tid %d (%s)", tid,
                           (is_alive ? is_alive(tid) : DefaultIsAlive(tid)) ? "alive" : "dead");
  }
  if (OwnerDied(word)) {
    text += ", OWNER_DIED (previous owner died holding it; not yet recovered)";
  }
  if (HasWaiters(word)) text += ", WAITERS";
  if (OwnerDied(word) || HasWaiters(word)) {
    absl::StrAppendFormat(&text, " [word 0x%08x]", word);
  }
  return text;
}

std::string IndexText(Index entry, uint32_t queue_size_,
                      uint64_t num_messages) {
  if (!entry.valid()) return "invalid";
  std::string text;
  if (sizeof(Index::WordType) == 8) {
    text = absl::StrCat("queue index ",
                        QueueIndexText(entry.queue_index(), queue_size_));
  } else {
    text = absl::StrFormat("queue index low bits 0x%04x",
                           entry.queue_index());
  }
  absl::StrAppendFormat(&text, ", message %u", entry.message_index());
  if (entry.message_index() >= num_messages) {
    absl::StrAppendFormat(&text,
                          " (out of range: the region has %u messages; "
                          "corrupt)",
                          num_messages);
  }
  return text;
}

}  // namespace internal
}  // namespace lockless
