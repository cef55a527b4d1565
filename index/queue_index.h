// QueueIndex: the running count of messages sent on a channel, modulo a wrap
// point chosen so that "ring slot = index mod queue_size" stays continuous.
//
// Encoding (one 32-bit word in shared memory, see AtomicQueueIndex):
//
//   value in [0, MaxIndex(kMaxValue, queue_size))   a valid queue index
//   kInvalidValue = 0xffffffff                       invalid / empty
//
// Why the wrap point is a multiple of queue_size: the ring slot of index i is
// i % queue_size. If the counter wrapped at 2^32 and queue_size were not a
// power of two, the slot sequence would jump at the wrap (2^32 - 1 maps to
// slot (2^32 - 1) % queue_size, and 0 maps to slot 0, which is not the next
// slot). Wrapping at M = largest multiple of queue_size <= 0xffffffff keeps
// (M - 1) % queue_size == queue_size - 1, so the next index (0) lands in slot
// 0: the ring is continuous across the wrap. Because M <= 0xffffffff, the
// all-ones value is never a valid index and can mean "invalid".
//
// All arithmetic is modulo M. A QueueIndex object (not the shared word) also
// carries queue_size so callers cannot mix indices of different channels.
//
// Thread-safety: QueueIndex is a value type; use AtomicQueueIndex for shared
// words. Real-time safety: every call is constant time, no syscalls, no
// allocation (except DebugString).
#ifndef LOCKLESS_INDEX_QUEUE_INDEX_H_
#define LOCKLESS_INDEX_QUEUE_INDEX_H_

#include <cstdint>
#include <string>

#include "absl/strings/str_format.h"
#include "index/internal/check.h"

namespace lockless {

class QueueIndex {
 public:
  // The largest raw value a 32-bit word can hold; the invalid marker.
  static constexpr uint32_t kMaxValue = 0xffffffffu;
  static constexpr uint32_t kInvalidValue = 0xffffffffu;

  // An invalid index (queue_size 0). Compare with valid(), never use it in
  // arithmetic.
  constexpr QueueIndex() = default;

  // The largest multiple of queue_size that is <= max_value: the counter
  // wraps there. Requires 0 < queue_size <= max_value.
  static constexpr uint32_t MaxIndex(uint32_t max_value, uint32_t queue_size) {
    return max_value - max_value % queue_size;
  }

  static constexpr QueueIndex Zero(uint32_t queue_size) {
    return QueueIndex(0, queue_size);
  }

  static constexpr QueueIndex Invalid() { return QueueIndex(); }

  // Rebuilds an index from its raw shared-memory value (kInvalidValue or
  // below MaxIndex(kMaxValue, queue_size) when the memory is sound).
  static QueueIndex FromRaw(uint32_t value, uint32_t queue_size) {
    // Not checked against the wrap point: the value may come from memory
    // another process corrupted, and that must never abort us. Validate with
    // IsLegalRaw where it matters.
    if (value == kInvalidValue) return Invalid();
    return QueueIndex(value, queue_size);
  }

  // True when `value` is a legal raw value for a queue of `queue_size`
  // (either invalid or below the wrap point). For validating shared memory.
  static constexpr bool IsLegalRaw(uint32_t value, uint32_t queue_size) {
    return value == kInvalidValue || value < MaxIndex(kMaxValue, queue_size);
  }

  constexpr bool valid() const { return index_ != kInvalidValue; }
  constexpr uint32_t index() const { return index_; }
  constexpr uint32_t queue_size() const { return queue_size_; }

  // Where this counter wraps back to zero.
  constexpr uint32_t max_index() const {
    return MaxIndex(kMaxValue, queue_size_);
  }

  // The ring slot this index lives in.
  uint32_t Wrapped() const {
    LOCKLESS_DCHECK(valid());
    return index_ % queue_size_;
  }

  QueueIndex Increment() const { return IncrementBy(1); }

  // index + amount (mod max_index()). Requires amount <= max_index().
  QueueIndex IncrementBy(uint32_t amount) const {
    LOCKLESS_DCHECK(valid());
    LOCKLESS_DCHECK(amount <= max_index());
    // 64-bit sum: index_ + amount can exceed 2^32 when both are large.
    uint64_t sum = uint64_t{index_} + amount;
    if (sum >= max_index()) sum -= max_index();
    return QueueIndex(static_cast<uint32_t>(sum), queue_size_);
  }

  // index - amount (mod max_index()). Requires amount <= max_index().
  QueueIndex DecrementBy(uint32_t amount) const {
    LOCKLESS_DCHECK(valid());
    LOCKLESS_DCHECK(amount <= max_index());
    // Borrow from the wrap point instead of from 2^32.
    const uint32_t result = index_ >= amount
                                ? index_ - amount
                                : index_ + (max_index() - amount);
    return QueueIndex(result, queue_size_);
  }

  // How many increments take `earlier` to this index (mod max_index()).
  // Both must be valid and of the same queue.
  uint32_t DistanceFrom(QueueIndex earlier) const {
    LOCKLESS_DCHECK(valid() && earlier.valid());
    LOCKLESS_DCHECK(queue_size_ == earlier.queue_size_);
    return index_ >= earlier.index_ ? index_ - earlier.index_
                                    : index_ + (max_index() - earlier.index_);
  }

  constexpr bool operator==(const QueueIndex& other) const {
    return index_ == other.index_;
  }
  constexpr bool operator!=(const QueueIndex& other) const {
    return index_ != other.index_;
  }

  std::string DebugString() const {
    if (!valid()) return "QueueIndex(invalid)";
    return absl::StrFormat("QueueIndex(%u, slot %u of %u)", index_,
                           index_ % queue_size_, queue_size_);
  }

 private:
  constexpr QueueIndex(uint32_t index, uint32_t queue_size)
      : index_(index), queue_size_(queue_size) {}

  uint32_t index_ = kInvalidValue;
  uint32_t queue_size_ = 0;
};

}  // namespace lockless

#endif  // LOCKLESS_INDEX_QUEUE_INDEX_H_
