// Index: what one ring slot of a channel stores. It names the message that
// sits in the slot and the queue index it was published for.
//
// Packed word (one lock-free atomic in shared memory, see AtomicIndex):
//
//   64-bit entry (default where 64-bit atomics are lock-free):
//     bits  0..31  the full QueueIndex the message was published for
//     bits 32..63  message number (0 .. 2^32 - 2)
//   32-bit entry (LOCKLESS_32BIT_INDEX, or no lock-free 64-bit atomics):
//     bits  0..15  the low 16 bits of the QueueIndex
//     bits 16..31  message number (0 .. 2^16 - 2)
//
//   all ones      invalid (no message). Message numbers stop one short of all
//                 ones, so no valid packing can equal the invalid word.
//
// Storing (part of) the queue index next to the message number gives ABA
// protection: a sender about to replace a slot checks that it still holds the
// message of exactly one lap earlier (IsPlausible), so a slot that was
// recycled in between is never overwritten by a stale compare-and-exchange.
// With the 32-bit entry only 16 queue-index bits are kept: two queue indices
// alias when they differ by a multiple of 2^16 modulo the wrap point. A sender
// preempted between loading next_queue_index and the ring slot while the slot
// moved on by such an amount could be fooled (the classic bounded-ABA risk).
// One aliasing is not a matter of preemption: the previous lap of an index
// just after the wrap point aliases it when (MaxIndex - queue_size) is a
// multiple of 2^16, so ValidateConfig rejects those queue sizes.
//
// Thread-safety: a value type. Real-time safety: constant time, no syscalls,
// no allocation (except DebugString).
#ifndef LOCKLESS_INDEX_INDEX_H_
#define LOCKLESS_INDEX_INDEX_H_

#include <atomic>
#include <cstdint>
#include <string>
#include <type_traits>

#include "absl/strings/str_format.h"
#include "index/internal/check.h"
#include "index/queue_index.h"

namespace lockless {

// `Word` is uint64_t (32 + 32 bits) or uint32_t (16 + 16 bits).
template <typename Word>
class BasicIndex {
  static_assert(std::is_same_v<Word, uint64_t> ||
                    std::is_same_v<Word, uint32_t>,
                "Index words are 32 or 64 bits");

 public:
  using WordType = Word;
  static constexpr int kHalfBits = sizeof(Word) * 4;
  // Mask of the queue-index bits kept in the word.
  static constexpr uint32_t kQueueIndexMask =
      static_cast<uint32_t>((Word{1} << kHalfBits) - 1);
  static constexpr Word kInvalidRaw = ~Word{0};

  // Invalid.
  constexpr BasicIndex() = default;

  // Packs `queue_index` (its low kHalfBits bits) with `message_index`.
  // Requires message_index < MaxMessages().
  BasicIndex(QueueIndex queue_index, uint32_t message_index)
      : BasicIndex(queue_index.index(), message_index) {}
  BasicIndex(uint32_t queue_index, uint32_t message_index)
      : raw_((Word{queue_index} & kQueueIndexMask) |
             (Word{message_index} << kHalfBits)) {
    LOCKLESS_DCHECK(message_index < MaxMessages());
  }

  static constexpr BasicIndex Invalid() { return BasicIndex(); }
  static constexpr BasicIndex FromRaw(Word raw) {
    return BasicIndex(RawTag{}, raw);
  }

  // How many distinct messages a channel can have: the all-ones message
  // number is reserved so that no valid Index equals Invalid().
  static constexpr uint32_t MaxMessages() {
    return static_cast<uint32_t>((Word{1} << kHalfBits) - 1);
  }

  constexpr bool valid() const { return raw_ != kInvalidRaw; }
  constexpr Word raw() const { return raw_; }

  // The queue-index bits stored (all 32 bits, or the low 16).
  constexpr uint32_t queue_index() const {
    return static_cast<uint32_t>(raw_ & kQueueIndexMask);
  }
  constexpr uint32_t message_index() const {
    return static_cast<uint32_t>(raw_ >> kHalfBits);
  }

  // True if this entry is valid and was written for `queue_index` (as far as
  // the stored bits can tell). An invalid `expected` is never plausible.
  constexpr bool IsPlausible(QueueIndex expected) const {
    return valid() && expected.valid() &&
           queue_index() == (expected.index() & kQueueIndexMask);
  }

  constexpr bool operator==(const BasicIndex& other) const {
    return raw_ == other.raw_;
  }
  constexpr bool operator!=(const BasicIndex& other) const {
    return raw_ != other.raw_;
  }

  std::string DebugString() const {
    if (!valid()) return "Index(invalid)";
    return absl::StrFormat("Index(queue_index %u, message %u)", queue_index(),
                           message_index());
  }

 private:
  // A distinct tag type, so BasicIndex(queue_index, 0) can never pick this.
  struct RawTag {};
  constexpr BasicIndex(RawTag, Word raw) : raw_(raw) {}

  Word raw_ = kInvalidRaw;
};

// The width used by the library, chosen at build time.
#if defined(LOCKLESS_32BIT_INDEX) || ATOMIC_LLONG_LOCK_FREE != 2
using Index = BasicIndex<uint32_t>;
#else
using Index = BasicIndex<uint64_t>;
#endif

}  // namespace lockless

#endif  // LOCKLESS_INDEX_INDEX_H_
