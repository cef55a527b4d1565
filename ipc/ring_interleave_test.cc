// The ring's slot interleaving (Layout::ring_lines): every slot has its own
// entry inside the ring, the inverse finds it again, and neighbouring slots
// sit on different cache lines once the ring spans enough lines.
#include <cstdint>
#include <set>
#include <vector>

#include "gtest/gtest.h"
#include "ipc/internal/queue_layout.h"
#include "ipc/queue_config.h"

namespace lockless {
namespace internal {
namespace {

Layout LayoutFor(uint32_t queue_size) {
  QueueConfig config;
  config.num_watchers = 1;
  config.num_senders = 1;
  config.queue_size = queue_size;
  config.message_data_size_bytes = 8;
  absl::StatusOr<Layout> layout = ComputeLayout(config);
  EXPECT_TRUE(layout.ok()) << layout.status();
  return *layout;
}

TEST(RingInterleaveTest, EverySlotHasItsOwnEntryInsideTheRing) {
  for (uint32_t queue_size :
       {1u, 2u, 7u, 8u, 9u, 15u, 16u, 17u, 63u, 64u, 65u, 100u, 1000u, 1024u,
        4097u}) {
    SCOPED_TRACE(queue_size);
    const Layout layout = LayoutFor(queue_size);
    const uint64_t entries = uint64_t{layout.ring_lines} * kRingSlotsPerLine;
    ASSERT_GE(entries, queue_size);
    ASSERT_LT(entries, uint64_t{queue_size} + kRingSlotsPerLine);
    // The ring ends where the messages begin.
    EXPECT_EQ(layout.ring_offset + entries * sizeof(AtomicIndex),
              layout.messages_offset);
    std::set<uint64_t> seen;
    for (uint32_t slot = 0; slot < queue_size; ++slot) {
      const uint64_t entry = RingEntryOf(layout, slot);
      ASSERT_LT(entry, entries) << slot;
      ASSERT_TRUE(seen.insert(entry).second) << "slot " << slot;
      EXPECT_EQ(RingSlotAtEntry(layout, entry), slot);
    }
    // The entries no slot maps to are reported as unused.
    for (uint64_t entry = 0; entry < entries; ++entry) {
      if (seen.count(entry) == 0) {
        EXPECT_EQ(RingSlotAtEntry(layout, entry), queue_size) << entry;
      }
    }
  }
}

TEST(RingInterleaveTest, NeighbouringSlotsSitOnDifferentCacheLines) {
  for (uint32_t queue_size : {64u, 100u, 1024u, 4097u}) {
    SCOPED_TRACE(queue_size);
    const Layout layout = LayoutFor(queue_size);
    if (layout.ring_lines < kRingSlotsPerLine) continue;  // 4-byte entries
    for (uint32_t slot = 0; slot < queue_size; ++slot) {
      const uint32_t next = slot + 1 == queue_size ? 0 : slot + 1;
      const uint64_t line =
          RingEntryOf(layout, slot) * sizeof(AtomicIndex) / kCacheLineBytes;
      const uint64_t next_line =
          RingEntryOf(layout, next) * sizeof(AtomicIndex) / kCacheLineBytes;
      EXPECT_NE(line, next_line) << "slots " << slot << " and " << next;
    }
  }
}

}  // namespace
}  // namespace internal
}  // namespace lockless
