// x % d for a divisor fixed at setup, without a division instruction.
// Internal: the ring slot of a queue index on the Send / Read hot path.
//
// A 32-bit div costs ~25 cycles of latency on x86-64 and every Send needed
// one for its ring slot (index % queue_size). Lemire, Kaser and Kurz ("Faster
// remainder by direct computation", 2019) give an exact remainder for every
// 32-bit x and d > 0 from two multiplications with M = 2^64 / d rounded up.
//
// Thread-safety: a value; const methods are safe from any thread.
// RT-safe: no syscall, no allocation.
#ifndef LOCKLESS_IPC_INTERNAL_FAST_MODULO_H_
#define LOCKLESS_IPC_INTERNAL_FAST_MODULO_H_

#include <cstdint>

#include "index/internal/check.h"

namespace lockless {
namespace internal {

class FastModulo {
 public:
  FastModulo() = default;
  // Requires divisor > 0.
  explicit FastModulo(uint32_t divisor)
      : multiplier_(~uint64_t{0} / divisor + 1), divisor_(divisor) {
    LOCKLESS_CHECK(divisor > 0, "FastModulo by 0");
  }

  // x % divisor, exactly, for every 32-bit x.
  uint32_t Of(uint32_t x) const {
    const uint64_t low_bits = multiplier_ * x;
    return static_cast<uint32_t>(
        (static_cast<unsigned __int128>(low_bits) * divisor_) >> 64);
  }

  uint32_t divisor() const { return divisor_; }

 private:
  uint64_t multiplier_ = 0;
  uint32_t divisor_ = 0;
};

}  // namespace internal
}  // namespace lockless

#endif  // LOCKLESS_IPC_INTERNAL_FAST_MODULO_H_
