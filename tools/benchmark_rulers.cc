#include "tools/benchmark_rulers.h"

#include <sys/mman.h>

#include <atomic>
#include <cerrno>
#include <cstring>

#include "absl/strings/str_format.h"
#include "tools/benchmark_system.h"

namespace lockless {
namespace benchmark_tool {
namespace {

constexpr size_t kCacheLineBytes = 64;

// Spins this long without a message before a side gives up (a dead peer).
constexpr int64_t kSilenceTimeoutNs = 10'000'000'000;

size_t RoundUp(size_t value, size_t multiple) {
  return (value + multiple - 1) / multiple * multiple;
}

// The line: sequence word, then the message's first 8 bytes. `taken` (the
// receiver's count) has a line of its own.
struct FloorLine {
  std::atomic<uint64_t> sequence;
  std::atomic<uint64_t> first_word;
};

struct FloorWords {
  FloorLine* line;
  std::atomic<uint64_t>* taken;
};

FloorWords Floor(unsigned char* base) {
  return {reinterpret_cast<FloorLine*>(base),
          reinterpret_cast<std::atomic<uint64_t>*>(base + kCacheLineBytes)};
}

// Spins until `ready()`, giving up after kSilenceTimeoutNs.
template <typename Ready>
bool SpinUntil(Ready ready) {
  uint64_t spins = 0;
  int64_t start_ns = 0;
  while (!ready()) {
    CpuRelax();
    if ((++spins & 0xffff) == 0) {
      const int64_t now_ns = MonotonicNowNs();
      if (start_ns == 0) {
        start_ns = now_ns;
      } else if (now_ns - start_ns > kSilenceTimeoutNs) {
        return false;
      }
    }
  }
  return true;
}

}  // namespace

SharedMapping::~SharedMapping() {
  if (data_ != nullptr) munmap(data_, bytes_);
}

absl::Status SharedMapping::Map(size_t bytes) {
  void* memory = mmap(nullptr, bytes, PROT_READ | PROT_WRITE,
                      MAP_SHARED | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
  if (memory == MAP_FAILED) {
    return absl::InternalError(
        absl::StrFormat("mmap of %d bytes: %s", bytes, std::strerror(errno)));
  }
  data_ = static_cast<unsigned char*>(memory);
  bytes_ = bytes;
  return absl::OkStatus();
}

// ---------------------------------------------------------------- floor

absl::Status CacheLineFloorTransport::Create(size_t message_bytes) {
  if (message_bytes < 8) {
    return absl::UnavailableError("the floor needs messages of 8+ bytes");
  }
  message_bytes_ = message_bytes;
  // Zero-filled: sequence and taken start at 0.
  return memory_.Map(2 * kCacheLineBytes);
}

bool CacheLineFloorTransport::Send(const void* message) {
  const FloorWords floor = Floor(memory_.data());
  // acquire: pairs with the receiver's release of `taken`, so it has read
  // the previous first word before we overwrite it.
  if (!SpinUntil([&] {
        return floor.taken->load(std::memory_order_acquire) == sent_;
      })) {
    error_ = "receiver silent for 10 s";
    return false;
  }
  uint64_t first_word;
  std::memcpy(&first_word, message, sizeof(first_word));
  // relaxed: published by the release store of the sequence below.
  floor.line->first_word.store(first_word, std::memory_order_relaxed);
  // release: the first word is visible before the new sequence.
  floor.line->sequence.store(++sent_, std::memory_order_release);
  return true;
}

bool CacheLineFloorTransport::Receive(void* message) {
  const FloorWords floor = Floor(memory_.data());
  // acquire: pairs with the sender's release of `sequence`.
  if (!SpinUntil([&] {
        return floor.line->sequence.load(std::memory_order_acquire) !=
               received_;
      })) {
    error_ = "sender silent for 10 s";
    return false;
  }
  // relaxed: ordered after the acquire above; the sender does not write it
  // again before we release `taken`.
  const uint64_t first_word =
      floor.line->first_word.load(std::memory_order_relaxed);
  // release: our read is done before the sender may overwrite it.
  floor.taken->store(++received_, std::memory_order_release);
  unsigned char* const out = static_cast<unsigned char*>(message);
  std::memcpy(out, &first_word, sizeof(first_word));
  if (message_bytes_ >= 2 * sizeof(first_word)) {
    std::memcpy(out + message_bytes_ - sizeof(first_word), &first_word,
                sizeof(first_word));
  }
  return true;
}

std::string CacheLineFloorTransport::settings() const {
  return "one cache line (sequence + the 8-byte stamp), payload not moved";
}

// ---------------------------------------------------------------- SPSC ring

namespace {

// The ring's shared words, each on its own line, then the slots.
struct RingWords {
  std::atomic<uint64_t>* head;  // messages written (sender)
  std::atomic<uint64_t>* tail;  // messages read (receiver)
  unsigned char* slots;
};

RingWords Ring(unsigned char* base) {
  return {reinterpret_cast<std::atomic<uint64_t>*>(base),
          reinterpret_cast<std::atomic<uint64_t>*>(base + kCacheLineBytes),
          base + 2 * kCacheLineBytes};
}

}  // namespace

absl::Status SpscRingTransport::Create(size_t message_bytes) {
  if (slots_ == 0) return absl::InvalidArgumentError("SPSC ring of 0 slots");
  message_bytes_ = message_bytes;
  stride_bytes_ = RoundUp(message_bytes, 8);
  return memory_.Map(2 * kCacheLineBytes + stride_bytes_ * slots_);
}

bool SpscRingTransport::Send(const void* message) {
  const RingWords ring = Ring(memory_.data());
  if (head_ - cached_tail_ == slots_) {
    // acquire: pairs with the receiver's release of `tail`, so it is done
    // copying the slot we are about to reuse.
    if (!SpinUntil([&] {
          cached_tail_ = ring.tail->load(std::memory_order_acquire);
          return head_ - cached_tail_ < slots_;
        })) {
      error_ = "receiver silent for 10 s";
      return false;
    }
  }
  std::memcpy(ring.slots + (head_ % slots_) * stride_bytes_, message,
              message_bytes_);
  // release: the slot's payload is visible before the new head.
  ring.head->store(++head_, std::memory_order_release);
  return true;
}

bool SpscRingTransport::Receive(void* message) {
  const RingWords ring = Ring(memory_.data());
  if (tail_ == cached_head_) {
    // acquire: pairs with the sender's release of `head`.
    if (!SpinUntil([&] {
          cached_head_ = ring.head->load(std::memory_order_acquire);
          return cached_head_ != tail_;
        })) {
      error_ = "sender silent for 10 s";
      return false;
    }
  }
  std::memcpy(message, ring.slots + (tail_ % slots_) * stride_bytes_,
              message_bytes_);
  // release: our copy is done before the sender may reuse the slot.
  ring.tail->store(++tail_, std::memory_order_release);
  return true;
}

std::string SpscRingTransport::settings() const {
  return absl::StrFormat("%d slots, blocks the sender when full", slots_);
}

}  // namespace benchmark_tool
}  // namespace lockless
