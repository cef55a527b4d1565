#include "testing/internal/region_places.h"

#include <atomic>
#include <cstddef>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "index/atomic_index.h"

namespace lockless::testing::internal {
namespace {

bool Within(const void* address, const void* field, size_t size) {
  const char* a = static_cast<const char*>(address);
  const char* f = static_cast<const char*>(field);
  return a >= f && a < f + size;
}

}  // namespace

Place Locate(const ::lockless::internal::RegionView& view, uint64_t offset) {
  const ::lockless::internal::Layout& layout = view.layout();
  const char* address = static_cast<const char*>(view.base()) + offset;
  const auto* header = view.header();
  if (Within(address, &header->setup_lock, sizeof(header->setup_lock))) {
    return {RegionPlace::kSetupLock};
  }
  if (Within(address, &header->setup_lock_owner,
             sizeof(header->setup_lock_owner))) {
    return {RegionPlace::kSetupLockOwner};
  }
  if (Within(address, &header->next_queue_index,
             sizeof(header->next_queue_index))) {
    return {RegionPlace::kNextQueueIndex};
  }
  if (offset < layout.ring_offset) return {RegionPlace::kOtherHeader};
  if (offset < layout.messages_offset) {
    // The ring's entries are interleaved (Layout::ring_lines).
    const uint32_t slot = ::lockless::internal::RingSlotAtEntry(
        layout, (offset - layout.ring_offset) / sizeof(AtomicIndex));
    if (slot == view.queue_size()) return {RegionPlace::kOtherHeader};
    return {RegionPlace::kRing, static_cast<int>(slot)};
  }
  const uint64_t messages_end =
      layout.messages_offset + layout.num_messages * layout.message_stride_bytes;
  if (offset >= layout.messages_offset && offset < messages_end) {
    const uint64_t m =
        (offset - layout.messages_offset) / layout.message_stride_bytes;
    const int index = static_cast<int>(m);
    const auto* message = view.message(m);
    const auto& h = message->header;
    if (Within(address, &h.queue_index, sizeof(h.queue_index))) {
      return {RegionPlace::kMessageQueueIndex, index};
    }
    if (Within(address, &h.length, sizeof(h.length))) {
      return {RegionPlace::kMessageLength, index};
    }
    if (Within(address, &h.monotonic_sent_time_ns,
               sizeof(h.monotonic_sent_time_ns)) ||
        Within(address, &h.realtime_sent_time_ns,
               sizeof(h.realtime_sent_time_ns))) {
      return {RegionPlace::kMessageTime, index};
    }
    const char* data = reinterpret_cast<const char*>(message->data());
    if (address >= data) {
      return {RegionPlace::kMessageData, index,
              static_cast<uint64_t>(address - data)};
    }
    return {RegionPlace::kOutside};
  }
  if (offset >= layout.watchers_offset && offset < layout.senders_offset) {
    return {RegionPlace::kWatcher,
            static_cast<int>((offset - layout.watchers_offset) /
                             sizeof(::lockless::internal::WatcherSlot))};
  }
  const uint64_t senders_end =
      layout.senders_offset + uint64_t{view.config().num_senders} *
                                  sizeof(::lockless::internal::SenderSlot);
  if (offset >= layout.senders_offset && offset < senders_end) {
    const int s = static_cast<int>((offset - layout.senders_offset) /
                                   sizeof(::lockless::internal::SenderSlot));
    const auto* slot = view.sender(static_cast<uint32_t>(s));
    if (Within(address, &slot->ownership, sizeof(slot->ownership))) {
      return {RegionPlace::kSenderOwnership, s};
    }
    if (Within(address, &slot->owner, sizeof(slot->owner))) {
      return {RegionPlace::kSenderOwner, s};
    }
    if (Within(address, &slot->scratch_index, sizeof(slot->scratch_index))) {
      return {RegionPlace::kSenderScratch, s};
    }
    if (Within(address, &slot->to_replace, sizeof(slot->to_replace))) {
      return {RegionPlace::kSenderToReplace, s};
    }
    if (Within(address, &slot->swap_take, sizeof(slot->swap_take)) ||
        Within(address, &slot->swap_parked_entry,
               sizeof(slot->swap_parked_entry))) {
      return {RegionPlace::kSenderSwap, s};
    }
  }
  const uint32_t num_pinners = view.config().num_pinners;
  const uint64_t pinners_end =
      layout.pinners_offset +
      uint64_t{num_pinners} * sizeof(::lockless::internal::PinnerSlot);
  if (offset >= layout.pinners_offset && offset < pinners_end) {
    const int p = static_cast<int>((offset - layout.pinners_offset) /
                                   sizeof(::lockless::internal::PinnerSlot));
    const auto* slot = view.pinner(static_cast<uint32_t>(p));
    if (Within(address, &slot->ownership, sizeof(slot->ownership))) {
      return {RegionPlace::kPinnerOwnership, p};
    }
    if (Within(address, &slot->owner, sizeof(slot->owner))) {
      return {RegionPlace::kPinnerOwner, p};
    }
    if (Within(address, &slot->pinned, sizeof(slot->pinned))) {
      return {RegionPlace::kPinnerPinned, p};
    }
  }
  const uint64_t parked_end =
      layout.parked_offset + uint64_t{view.config().num_senders} *
                                 num_pinners * sizeof(AtomicIndex);
  if (num_pinners > 0 && offset >= layout.parked_offset &&
      offset < parked_end) {
    const uint64_t k = (offset - layout.parked_offset) / sizeof(AtomicIndex);
    return {RegionPlace::kSenderParked, static_cast<int>(k / num_pinners),
            k % num_pinners};
  }
  return {RegionPlace::kOutside};
}

std::string PlaceName(const Place& p) {
  switch (p.place) {
    case RegionPlace::kSetupLock:
      return "setup_lock";
    case RegionPlace::kSetupLockOwner:
      return "setup_lock_owner";
    case RegionPlace::kNextQueueIndex:
      return "next_queue_index";
    case RegionPlace::kOtherHeader:
      return "header";
    case RegionPlace::kRing:
      return absl::StrCat("ring[", p.index, "]");
    case RegionPlace::kMessageQueueIndex:
      return absl::StrCat("msg[", p.index, "].queue_index");
    case RegionPlace::kMessageLength:
      return absl::StrCat("msg[", p.index, "].length");
    case RegionPlace::kMessageTime:
      return absl::StrCat("msg[", p.index, "].sent_time");
    case RegionPlace::kMessageData:
      return absl::StrCat("msg[", p.index, "].data+", p.byte);
    case RegionPlace::kWatcher:
      return absl::StrCat("watcher[", p.index, "]");
    case RegionPlace::kSenderOwnership:
      return absl::StrCat("sender[", p.index, "].ownership");
    case RegionPlace::kSenderOwner:
      return absl::StrCat("sender[", p.index, "].owner");
    case RegionPlace::kSenderScratch:
      return absl::StrCat("sender[", p.index, "].scratch_index");
    case RegionPlace::kSenderToReplace:
      return absl::StrCat("sender[", p.index, "].to_replace");
    case RegionPlace::kSenderSwap:
      return absl::StrCat("sender[", p.index, "].swap");
    case RegionPlace::kSenderParked:
      return absl::StrCat("sender[", p.index, "].parked[", p.byte, "]");
    case RegionPlace::kPinnerOwnership:
      return absl::StrCat("pinner[", p.index, "].ownership");
    case RegionPlace::kPinnerOwner:
      return absl::StrCat("pinner[", p.index, "].owner");
    case RegionPlace::kPinnerPinned:
      return absl::StrCat("pinner[", p.index, "].pinned");
    case RegionPlace::kOutside:
      break;
  }
  return "outside the layout";
}

std::string PlaceKind(const Place& p) {
  switch (p.place) {
    case RegionPlace::kMessageData:
      return "payload";
    case RegionPlace::kMessageLength:
      return "length";
    case RegionPlace::kMessageTime:
      return "send time";
    case RegionPlace::kMessageQueueIndex:
      return "message queue_index";
    case RegionPlace::kSenderScratch:
      return "scratch_index";
    case RegionPlace::kSenderToReplace:
      return "to_replace";
    case RegionPlace::kRing:
      return "ring CAS";
    case RegionPlace::kNextQueueIndex:
      return "next_queue_index CAS";
    case RegionPlace::kSenderOwnership:
      return "sender mutex";
    case RegionPlace::kSetupLock:
      return "setup lock";
    case RegionPlace::kSenderOwner:
    case RegionPlace::kSetupLockOwner:
    case RegionPlace::kPinnerOwner:
      return "owner record";
    case RegionPlace::kSenderSwap:
      return "swap intent";
    case RegionPlace::kSenderParked:
      return "parked entry";
    case RegionPlace::kPinnerOwnership:
      return "pinner mutex";
    case RegionPlace::kPinnerPinned:
      return "pin";
    default:
      return PlaceName(p);
  }
}

std::string ValueAt(const ::lockless::internal::RegionView& view, const Place& p) {
  switch (p.place) {
    case RegionPlace::kRing:
      return view.ring(static_cast<uint32_t>(p.index))->Load().DebugString();
    case RegionPlace::kSenderScratch:
      return view.sender(static_cast<uint32_t>(p.index))
          ->scratch_index.Load()
          .DebugString();
    case RegionPlace::kSenderToReplace:
      return view.sender(static_cast<uint32_t>(p.index))
          ->to_replace.Load()
          .DebugString();
    case RegionPlace::kSenderSwap:
      return absl::StrCat(
          "take ",
          view.sender(static_cast<uint32_t>(p.index))
              ->swap_take.Load()
              .DebugString(),
          " from parked[",
          view.sender(static_cast<uint32_t>(p.index))
              ->swap_parked_entry.load(std::memory_order_relaxed),
          "]");
    case RegionPlace::kSenderParked:
      return view
          .parked(static_cast<uint32_t>(p.index), static_cast<uint32_t>(p.byte))
          ->Load()
          .DebugString();
    case RegionPlace::kPinnerPinned:
      return view.pinner(static_cast<uint32_t>(p.index))
          ->pinned.Load()
          .DebugString();
    case RegionPlace::kPinnerOwnership:
      return absl::StrFormat(
          "0x%08x",
          view.pinner(static_cast<uint32_t>(p.index))
              ->ownership.RawOwnerWord());
    case RegionPlace::kNextQueueIndex:
      return view.header()
          ->next_queue_index.Load(view.queue_size())
          .DebugString();
    case RegionPlace::kMessageQueueIndex:
      return view.message(static_cast<uint64_t>(p.index))
          ->header.queue_index.Load(view.queue_size())
          .DebugString();
    case RegionPlace::kMessageLength:
      return absl::StrCat(view.message(static_cast<uint64_t>(p.index))
                              ->header.length.load(std::memory_order_relaxed));
    case RegionPlace::kSetupLock:
      return absl::StrFormat("0x%08x",
                             view.header()->setup_lock.RawOwnerWord());
    case RegionPlace::kSenderOwnership:
      return absl::StrFormat(
          "0x%08x",
          view.sender(static_cast<uint32_t>(p.index))
              ->ownership.RawOwnerWord());
    case RegionPlace::kSenderOwner: {
      const auto& owner = view.sender(static_cast<uint32_t>(p.index))->owner;
      return absl::StrFormat(
          "tid %d pid %d start %u", owner.tid.load(std::memory_order_relaxed),
          owner.pid.load(std::memory_order_relaxed),
          owner.start_time_ticks.load(std::memory_order_relaxed));
    }
    default:
      return "";
  }
}

}  // namespace lockless::testing::internal
