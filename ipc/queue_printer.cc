#include "ipc/queue_printer.h"

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
#include "ipc/internal/owner_liveness.h"
#include "ipc/internal/printer_format.h"
#include "ipc/internal/printer_ownership.h"
#include "ipc/internal/printer_reads.h"
#include "ipc/internal/sigbus_guard.h"
#include "ipc/queue_config.h"
#include "sync/robust_mutex.h"

namespace lockless {
namespace {

// "    owner record: pid P tid T started at tick S: alive" for a word that
// names an owner: what MakeSender / MakeWatcher / setup would conclude about
// it when the kernel has not marked it (owner_liveness.h).
void AppendOwnerRecord(uint32_t word, const internal::OwnerIdentity& record,
                       std::string* out) {
  const pid_t tid = OwnerTid(word);
  if (tid == 0 || OwnerDied(word)) return;
  absl::StrAppendFormat(
      out, "    owner record: pid %d tid %d started at tick %u: %s\n",
      record.pid, record.tid, record.start_time_ticks,
      internal::OwnerLivenessName(internal::JudgeOwner(
          tid, record, internal::CurrentOwnerIdentity().pid_namespace)));
}

}  // namespace

namespace {

using internal::AppendEscaped;
using internal::AppendHex;
using internal::FormatMonotonic;
using internal::FormatRealtime;
using internal::Layout;
using internal::MessageCopy;
using internal::QueueIndexText;
using internal::RegionHeader;
using internal::RegionView;
using internal::SlotsSnapshot;

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

constexpr char kTruncated[] = "file was truncated while reading";

// Prints one validated region, reading it only through printer_reads.h (each
// read a guarded copy). Text goes to `sink` in pieces: after the header,
// after every ring slot, after each section, so memory holds the slots and
// one message, never the whole dump.
class Printer {
 public:
  Printer(const void* memory, const Layout& layout, const PrintOptions& options,
          const std::function<void(absl::string_view)>& sink)
      // const_cast: RegionView has no const flavour; the printer only loads.
      : region_(const_cast<void*>(memory), layout),
        options_(options),
        sink_(sink),
        queue_size_(layout.config.queue_size) {}

  absl::Status PrintAll();
  absl::Status PrintOne(uint32_t raw_queue_index);

 private:
  std::string OwnerText(uint32_t word) const {
    return internal::OwnerText(word, options_.is_alive);
  }
  std::string IndexText(Index entry) const {
    return internal::IndexText(entry, queue_size_,
                               region_.layout().num_messages);
  }
  bool IsAlive(pid_t tid) const {
    return options_.is_alive ? options_.is_alive(tid)
                             : internal::DefaultIsAlive(tid);
  }
  void Flush(std::string* text) {
    sink_(*text);
    text->clear();
  }
  void PrintHeader(const SlotsSnapshot& slots, std::string* out) const;
  // False if the memory faulted.
  bool PrintRing(const SlotsSnapshot& slots, std::string* out);
  void PrintSenders(const SlotsSnapshot& slots, std::string* out) const;
  void PrintPinners(const SlotsSnapshot& slots, std::string* out) const;
  void PrintWatchers(const SlotsSnapshot& slots, std::string* out) const;
  void PrintCounts(const SlotsSnapshot& slots, std::string* out) const;
  bool PrintOwnershipCheck(std::string* out) const;
  // Reads message `message_index` and prints it, with a line about its
  // guard when that is broken. False if the memory faulted.
  bool PrintMessage(uint32_t message_index, std::optional<Index> ring_entry,
                    const std::string& indent, std::string* out) const;
  void AppendMessageText(const MessageCopy& copy, uint32_t message_index,
                         std::optional<Index> ring_entry,
                         const std::string& indent, std::string* out) const;

  RegionView region_;
  const PrintOptions& options_;
  const std::function<void(absl::string_view)>& sink_;
  uint32_t queue_size_;
};

void Printer::PrintHeader(const SlotsSnapshot& slots, std::string* out) const {
  const Layout& layout = region_.layout();
  absl::StrAppendFormat(out,
                        "region: %u bytes, layout version %u, %u-byte ring "
                        "entries\n",
                        layout.total_size_bytes, internal::kLayoutVersion,
                        sizeof(Index));
  absl::StrAppendFormat(out, "config: %s\n", layout.config.DebugString());
  absl::StrAppendFormat(
      out,
      "layout: ring @%u (%u lines, slots interleaved), %u messages @%u "
      "(%u bytes each), watchers @%u, senders @%u, pinners @%u, parked @%u\n",
      layout.ring_offset, layout.ring_lines, layout.num_messages,
      layout.messages_offset,
      layout.message_stride_bytes, layout.watchers_offset,
      layout.senders_offset, layout.pinners_offset, layout.parked_offset);
  absl::StrAppendFormat(out, "setup lock: %s\n",
                        OwnerText(slots.setup_lock_word));
  AppendOwnerRecord(slots.setup_lock_word, slots.setup_lock_owner, out);
  const uint32_t next_raw = slots.next_queue_index_raw;
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

bool Printer::PrintMessage(uint32_t message_index,
                           std::optional<Index> ring_entry,
                           const std::string& indent, std::string* out) const {
  const Layout& layout = region_.layout();
  if (message_index >= layout.num_messages) return true;  // Flagged by caller.
  const uint64_t capacity = layout.config.message_data_size_bytes;
  MessageCopy copy;
  const std::function<void()>& hook = options_.after_message_copy_for_test;
  if (!internal::ReadMessage(
          region_, message_index, options_.max_data_bytes, &copy,
          hook ? +[](void* f) { (*static_cast<const std::function<void()>*>(f))(); }
               : nullptr,
          const_cast<std::function<void()>*>(&hook))) {
    return false;
  }
  AppendMessageText(copy, message_index, ring_entry, indent, out);
  if (copy.guard_damage_bytes > 0) {
    absl::StrAppendFormat(
        out,
        "%s  GUARD OVERWRITTEN: a write reached %u bytes past the payload "
        "(max_size() %u)%s\n",
        indent, copy.guard_damage_bytes, capacity,
        copy.guard_damage_bytes == layout.guard_size_bytes
            ? ", to the end of the message: the next one may be hit too"
            : "");
  }
  return true;
}

void Printer::AppendMessageText(const MessageCopy& copy,
                                uint32_t message_index,
                                std::optional<Index> ring_entry,
                                const std::string& indent,
                                std::string* out) const {
  const uint64_t capacity = region_.layout().config.message_data_size_bytes;
  if (copy.queue_index_before == QueueIndex::kInvalidValue &&
      !copy.changed() && copy.length == 0 && copy.monotonic_ns == 0 &&
      copy.realtime_ns == 0) {
    // Initialised and never used (the ring's initial lap, or a scratch).
    absl::StrAppendFormat(out, "%smessage %u: empty (never published)\n",
                          indent, message_index);
    return;
  }
  const std::string note_indent = indent + "  ";
  if (copy.changed()) {
    // Torn: say so, and show nothing that may mix two messages.
    absl::StrAppendFormat(out,
                          "%smessage %u: changed while reading (a sender "
                          "recycled it: queue index %s before the copy, %s "
                          "after); not shown\n",
                          indent, message_index,
                          QueueIndexText(copy.queue_index_before, queue_size_),
                          QueueIndexText(copy.queue_index_after, queue_size_));
    return;
  }
  if (ring_entry.has_value() && ring_entry->valid() &&
      (copy.queue_index_before == QueueIndex::kInvalidValue ||
       (copy.queue_index_before & Index::kQueueIndexMask) !=
           ring_entry->queue_index())) {
    // Recycled between the ring read and the copy: what was copied is
    // another message, or a scratch a sender is filling.
    absl::StrAppendFormat(out,
                          "%smessage %u: changed while reading (replaced "
                          "since its ring slot was read; queue index now "
                          "%s); not shown\n",
                          indent, message_index,
                          QueueIndexText(copy.queue_index_before, queue_size_));
    return;
  }
  if (copy.queue_index_before == QueueIndex::kInvalidValue) {
    // A sender's scratch: its payload may be being written.
    absl::StrAppendFormat(out,
                          "%smessage %u: a sender's scratch (queue index "
                          "invalid, length %u); contents not shown\n",
                          indent, message_index, copy.length);
    return;
  }
  absl::StrAppendFormat(out,
                        "%smessage %u: queue index %s, length %u, sent "
                        "monotonic %s, realtime %s\n",
                        indent, message_index,
                        QueueIndexText(copy.queue_index_before, queue_size_),
                        copy.length, FormatMonotonic(copy.monotonic_ns),
                        FormatRealtime(copy.realtime_ns));
  if (copy.length > capacity) {
    absl::StrAppendFormat(out,
                          "%s(length %u exceeds message_data_size_bytes %u: "
                          "corrupt; showing the first bytes of the buffer)\n",
                          note_indent, copy.length, capacity);
  }
  if (copy.length == 0) return;
  const uint64_t hidden =
      std::min(copy.length, capacity) - copy.data.size();
  const std::string more =
      hidden > 0 ? absl::StrFormat(" ... %u more bytes not shown", hidden)
                 : std::string();
  if (options_.hex_data) {
    absl::StrAppendFormat(out, "%sdata (hex):%s\n", note_indent, more);
    AppendHex(copy.data, note_indent + "  ", out);
  } else {
    absl::StrAppendFormat(out, "%sdata: \"", note_indent);
    AppendEscaped(copy.data, out);
    absl::StrAppendFormat(out, "\"%s\n", more);
  }
}

bool Printer::PrintRing(const SlotsSnapshot& slots, std::string* out) {
  // The queue index each slot should hold for the current lap: the window
  // [next - queue_size, next - 1] covers every slot exactly once (before the
  // first send, next counts as 0 and the window is InitializeRegion's lap).
  const uint32_t next_raw = slots.next_queue_index_raw;
  std::optional<QueueIndex> window_start;
  if (QueueIndex::IsLegalRaw(next_raw, queue_size_)) {
    const QueueIndex next = next_raw == QueueIndex::kInvalidValue
                                ? QueueIndex::Zero(queue_size_)
                                : QueueIndex::FromRaw(next_raw, queue_size_);
    window_start = next.DecrementBy(queue_size_);
  }
  absl::StrAppendFormat(out, "ring: %u slots\n", queue_size_);
  // Pages of messages given back every this many slots (dump).
  constexpr uint32_t kReleaseEverySlots = 256;
  for (uint32_t slot = 0; slot < queue_size_; ++slot) {
    const Index entry = slots.ring[slot];
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
    if (entry.valid() &&
        !PrintMessage(entry.message_index(), entry, "    ", out)) {
      return false;
    }
    Flush(out);
    if (options_.release_pages && (slot + 1) % kReleaseEverySlots == 0) {
      internal::ReleaseMessagePages(region_);
    }
  }
  if (options_.release_pages) internal::ReleaseMessagePages(region_);
  return true;
}

void Printer::PrintSenders(const SlotsSnapshot& slots, std::string* out) const {
  absl::StrAppendFormat(out, "senders: %u slots\n", slots.senders.size());
  for (uint32_t s = 0; s < slots.senders.size(); ++s) {
    const internal::SenderFields& sender = slots.senders[s];
    absl::StrAppendFormat(out, "  sender %u: %s\n", s,
                          OwnerText(sender.owner_word));
    AppendOwnerRecord(sender.owner_word, sender.owner, out);
    absl::StrAppendFormat(out, "    scratch_index: %s\n",
                          IndexText(sender.scratch));
    if (sender.scratch_guard_damage_bytes > 0) {
      absl::StrAppendFormat(
          out,
          "    scratch GUARD OVERWRITTEN: a write reached %u bytes past the "
          "payload (its next Send, or the next MakeSender if its owner "
          "died, reports and repairs it)\n",
          sender.scratch_guard_damage_bytes);
    }
    absl::StrAppendFormat(out, "    to_replace: %s%s\n",
                          IndexText(sender.to_replace),
                          sender.to_replace.valid()
                              ? " (a send is in flight, or the sender died "
                                "mid-send)"
                              : "");
    const uint32_t num_pinners = region_.config().num_pinners;
    for (uint32_t j = 0; j < num_pinners; ++j) {
      absl::StrAppendFormat(
          out, "    parked[%u]: %s\n", j,
          IndexText(slots.parked[uint64_t{s} * num_pinners + j]));
    }
    if (sender.swap_take.valid()) {
      absl::StrAppendFormat(out,
                            "    swap_take: %s (parking a pinned scratch, or "
                            "the sender died doing so)\n",
                            IndexText(sender.swap_take));
    }
  }
}

void Printer::PrintPinners(const SlotsSnapshot& slots, std::string* out) const {
  if (slots.pinners.empty()) return;
  absl::StrAppendFormat(out, "pinners: %u slots\n", slots.pinners.size());
  for (uint32_t p = 0; p < slots.pinners.size(); ++p) {
    const internal::PinnerFields& pinner = slots.pinners[p];
    absl::StrAppendFormat(out, "  pinner %u: %s\n", p,
                          OwnerText(pinner.owner_word));
    AppendOwnerRecord(pinner.owner_word, pinner.owner, out);
    absl::StrAppendFormat(out, "    pinned: %s\n",
                          pinner.pinned.valid() ? IndexText(pinner.pinned)
                                                : std::string("none"));
  }
}

void Printer::PrintWatchers(const SlotsSnapshot& slots,
                            std::string* out) const {
  absl::StrAppendFormat(out, "watchers: %u slots\n", slots.watchers.size());
  for (uint32_t w = 0; w < slots.watchers.size(); ++w) {
    const internal::WatcherFields& watcher = slots.watchers[w];
    absl::StrAppendFormat(out, "  watcher %u: %s, pid %d, priority %d\n", w,
                          OwnerText(watcher.owner_word), watcher.pid,
                          watcher.priority);
    AppendOwnerRecord(watcher.owner_word, watcher.owner, out);
  }
}

void Printer::PrintCounts(const SlotsSnapshot& slots, std::string* out) const {
  // Counts only: who holds the slots, no per-slot detail.
  int senders_alive = 0, senders_dead = 0, senders_died = 0;
  for (const internal::SenderFields& sender : slots.senders) {
    if (OwnerDied(sender.owner_word)) ++senders_died;
    if (OwnerTid(sender.owner_word) == 0) continue;
    IsAlive(OwnerTid(sender.owner_word)) ? ++senders_alive : ++senders_dead;
  }
  int watchers_alive = 0, watchers_dead = 0;
  for (const internal::WatcherFields& watcher : slots.watchers) {
    if (OwnerTid(watcher.owner_word) == 0) continue;
    IsAlive(OwnerTid(watcher.owner_word)) ? ++watchers_alive
                                          : ++watchers_dead;
  }
  absl::StrAppendFormat(out,
                        "senders: %d alive, %d owner dead, %d marked "
                        "OWNER_DIED, of %u slots\n",
                        senders_alive, senders_dead, senders_died,
                        slots.senders.size());
  absl::StrAppendFormat(out,
                        "watchers: %d alive, %d owner dead, of %u slots\n",
                        watchers_alive, watchers_dead, slots.watchers.size());
}

bool Printer::PrintOwnershipCheck(std::string* out) const {
  internal::OwnershipReport report;
  if (!internal::CheckOwnership(region_, options_.is_alive, &report)) {
    return false;
  }
  for (const std::string& pending : report.pending) {
    absl::StrAppendFormat(out, "recovery pending: %s\n", pending);
  }
  const std::string rechecked =
      report.transient > 0
          ? absl::StrFormat("; %d anomal%s of a torn pass gone on re-check "
                            "(concurrent sends)",
                            report.transient,
                            report.transient == 1 ? "y" : "ies")
          : std::string();
  if (report.problems.empty()) {
    absl::StrAppendFormat(out,
                          "ownership: ok (each of the %u messages is in "
                          "exactly one ring slot, sender scratch or parked entry%s%s)\n",
                          report.num_messages,
                          report.in_flight + report.pending.size() > 0
                              ? ", or named by a send in flight"
                              : "",
                          rechecked);
    return true;
  }
  absl::StrAppendFormat(out,
                        "ownership: %u problem(s) persisting through %d "
                        "passes (corruption: no send or death explains "
                        "them)%s:\n",
                        report.problems.size(), report.passes, rechecked);
  constexpr size_t kMaxListed = 10;
  for (size_t i = 0; i < report.problems.size() && i < kMaxListed; ++i) {
    absl::StrAppendFormat(out, "  %s\n", report.problems[i]);
  }
  if (report.problems.size() > kMaxListed) {
    absl::StrAppendFormat(out, "  ... and %u more\n",
                          report.problems.size() - kMaxListed);
  }
  return true;
}

absl::Status Printer::PrintAll() {
  SlotsSnapshot slots;
  if (!internal::ReadSlots(region_, &slots)) {
    return absl::FailedPreconditionError(kTruncated);
  }
  std::string out;
  PrintHeader(slots, &out);
  if (options_.summary_only) {
    PrintCounts(slots, &out);
  } else {
    Flush(&out);
    if (!PrintRing(slots, &out)) {
      return absl::FailedPreconditionError(kTruncated);
    }
    PrintSenders(slots, &out);
    PrintPinners(slots, &out);
    PrintWatchers(slots, &out);
  }
  if (!PrintOwnershipCheck(&out)) {
    return absl::FailedPreconditionError(kTruncated);
  }
  Flush(&out);
  return absl::OkStatus();
}

absl::Status Printer::PrintOne(uint32_t raw) {
  if (raw == QueueIndex::kInvalidValue ||
      !QueueIndex::IsLegalRaw(raw, queue_size_)) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "queue index %u is not valid for queue_size %u (valid: 0 to %u)", raw,
        queue_size_,
        QueueIndex::MaxIndex(QueueIndex::kMaxValue, queue_size_) - 1));
  }
  const QueueIndex queue_index = QueueIndex::FromRaw(raw, queue_size_);
  const uint32_t slot = queue_index.Wrapped();
  SlotsSnapshot slots;
  if (!internal::ReadSlots(region_, &slots)) {
    return absl::FailedPreconditionError(kTruncated);
  }
  const Index entry = slots.ring[slot];
  std::string out;
  if (entry.IsPlausible(queue_index)) {
    if (entry.message_index() >= region_.layout().num_messages) {
      return absl::DataLossError(absl::StrFormat(
          "ring slot %u names message %u, but the region has only %u "
          "messages: corrupt",
          slot, entry.message_index(), region_.layout().num_messages));
    }
    absl::StrAppendFormat(&out,
                          "queue index %u: ring slot %u holds message %u\n",
                          raw, slot, entry.message_index());
    if (!PrintMessage(entry.message_index(), entry, "  ", &out)) {
      return absl::FailedPreconditionError(kTruncated);
    }
    Flush(&out);
    return absl::OkStatus();
  }
  // Not there: say whether it is gone or still to come.
  uint32_t next_raw = 0;
  if (!internal::ReadNextQueueIndexRaw(region_, &next_raw)) {
    return absl::FailedPreconditionError(kTruncated);
  }
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
  HeaderFields fields;
  if (!internal::GuardSigbus([&] {
        fields = ReadHeaderFields(static_cast<const RegionHeader*>(memory));
      })) {
    return absl::FailedPreconditionError(
        "file was truncated while reading its header");
  }

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
  config.min_message_age_ns = fields.config.min_message_age_ns;
  config.num_pinners = fields.config.num_pinners;
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

absl::Status PrintRegionTo(const void* memory, size_t size_bytes,
                           const PrintOptions& options,
                           const std::function<void(absl::string_view)>& sink) {
  absl::StatusOr<Layout> layout = ValidateRegionImage(memory, size_bytes);
  if (!layout.ok()) return layout.status();
  Printer printer(memory, *layout, options, sink);
  return options.queue_index.has_value()
             ? printer.PrintOne(*options.queue_index)
             : printer.PrintAll();
}

absl::Status PrintRegion(const void* memory, size_t size_bytes,
                         const PrintOptions& options, std::string* out) {
  std::string text;
  const absl::Status status = PrintRegionTo(
      memory, size_bytes, options,
      [&text](absl::string_view piece) { text.append(piece.data(), piece.size()); });
  if (!status.ok()) return status;
  out->append(text);
  return absl::OkStatus();
}

absl::StatusOr<RegionSummary> SummarizeRegion(
    const void* memory, size_t size_bytes,
    const std::function<bool(pid_t)>& is_alive) {
  absl::StatusOr<Layout> layout = ValidateRegionImage(memory, size_bytes);
  if (!layout.ok()) return layout.status();
  const RegionView region(const_cast<void*>(memory), *layout);
  SlotsSnapshot slots;
  if (!internal::ReadSlots(region, &slots)) {
    return absl::FailedPreconditionError(kTruncated);
  }
  auto alive = [&](pid_t tid) {
    return is_alive ? is_alive(tid) : internal::DefaultIsAlive(tid);
  };
  RegionSummary summary;
  summary.config = layout->config;
  summary.size_bytes = layout->total_size_bytes;
  for (const internal::SenderFields& sender : slots.senders) {
    const pid_t tid = OwnerTid(sender.owner_word);
    if (OwnerDied(sender.owner_word) || (tid != 0 && !alive(tid))) {
      ++summary.senders_dead;
    } else if (tid != 0) {
      ++summary.senders_alive;
    }
  }
  for (const internal::WatcherFields& watcher : slots.watchers) {
    const pid_t tid = OwnerTid(watcher.owner_word);
    if (tid == 0) continue;
    alive(tid) ? ++summary.watchers_alive : ++summary.watchers_dead;
  }
  for (const internal::PinnerFields& pinner : slots.pinners) {
    const pid_t tid = OwnerTid(pinner.owner_word);
    if (pinner.pinned.valid()) ++summary.pins_held;
    if (OwnerDied(pinner.owner_word) || (tid != 0 && !alive(tid))) {
      ++summary.pinners_dead;
    } else if (tid != 0) {
      ++summary.pinners_alive;
    }
  }
  const uint32_t next_raw = slots.next_queue_index_raw;
  const uint32_t queue_size = layout->config.queue_size;
  if (next_raw != QueueIndex::kInvalidValue &&
      QueueIndex::IsLegalRaw(next_raw, queue_size)) {
    const QueueIndex latest =
        QueueIndex::FromRaw(next_raw, queue_size).DecrementBy(1);
    summary.latest_queue_index = latest.index();
    const Index entry = slots.ring[latest.Wrapped()];
    if (region.NamesMessage(entry) && entry.IsPlausible(latest)) {
      MessageCopy copy;
      if (!internal::ReadMessage(region, entry.message_index(), 0, &copy)) {
        return absl::FailedPreconditionError(kTruncated);
      }
      if (!copy.changed() && copy.queue_index_before == latest.index()) {
        summary.latest_realtime_ns = copy.realtime_ns;
      }
    }
  }
  return summary;
}

}  // namespace lockless
