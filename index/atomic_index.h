// Atomic shared-memory words holding a QueueIndex or an Index.
//
// Both are a single lock-free std::atomic, so they work across processes in
// MAP_SHARED memory and a process killed at any instruction leaves each word
// either fully old or fully new. Zero-filled memory is NOT the invalid value:
// regions are initialised explicitly (ipc/queue_layout.cc).
//
// Memory ordering (the order is in each method's name):
//   RelaxedLoad / RelaxedStore  atomicity only; callers state why that is
//                               enough where they use them.
//   Load                        acquire: sees everything the thread that
//                               published the value (Store / CAS) wrote first.
//   Store                       release: everything this thread wrote before
//                               is visible to an acquiring reader of the value.
//   CompareAndExchangeStrong    acq_rel on success (publishes our prior writes
//                               and sees the replaced value's publisher's),
//                               acquire on failure (the value we retry with
//                               must come with its publisher's writes).
//   AtomicQueueIndex::SeqCstLoad and SeqCstCompareAndExchangeStrong
//                               seq_cst: for next_queue_index, whose writes
//                               take part in the wake-up handshake (a
//                               store->load pattern, see
//                               ipc/lockless_queue.h); on x86 they compile to
//                               the same instructions as acquire / acq_rel.
//
// Thread-safety: every method may be called from any thread or process.
// Real-time safety: lock-free, no syscalls, no allocation.
#ifndef LOCKLESS_INDEX_ATOMIC_INDEX_H_
#define LOCKLESS_INDEX_ATOMIC_INDEX_H_

#include <atomic>
#include <cstdint>

#include "index/index.h"
#include "index/queue_index.h"

namespace lockless {

template <typename Word>
class BasicAtomicIndex {
 public:
  using Value = BasicIndex<Word>;

  Value RelaxedLoad() const {
    // relaxed: documented contract; callers justify.
    return Value::FromRaw(word_.load(std::memory_order_relaxed));
  }
  Value Load() const {
    // acquire: pairs with the release in Store / CompareAndExchangeStrong.
    return Value::FromRaw(word_.load(std::memory_order_acquire));
  }
  void RelaxedStore(Value value) {
    // relaxed: documented contract; callers justify.
    word_.store(value.raw(), std::memory_order_relaxed);
  }
  void Store(Value value) {
    // release: pairs with the acquire in Load.
    word_.store(value.raw(), std::memory_order_release);
  }
  // Release-stores Invalid().
  void Invalidate() { Store(Value::Invalid()); }

  // Replaces `expected` by `desired`. On failure `*expected` holds the
  // current value.
  bool CompareAndExchangeStrong(Value* expected, Value desired) {
    Word raw = expected->raw();
    // acq_rel / acquire: see the class comment.
    const bool ok = word_.compare_exchange_strong(raw, desired.raw(),
                                                  std::memory_order_acq_rel,
                                                  std::memory_order_acquire);
    *expected = Value::FromRaw(raw);
    return ok;
  }

 private:
  std::atomic<Word> word_;

  static_assert(std::atomic<Word>::is_always_lock_free,
                "Index atomics must be lock-free to work in shared memory");
};

using AtomicIndex = BasicAtomicIndex<Index::WordType>;
static_assert(std::is_same_v<AtomicIndex::Value, Index>);

class AtomicQueueIndex {
 public:
  QueueIndex RelaxedLoad(uint32_t queue_size) const {
    // relaxed: documented contract; callers justify.
    return QueueIndex::FromRaw(word_.load(std::memory_order_relaxed),
                               queue_size);
  }
  QueueIndex Load(uint32_t queue_size) const {
    // acquire: pairs with the release in Store / CompareAndExchangeStrong.
    return QueueIndex::FromRaw(word_.load(std::memory_order_acquire),
                               queue_size);
  }
  // The raw word, for validating or printing memory another process wrote.
  uint32_t RelaxedLoadRaw() const {
    // relaxed: inspection only; nothing else is read based on it.
    return word_.load(std::memory_order_relaxed);
  }
  void RelaxedStore(QueueIndex value) {
    // relaxed: documented contract; callers justify.
    word_.store(value.index(), std::memory_order_relaxed);
  }
  void Store(QueueIndex value) {
    // release: pairs with the acquire in Load.
    word_.store(value.index(), std::memory_order_release);
  }
  void Invalidate() { Store(QueueIndex::Invalid()); }

  // seq_cst load: in the single total order of seq_cst operations, so that a
  // store->load (Dekker) handshake with another word can be argued.
  QueueIndex SeqCstLoad(uint32_t queue_size) const {
    // seq_cst: documented contract; callers state the pairing.
    return QueueIndex::FromRaw(word_.load(std::memory_order_seq_cst),
                               queue_size);
  }

  // Like CompareAndExchangeStrong, but seq_cst on success and failure (the
  // failure case is then a seq_cst load of the current value).
  bool SeqCstCompareAndExchangeStrong(QueueIndex* expected,
                                      QueueIndex desired) {
    uint32_t raw = expected->index();
    // seq_cst: documented contract; callers state the pairing.
    const bool ok = word_.compare_exchange_strong(raw, desired.index(),
                                                  std::memory_order_seq_cst,
                                                  std::memory_order_seq_cst);
    *expected = QueueIndex::FromRaw(raw, desired.queue_size());
    return ok;
  }

  // The 32-bit word itself, for futex wait/wake on it (never for writing).
  std::atomic<uint32_t>* futex_word() { return &word_; }

  // Replaces `expected` by `desired`. On failure `*expected` holds the
  // current value. Both must belong to the same queue.
  bool CompareAndExchangeStrong(QueueIndex* expected, QueueIndex desired) {
    uint32_t raw = expected->index();
    // acq_rel / acquire: see the file comment.
    const bool ok = word_.compare_exchange_strong(raw, desired.index(),
                                                  std::memory_order_acq_rel,
                                                  std::memory_order_acquire);
    *expected = QueueIndex::FromRaw(raw, desired.queue_size());
    return ok;
  }

 private:
  std::atomic<uint32_t> word_;

  static_assert(std::atomic<uint32_t>::is_always_lock_free,
                "QueueIndex atomics must be lock-free to work in shared "
                "memory");
};

static_assert(sizeof(AtomicQueueIndex) == 4);
static_assert(sizeof(AtomicIndex) == sizeof(Index));

}  // namespace lockless

#endif  // LOCKLESS_INDEX_ATOMIC_INDEX_H_
