#include "testing/queue_invariants.h"

#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "ipc/internal/queue_layout.h"

namespace lockless {
namespace testing {

absl::Status CheckEveryMessageOwnedOnce(const LocklessQueue& queue) {
  const internal::RegionView& region = queue.region();
  std::vector<int> owners(region.layout().num_messages, 0);
  for (uint32_t i = 0; i < region.queue_size(); ++i) {
    const Index entry = region.ring(i)->Load();
    if (!region.NamesMessage(entry)) {
      return absl::DataLossError(
          absl::StrCat("ring slot ", i, " holds ", entry.DebugString()));
    }
    ++owners[entry.message_index()];
  }
  for (uint32_t s = 0; s < region.config().num_senders; ++s) {
    const internal::SenderSlot* slot = region.sender(s);
    if (slot->to_replace.Load().valid()) {
      return absl::DataLossError(
          absl::StrCat("sender ", s, " still has a replacement in flight: ",
                       slot->to_replace.Load().DebugString()));
    }
    const Index scratch = slot->scratch_index.Load();
    if (!region.NamesMessage(scratch)) {
      return absl::DataLossError(
          absl::StrCat("sender ", s, " scratch ", scratch.DebugString()));
    }
    ++owners[scratch.message_index()];
    if (slot->swap_take.Load().valid()) {
      return absl::DataLossError(
          absl::StrCat("sender ", s, " still has a swap in flight: ",
                       slot->swap_take.Load().DebugString()));
    }
    for (uint32_t j = 0; j < region.config().num_pinners; ++j) {
      const Index parked = region.parked(s, j)->Load();
      if (!region.NamesMessage(parked)) {
        return absl::DataLossError(absl::StrCat(
            "sender ", s, " parked[", j, "] ", parked.DebugString()));
      }
      ++owners[parked.message_index()];
      // A parked message comes back as a scratch in a later swap, which
      // writes no header: its queue index must already be invalid, or a
      // reader of its old index would accept the bytes written next.
      if (region.message(parked.message_index())
              ->header.queue_index.Load(region.queue_size())
              .valid()) {
        return absl::DataLossError(absl::StrCat(
            "sender ", s, " parked[", j, "] ", parked.DebugString(),
            " still carries a queue index in its header"));
      }
    }
  }
  for (size_t m = 0; m < owners.size(); ++m) {
    if (owners[m] != 1) {
      return absl::DataLossError(
          absl::StrFormat("message %u has %d owners", m, owners[m]));
    }
  }
  return absl::OkStatus();
}

}  // namespace testing
}  // namespace lockless
