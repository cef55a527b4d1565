#include "ipc/queue_printer.h"

#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "index/atomic_index.h"
#include "index/index.h"
#include "index/queue_index.h"
#include "ipc/internal/racy_copy.h"
#include "ipc/queue_config.h"
#include "sync/robust_mutex.h"

namespace lockless {
namespace {

using internal::Layout;
using internal::Message;
using internal::MessageHeader;
using internal::RegionHeader;
using internal::RegionView;

// One copy of everything ValidateRegionImage looks at. Everything after
// validation uses this copy, never the live header fields again.
struct HeaderFields {
  uint32_t initialized;
  uint64_t magic;
  uint32_t layout_version;
  uint64_t total_size_bytes;
  internal::StoredConfig config;
};

// The only place the header is read during validation. Trivial locals only,
// so that a SIGBUS here can be siglongjmp'ed out of (see the header).
HeaderFields ReadHeaderFields(const RegionHeader* header) {
  HeaderFields fields;
  // acquire: pairs with the release store that ends InitializeRegion, so an
  // in-process caller that sees kInitializedValue also sees the fields below
  // as the creator wrote them.
  fields.initialized = header->initialized.load(std::memory_order_acquire);
  // The plain fields are written once before `initialized`; memcpy, not a
  // typed read, because the bytes may be anything.
  std::memcpy(&fields.magic, &header->magic, sizeof(fields.magic));
  std::memcpy(&fields.layout_version, &header->layout_version,
              sizeof(fields.layout_version));
  std::memcpy(&fields.total_size_bytes, &header->total_size_bytes,
              sizeof(fields.total_size_bytes));
  std::memcpy(&fields.config, &header->config, sizeof(fields.config));
  return fields;
}

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

// Prints one validated region. Holds the layout computed from the validated
// header copy; every read of the arrays goes through the accessors below,
// whose offsets are within layout.total_size_bytes (<= the image size) by
// construction, and every number read from memory is range-checked before it
// selects anything.
class Printer {
 public:
  Printer(const void* memory, const Layout& layout, const PrintOptions& options)
      // const_cast: RegionView has no const flavour; this class only calls
      // const loads through it and never writes.
      : region_(const_cast<void*>(memory), layout),
        options_(options),
        queue_size_(layout.config.queue_size) {}

  void PrintAll(std::string* out) const;
  absl::Status PrintOne(uint32_t raw_queue_index, std::string* out) const;

 private:
  bool IsAlive(pid_t tid) const {
    return options_.is_alive ? options_.is_alive(tid) : DefaultIsAlive(tid);
  }
  std::string OwnerText(uint32_t word) const;
  std::string IndexText(Index entry) const;
  void PrintHeader(std::string* out) const;
  void PrintRing(std::string* out) const;
  void PrintSenders(std::string* out) const;
  void PrintWatchers(std::string* out) const;
  void PrintOwnershipCheck(std::string* out) const;
  void PrintMessage(uint32_t message_index, std::optional<Index> ring_entry,
                    const std::string& indent, std::string* out) const;

  // The header's next_queue_index, read now (relaxed: a snapshot for
  // display; nothing read afterwards depends on it for correctness).
  uint32_t NextQueueIndexRaw() const {
    return region_.header()->next_queue_index.RelaxedLoadRaw();
  }

  RegionView region_;
  const PrintOptions& options_;
  uint32_t queue_size_;
};

std::string Printer::OwnerText(uint32_t word) const {
  const pid_t tid = OwnerTid(word);
  std::string text;
  if (tid == 0) {
    text = "free";
  } else {
    text = absl::StrFormat("owner tid %d (%s)", tid,
                           IsAlive(tid) ? "alive" : "dead");
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

std::string Printer::IndexText(Index entry) const {
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
  if (entry.message_index() >= region_.layout().num_messages) {
    absl::StrAppendFormat(&text,
                          " (out of range: the region has %u messages; "
                          "corrupt)",
                          region_.layout().num_messages);
  }
  return text;
}

void Printer::PrintHeader(std::string* out) const {
  const Layout& layout = region_.layout();
  absl::StrAppendFormat(out,
                        "region: %u bytes, layout version %u, %u-byte ring "
                        "entries\n",
                        layout.total_size_bytes, internal::kLayoutVersion,
                        sizeof(Index));
  absl::StrAppendFormat(out, "config: %s\n", layout.config.DebugString());
  absl::StrAppendFormat(
      out,
      "layout: ring @%u, %u messages @%u (%u bytes each), watchers @%u, "
      "senders @%u\n",
      layout.ring_offset, layout.num_messages, layout.messages_offset,
      layout.message_stride_bytes, layout.watchers_offset,
      layout.senders_offset);
  absl::StrAppendFormat(out, "setup lock: %s\n",
                        OwnerText(region_.header()->setup_lock.RawOwnerWord()));
  const uint32_t next_raw = NextQueueIndexRaw();
  absl::StrAppendFormat(out, "next_queue_index: %s",
                        QueueIndexText(next_raw, queue_size_));
  if (next_raw == QueueIndex::kInvalidValue) {
    out->append(" (nothing sent yet)\n");
  } else if (QueueIndex::IsLegalRaw(next_raw, queue_size_)) {
    const QueueIndex next = QueueIndex::FromRaw(next_raw, queue_size_);
    absl::StrAppendFormat(out, ", latest: %u\n", next.DecrementBy(1).index());
  } else {
    out->append("\n");
  }
}

void Printer::PrintMessage(uint32_t message_index,
                           std::optional<Index> ring_entry,
                           const std::string& indent, std::string* out) const {
  const Layout& layout = region_.layout();
  if (message_index >= layout.num_messages) return;  // Flagged by the caller.
  const MessageHeader& header = region_.message(message_index)->header;
  const uint64_t capacity = layout.config.message_data_size_bytes;

  // Seqlock-style, as LocklessQueue::Read. acquire: pairs with the sender's
  // publishing CAS / release, so the fields below are at least as new.
  const uint32_t queue_index_before = header.queue_index.Load(queue_size_).index();
  // relaxed: validated by the queue-index re-check below.
  const uint64_t length = header.length.load(std::memory_order_relaxed);
  const int64_t monotonic_ns =
      header.monotonic_sent_time_ns.load(std::memory_order_relaxed);
  const int64_t realtime_ns =
      header.realtime_sent_time_ns.load(std::memory_order_relaxed);
  // `length` is checked here, once, and only this local copy is used.
  const uint64_t shown_length = std::min<uint64_t>(
      std::min<uint64_t>(length, capacity), options_.max_data_bytes);
  std::string data(shown_length, '\0');
  internal::RacyCopy(data.data(), region_.message(message_index)->data(),
                     shown_length);
  // acquire fence: pairs with the sender's release fence after it
  // invalidated the message's queue index and before it rewrote anything.
  std::atomic_thread_fence(std::memory_order_acquire);
  // relaxed: ordered by the fence above.
  const uint32_t queue_index_after = header.queue_index.RelaxedLoadRaw();

  if (queue_index_before == QueueIndex::kInvalidValue &&
      queue_index_after == queue_index_before && length == 0 &&
      monotonic_ns == 0 && realtime_ns == 0) {
    // Initialised and never used (the ring's initial lap, or a scratch).
    absl::StrAppendFormat(out, "%smessage %u: empty (never published)\n",
                          indent, message_index);
    return;
  }
  absl::StrAppendFormat(out,
                        "%smessage %u: queue index %s, length %u, sent "
                        "monotonic %s, realtime %s\n",
                        indent, message_index,
                        QueueIndexText(queue_index_before, queue_size_), length,
                        FormatMonotonic(monotonic_ns),
                        FormatRealtime(realtime_ns));
  const std::string note_indent = indent + "  ";
  if (queue_index_after != queue_index_before) {
    absl::StrAppendFormat(out,
                          "%s(changed while reading: a sender recycled it, "
                          "queue index now %s; the values above may be torn)\n",
                          note_indent,
                          QueueIndexText(queue_index_after, queue_size_));
  } else if (ring_entry.has_value() && ring_entry->valid() &&
             queue_index_before != QueueIndex::kInvalidValue &&
             (queue_index_before & Index::kQueueIndexMask) !=
                 ring_entry->queue_index()) {
    absl::StrAppendFormat(out,
                          "%s(its queue index does not match the ring entry: "
                          "being replaced, or stale)\n",
                          note_indent);
  }
  if (length > capacity) {
    absl::StrAppendFormat(out,
                          "%s(length %u exceeds message_data_size_bytes %u: "
                          "corrupt; showing the first bytes of the buffer)\n",
                          note_indent, length, capacity);
  }
  if (length == 0) return;
  const uint64_t hidden = std::min(length, capacity) - shown_length;
  const std::string more =
      hidden > 0 ? absl::StrFormat(" ... %u more bytes not shown", hidden)
                 : std::string();
  if (options_.hex_data) {
    absl::StrAppendFormat(out, "%sdata (hex):%s\n", note_indent, more);
    AppendHex(data, note_indent + "  ", out);
  } else {
    absl::StrAppendFormat(out, "%sdata: \"", note_indent);
    AppendEscaped(data, out);
    absl::StrAppendFormat(out, "\"%s\n", more);
  }
}

void Printer::PrintRing(std::string* out) const {
  // The queue index each slot should hold for the current lap: the window
  // [next - queue_size, next - 1] covers every slot exactly once (before the
  // first send, next counts as 0 and the window is InitializeRegion's lap).
  const uint32_t next_raw = NextQueueIndexRaw();
  std::optional<QueueIndex> window_start;
  if (QueueIndex::IsLegalRaw(next_raw, queue_size_)) {
    const QueueIndex next = next_raw == QueueIndex::kInvalidValue
                                ? QueueIndex::Zero(queue_size_)
                                : QueueIndex::FromRaw(next_raw, queue_size_);
    window_start = next.DecrementBy(queue_size_);
  }
  absl::StrAppendFormat(out, "ring: %u slots\n", queue_size_);
  for (uint32_t slot = 0; slot < queue_size_; ++slot) {
    // acquire: pairs with the publishing CAS, so the message it names is at
    // least as new as the entry (as in LocklessQueue::Read).
    const Index entry = region_.ring(slot)->Load();
    absl::StrAppendFormat(out, "  slot %u: %s", slot, IndexText(entry));
    if (window_start.has_value() && entry.valid()) {
      const uint32_t offset = static_cast<uint32_t>(
          (uint64_t{slot} + queue_size_ - window_start->Wrapped()) %
          queue_size_);
      const QueueIndex expected = window_start->IncrementBy(offset);
      if (entry.IsPlausible(expected)) {
        // As expected for this lap.
      } else if (entry.IsPlausible(expected.IncrementBy(queue_size_))) {
        out->append("  [one lap ahead of next_queue_index: a send just "
                    "published it]");
      } else {
        absl::StrAppendFormat(out, "  [unexpected: should hold queue index %u]",
                              expected.index());
      }
    }
    out->append("\n");
    if (entry.valid()) {
      PrintMessage(entry.message_index(), entry, "    ", out);
    }
  }
}

void Printer::PrintSenders(std::string* out) const {
  const uint32_t num_senders = region_.config().num_senders;
  absl::StrAppendFormat(out, "senders: %u slots\n", num_senders);
  for (uint32_t s = 0; s < num_senders; ++s) {
    const internal::SenderSlot* const sender = region_.sender(s);
    const uint32_t word = sender->ownership.RawOwnerWord();
    // relaxed: display snapshot; a live sender may change them any time.
    const Index scratch = sender->scratch_index.RelaxedLoad();
    const Index to_replace = sender->to_replace.RelaxedLoad();
    absl::StrAppendFormat(out, "  sender %u: %s\n", s, OwnerText(word));
    absl::StrAppendFormat(out, "    scratch_index: %s\n", IndexText(scratch));
    absl::StrAppendFormat(out, "    to_replace: %s%s\n", IndexText(to_replace),
                          to_replace.valid()
                              ? " (a send is in flight, or the sender died "
                                "mid-send)"
                              : "");
  }
}

void Printer::PrintWatchers(std::string* out) const {
  const uint32_t num_watchers = region_.config().num_watchers;
  absl::StrAppendFormat(out, "watchers: %u slots\n", num_watchers);
  for (uint32_t w = 0; w < num_watchers; ++w) {
    const internal::WatcherSlot* const watcher = region_.watcher(w);
    const uint32_t word = watcher->ownership.RawOwnerWord();
    // relaxed: display snapshot.
    const int32_t pid = watcher->pid.load(std::memory_order_relaxed);
    const int32_t priority = watcher->priority.load(std::memory_order_relaxed);
    absl::StrAppendFormat(out, "  watcher %u: %s, pid %d, priority %d\n", w,
                          OwnerText(word), pid, priority);
  }
}

void Printer::PrintOwnershipCheck(std::string* out) const {
  // Each message must be in exactly one ring slot or one sender's scratch
  // (queue_layout.h). num_messages <= size / 64 here (the layout fits in the
  // image), so this vector is bounded by the image.
  const uint64_t num_messages = region_.layout().num_messages;
  std::vector<uint8_t> owners(num_messages, 0);
  std::vector<std::string> problems;
  auto count = [&](Index entry, const std::string& where) {
    if (!entry.valid()) {
      problems.push_back(absl::StrCat(where, " is invalid"));
      return;
    }
    if (entry.message_index() >= num_messages) {
      problems.push_back(absl::StrFormat("%s names message %u, out of range",
                                         where, entry.message_index()));
      return;
    }
    uint8_t& n = owners[entry.message_index()];
    if (n < 255) ++n;
  };
  for (uint32_t slot = 0; slot < queue_size_; ++slot) {
    // relaxed: a display snapshot, not a consistent cut.
    count(region_.ring(slot)->RelaxedLoad(),
          absl::StrFormat("ring slot %u", slot));
  }
  for (uint32_t s = 0; s < region_.config().num_senders; ++s) {
    count(region_.sender(s)->scratch_index.RelaxedLoad(),
          absl::StrFormat("sender %u scratch_index", s));
  }
  for (uint64_t m = 0; m < num_messages; ++m) {
    if (owners[m] == 0) {
      problems.push_back(absl::StrFormat("message %u has no owner", m));
    } else if (owners[m] > 1) {
      problems.push_back(
          absl::StrFormat("message %u has %u owners", m, owners[m]));
    }
  }
  if (problems.empty()) {
    absl::StrAppendFormat(out,
                          "ownership: ok (each of the %u messages is in "
                          "exactly one ring slot or sender scratch)\n",
                          num_messages);
    return;
  }
  absl::StrAppendFormat(out,
                        "ownership: %u problem(s) (normal for an instant "
                        "during a send, or after a sender died mid-send until "
                        "the next MakeSender recovers it):\n",
                        problems.size());
  constexpr size_t kMaxListed = 10;
  for (size_t i = 0; i < problems.size() && i < kMaxListed; ++i) {
    absl::StrAppendFormat(out, "  %s\n", problems[i]);
  }
  if (problems.size() > kMaxListed) {
    absl::StrAppendFormat(out, "  ... and %u more\n",
                          problems.size() - kMaxListed);
  }
}

void Printer::PrintAll(std::string* out) const {
  PrintHeader(out);
  if (options_.summary_only) {
    // Counts only: who holds the slots, no per-slot detail.
    int senders_alive = 0, senders_dead = 0, senders_died = 0;
    for (uint32_t s = 0; s < region_.config().num_senders; ++s) {
      const uint32_t word = region_.sender(s)->ownership.RawOwnerWord();
      if (OwnerDied(word)) ++senders_died;
      if (OwnerTid(word) == 0) continue;
      IsAlive(OwnerTid(word)) ? ++senders_alive : ++senders_dead;
    }
    int watchers_alive = 0, watchers_dead = 0;
    for (uint32_t w = 0; w < region_.config().num_watchers; ++w) {
      const uint32_t word = region_.watcher(w)->ownership.RawOwnerWord();
      if (OwnerTid(word) == 0) continue;
      IsAlive(OwnerTid(word)) ? ++watchers_alive : ++watchers_dead;
    }
    absl::StrAppendFormat(out,
                          "senders: %d alive, %d owner dead, %d marked "
                          "OWNER_DIED, of %u slots\n",
                          senders_alive, senders_dead, senders_died,
                          region_.config().num_senders);
    absl::StrAppendFormat(out,
                          "watchers: %d alive, %d owner dead, of %u slots\n",
                          watchers_alive, watchers_dead,
                          region_.config().num_watchers);
    PrintOwnershipCheck(out);
    return;
  }
  PrintRing(out);
  PrintSenders(out);
  PrintWatchers(out);
  PrintOwnershipCheck(out);
}

absl::Status Printer::PrintOne(uint32_t raw, std::string* out) const {
  if (raw == QueueIndex::kInvalidValue ||
      !QueueIndex::IsLegalRaw(raw, queue_size_)) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "queue index %u is not valid for queue_size %u (valid: 0 to %u)", raw,
        queue_size_,
        QueueIndex::MaxIndex(QueueIndex::kMaxValue, queue_size_) - 1));
  }
  const QueueIndex queue_index = QueueIndex::FromRaw(raw, queue_size_);
  const uint32_t slot = queue_index.Wrapped();
  // acquire: as in PrintRing.
  const Index entry = region_.ring(slot)->Load();
  if (entry.IsPlausible(queue_index)) {
    if (entry.message_index() >= region_.layout().num_messages) {
      return absl::DataLossError(absl::StrFormat(
          "ring slot %u names message %u, but the region has only %u "
          "messages: corrupt",
          slot, entry.message_index(), region_.layout().num_messages));
    }
    absl::StrAppendFormat(out, "queue index %u: ring slot %u holds message %u\n",
                          raw, slot, entry.message_index());
    PrintMessage(entry.message_index(), entry, "  ", out);
    return absl::OkStatus();
  }
  // Not there: say whether it is gone or still to come.
  const uint32_t next_raw = NextQueueIndexRaw();
  if (next_raw == QueueIndex::kInvalidValue) {
    return absl::NotFoundError(absl::StrFormat(
        "queue index %u has not been sent yet: nothing was ever sent on this "
        "channel",
        raw));
  }
  if (!QueueIndex::IsLegalRaw(next_raw, queue_size_)) {
    return absl::DataLossError(absl::StrFormat(
        "queue index %u is not in ring slot %u (which holds %s), and "
        "next_queue_index %u is corrupt",
        raw, slot, IndexText(entry), next_raw));
  }
  const QueueIndex next = QueueIndex::FromRaw(next_raw, queue_size_);
  const uint32_t latest = next.DecrementBy(1).index();
  const uint32_t ahead = queue_index.DistanceFrom(next);
  if (ahead < next.max_index() / 2) {
    return absl::NotFoundError(absl::StrFormat(
        "queue index %u has not been sent yet (latest is %u)", raw, latest));
  }
  if (next.DistanceFrom(queue_index) <= queue_size_) {
    return absl::NotFoundError(absl::StrFormat(
        "queue index %u should be in ring slot %u, but the slot holds %s (a "
        "send is in flight there, or the slot is corrupt)",
        raw, slot, IndexText(entry)));
  }
  return absl::NotFoundError(absl::StrFormat(
      "queue index %u is not in the ring any more: overwritten (ring slot %u "
      "now holds %s; the ring keeps the last %u messages, latest is %u)",
      raw, slot, IndexText(entry), queue_size_, latest));
}

}  // namespace

absl::StatusOr<internal::Layout> ValidateRegionImage(const void* memory,
                                                     size_t size_bytes) {
  if (memory == nullptr || size_bytes < sizeof(RegionHeader)) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "region image is %u bytes, smaller than the %u-byte region header: "
        "truncated, or not a lockless channel",
        memory == nullptr ? 0 : size_bytes, sizeof(RegionHeader)));
  }
  if (reinterpret_cast<uintptr_t>(memory) % alignof(RegionHeader) != 0) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "region image at %p is not aligned to %u bytes", memory,
        alignof(RegionHeader)));
  }
  // The single read of the image. Nothing below touches `memory` again.
  const HeaderFields fields =
      ReadHeaderFields(static_cast<const RegionHeader*>(memory));

  if (fields.magic == 0 && fields.initialized == 0) {
    // A freshly sized file: its creator has not written the header yet.
    return absl::FailedPreconditionError(
        "region is not initialised (creator still running or died): header "
        "is all zero");
  }
  if (fields.magic != internal::kRegionMagic) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "bad magic 0x%016x (expected 0x%016x): not a lockless channel region",
        fields.magic, internal::kRegionMagic));
  }
  if (fields.initialized == 0 && fields.layout_version == 0) {
    // Stamped by a channel's creator, not initialised yet.
    return absl::FailedPreconditionError(
        "region is not initialised (creator still running or died): only "
        "the magic is written");
  }
  if (fields.layout_version != internal::kLayoutVersion) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "layout version %u, but this build understands version %u: use a "
        "tool built from the same source as the channel's users",
        fields.layout_version, internal::kLayoutVersion));
  }
  if (fields.config.index_bytes != sizeof(Index)) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "ring entries are %u bytes, but this build uses %u-byte entries "
        "(LOCKLESS_32BIT_INDEX mismatch)",
        fields.config.index_bytes, sizeof(Index)));
  }
  QueueConfig config;
  config.num_watchers = fields.config.num_watchers;
  config.num_senders = fields.config.num_senders;
  config.queue_size = fields.config.queue_size;
  config.message_data_size_bytes = fields.config.message_data_size_bytes;
  absl::StatusOr<Layout> layout = internal::ComputeLayout(config);
  if (!layout.ok()) {
    return absl::DataLossError(absl::StrFormat(
        "header holds an invalid configuration %s: %s", config.DebugString(),
        layout.status().message()));
  }
  if (layout->total_size_bytes != fields.total_size_bytes) {
    return absl::DataLossError(absl::StrFormat(
        "header says the region is %u bytes, but its configuration %s needs "
        "%u: corrupt header",
        fields.total_size_bytes, config.DebugString(),
        layout->total_size_bytes));
  }
  if (layout->total_size_bytes > size_bytes) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "region needs %u bytes (configuration %s), but the image is only %u "
        "bytes: truncated",
        layout->total_size_bytes, config.DebugString(), size_bytes));
  }
  if (fields.initialized != internal::kInitializedValue) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "region is not initialised (creator still running or died): "
        "initialized flag is 0x%08x",
        fields.initialized));
  }
  return layout;
}

absl::Status PrintRegion(const void* memory, size_t size_bytes,
                         const PrintOptions& options, std::string* out) {
  absl::StatusOr<Layout> layout = ValidateRegionImage(memory, size_bytes);
  if (!layout.ok()) return layout.status();
  const Printer printer(memory, *layout, options);
  std::string text;
  if (options.queue_index.has_value()) {
    if (absl::Status status = printer.PrintOne(*options.queue_index, &text);
        !status.ok()) {
      return status;
    }
  } else {
    printer.PrintAll(&text);
  }
  out->append(text);
  return absl::OkStatus();
}

}  // namespace lockless
