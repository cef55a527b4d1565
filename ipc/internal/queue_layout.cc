#include "ipc/internal/queue_layout.h"

#include <cstring>

#include "absl/strings/str_format.h"
#include "ipc/internal/racy_copy.h"

namespace lockless {
namespace internal {
namespace {

constexpr uint64_t RoundUp(uint64_t value, uint64_t alignment) {
  return (value + alignment - 1) / alignment * alignment;
}

}  // namespace

uint32_t RingSlotAtEntry(const Layout& layout, uint64_t entry) {
  const uint64_t slot =
      uint64_t{entry % layout.ring_lines} * kRingSlotsPerLine +
      entry / layout.ring_lines;
  return slot < layout.config.queue_size ? static_cast<uint32_t>(slot)
                                         : layout.config.queue_size;
}

absl::StatusOr<Layout> ComputeLayout(const QueueConfig& config) {
  if (absl::Status status = ValidateConfig(config); !status.ok()) {
    return status;
  }
  // No overflow below: ValidateConfig bounds queue_size + num_senders by
  // 2^32 and the payload by 2^30, so every product stays under 2^63.
  Layout layout;
  layout.config = config;
  layout.num_messages =
      uint64_t{config.queue_size} +
      uint64_t{config.num_senders} * (1 + uint64_t{config.num_pinners});
  layout.ring_offset = RoundUp(sizeof(RegionHeader), kCacheLineBytes);
  layout.ring_lines = static_cast<uint32_t>(
      RoundUp(config.queue_size, kRingSlotsPerLine) / kRingSlotsPerLine);
  layout.messages_offset =
      layout.ring_offset + uint64_t{layout.ring_lines} * kCacheLineBytes;
  // Header, payload and at least the guard word, rounded to cache lines; the
  // rest of the last line is guard too (Message). The stride grows by a line
  // only when the payload leaves less than kGuardBytes of its last line.
  layout.guard_offset_bytes = sizeof(Message) + config.message_data_size_bytes;
  layout.message_stride_bytes =
      RoundUp(layout.guard_offset_bytes + kGuardBytes, kCacheLineBytes);
  layout.guard_size_bytes =
      layout.message_stride_bytes - layout.guard_offset_bytes;
  layout.watchers_offset =
      layout.messages_offset + layout.num_messages * layout.message_stride_bytes;
  layout.senders_offset =
      layout.watchers_offset + uint64_t{config.num_watchers} *
                                   sizeof(WatcherSlot);
  layout.pinners_offset =
      layout.senders_offset + uint64_t{config.num_senders} * sizeof(SenderSlot);
  layout.parked_offset =
      layout.pinners_offset + uint64_t{config.num_pinners} * sizeof(PinnerSlot);
  layout.total_size_bytes = RoundUp(
      layout.parked_offset + uint64_t{config.num_senders} *
                                 config.num_pinners * sizeof(AtomicIndex),
      kCacheLineBytes);
  if (layout.total_size_bytes > kMaxRegionSizeBytes) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "configuration %s needs %u bytes, more than the maximum region size "
        "%u",
        config.DebugString(), layout.total_size_bytes, kMaxRegionSizeBytes));
  }
  return layout;
}

namespace {

// relaxed: nobody reads the region before `initialized` (see below).
void ClearOwnerRecord(OwnerRecord& record) {
  record.tid.store(0, std::memory_order_relaxed);
  record.pid.store(0, std::memory_order_relaxed);
  record.pid_namespace.store(0, std::memory_order_relaxed);
  record.start_time_ticks.store(0, std::memory_order_relaxed);
}

}  // namespace

void WriteGuard(const RegionView& region, uint64_t message_index) {
  unsigned char* const guard =
      reinterpret_cast<unsigned char*>(region.message(message_index)) +
      region.layout().guard_offset_bytes;
  // Padding first, the guard word last (see the header).
  for (uint64_t i = kGuardBytes; i < region.layout().guard_size_bytes; ++i) {
    guard[i] = GuardByte(message_index, i);
  }
  const uint64_t word = GuardWord(message_index);
  std::memcpy(guard, &word, sizeof(word));
}

bool GuardIntact(const RegionView& region, uint64_t message_index) {
  uint64_t word;
  RacyCopy(&word,
           reinterpret_cast<const unsigned char*>(
               region.message(message_index)) +
               region.layout().guard_offset_bytes,
           sizeof(word));
  return word == GuardWord(message_index);
}

uint64_t GuardDamageBytes(const RegionView& region, uint64_t message_index) {
  const uint64_t size = region.layout().guard_size_bytes;
  unsigned char copy[kCacheLineBytes + kGuardBytes];
  static_assert(sizeof(copy) >= kCacheLineBytes - 1 + kGuardBytes);
  RacyCopy(copy,
           reinterpret_cast<const unsigned char*>(
               region.message(message_index)) +
               region.layout().guard_offset_bytes,
           size);
  uint64_t reached = 0;
  for (uint64_t i = 0; i < size; ++i) {
    if (copy[i] != GuardByte(message_index, i)) reached = i + 1;
  }
  return reached;
}

void InitializeRegion(const RegionView& region, uint32_t first_queue_index) {
  RegionHeader* const header = region.header();
  const QueueConfig& config = region.config();
  const uint32_t queue_size = config.queue_size;

  // Nobody reads the region until `initialized` is stored (release, below),
  // so relaxed stores suffice for everything before it. A death anywhere in
  // here leaves `initialized` at 0 and `initializing` set (or a fresh-looking
  // region, before this first store), and the next opener starts over.
  header->initializing = kInitializingValue;
  const QueueIndex first = QueueIndex::FromRaw(first_queue_index, queue_size);
  for (uint32_t lap_offset = 0; lap_offset < queue_size; ++lap_offset) {
    const QueueIndex queue_index = first.IncrementBy(lap_offset);
    const uint32_t slot = queue_index.Wrapped();
    // Slot `slot` holds message `slot`, as if published one lap earlier, so
    // the first lap's senders find exactly what they expect to replace.
    region.ring(slot)->RelaxedStore(
        Index(queue_index.DecrementBy(queue_size), slot));
  }
  for (uint64_t m = 0; m < region.layout().num_messages; ++m) {
    MessageHeader& message = region.message(m)->header;
    message.queue_index.RelaxedStore(QueueIndex::Invalid());
    message.length.store(0, std::memory_order_relaxed);
    message.monotonic_sent_time_ns.store(0, std::memory_order_relaxed);
    message.realtime_sent_time_ns.store(0, std::memory_order_relaxed);
    WriteGuard(region, m);
  }
  for (uint32_t w = 0; w < config.num_watchers; ++w) {
    WatcherSlot* const watcher = region.watcher(w);
    std::memset(static_cast<void*>(&watcher->ownership), 0,
                sizeof(watcher->ownership));
    ClearOwnerRecord(watcher->owner);
    watcher->pid.store(0, std::memory_order_relaxed);
    watcher->priority.store(0, std::memory_order_relaxed);
    watcher->pid_namespace.store(0, std::memory_order_relaxed);
    watcher->kind.store(kSignalWatcher, std::memory_order_relaxed);
    watcher->pending.store(0, std::memory_order_relaxed);
  }
  for (uint32_t s = 0; s < config.num_senders; ++s) {
    SenderSlot* const sender = region.sender(s);
    std::memset(static_cast<void*>(&sender->ownership), 0,
                sizeof(sender->ownership));
    ClearOwnerRecord(sender->owner);
    // The queue-index bits of a scratch entry carry no meaning.
    sender->scratch_index.RelaxedStore(
        Index(QueueIndex::kInvalidValue, queue_size + s));
    sender->to_replace.RelaxedStore(Index::Invalid());
    sender->swap_take.RelaxedStore(Index::Invalid());
    sender->swap_parked_entry.store(0, std::memory_order_relaxed);
    for (uint32_t j = 0; j < config.num_pinners; ++j) {
      region.parked(s, j)->RelaxedStore(
          Index(QueueIndex::kInvalidValue,
                queue_size + config.num_senders + s * config.num_pinners + j));
    }
  }
  for (uint32_t p = 0; p < config.num_pinners; ++p) {
    PinnerSlot* const pinner = region.pinner(p);
    std::memset(static_cast<void*>(&pinner->ownership), 0,
                sizeof(pinner->ownership));
    ClearOwnerRecord(pinner->owner);
    pinner->pinned.RelaxedStore(Index::Invalid());
  }

  header->magic = kRegionMagic;
  header->layout_version = kLayoutVersion;
  header->total_size_bytes = region.layout().total_size_bytes;
  header->config = StoredConfig{config.num_watchers, config.num_senders,
                                config.queue_size,
                                static_cast<uint32_t>(sizeof(Index)),
                                config.message_data_size_bytes,
                                config.min_message_age_ns,
                                config.num_pinners,
                                /*reserved0=*/0};
  header->next_queue_index.RelaxedStore(
      first_queue_index == 0 ? QueueIndex::Invalid() : first);
  header->reserved1 = 0;
  header->first_queue_index = first_queue_index;
  header->waiter_bits.store(0, std::memory_order_relaxed);
  // release: pairs with the acquire load of `initialized` by every opener,
  // which then sees all of the above.
  header->initialized.store(kInitializedValue, std::memory_order_release);
  // Only after `initialized`: a death between the two leaves an initialised
  // region (the marker is then never read); a death before leaves the marker
  // set, which is how the next opener knows initialisation died mid-way.
  // Nobody else reads it, so the write after publication is harmless.
  header->initializing = 0;
}

std::vector<std::atomic<uint32_t>*> RobustFutexWords(const RegionView& region) {
  std::vector<std::atomic<uint32_t>*> words;
  words.push_back(&region.header()->setup_lock.futex);
  for (uint32_t w = 0; w < region.config().num_watchers; ++w) {
    words.push_back(&region.watcher(w)->ownership.futex);
  }
  for (uint32_t s = 0; s < region.config().num_senders; ++s) {
    words.push_back(&region.sender(s)->ownership.futex);
  }
  for (uint32_t p = 0; p < region.config().num_pinners; ++p) {
    words.push_back(&region.pinner(p)->ownership.futex);
  }
  return words;
}

}  // namespace internal
}  // namespace lockless
