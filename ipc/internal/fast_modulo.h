// x % d for a divisor fixed at setup, without a division instruction.
// Internal: the ring slot of a queue index on the Send / Read hot path.
//
// A 32-bit div costs ~25 cycles of latency on x86-64 and every Send needed
// one for its ring slot (index % queue_size). Lemire, Kaser and Kurz ("Faster
// remainder by direct computation", 2019) give an exact remainder for every
// 32-bit x and d > 0 from two multiplications with M = 2^64 / d rounded up.
//
// Why it is exact (every d in [1, 2^32), every x in [0, 2^32)): write
// M * d = 2^64 + e with 0 <= e < d, and x = q * d + r with 0 <= r < d.
// M * x / 2^64 = x / d + x * e / (d * 2^64), and x * e < 2^64, so it lies in
// [q + r/d, q + (r + 1)/d) and its floor is q: the low 64 bits of M * x are
// L = M * x - q * 2^64. Then L * d = 2^64 * (x - q * d) + x * e
// = 2^64 * r + x * e with x * e < 2^64, so (L * d) >> 64 = r. For d = 1,
// M = 2^64 wraps to 0 and Of() returns 0, which is x % 1. So every queue_size
// the configuration allows (1 .. kMaxQueueSize) and every 32-bit queue index
// (the index32 build changes only the ring entry, not QueueIndex) is exact.
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
      : multiplier_(Multiplier(divisor)), divisor_(divisor) {}

  // x % divisor, exactly, for every 32-bit x.
  uint32_t Of(uint32_t x) const {
    const uint64_t low_bits = multiplier_ * x;
    return static_cast<uint32_t>(
        (static_cast<unsigned __int128>(low_bits) * divisor_) >> 64);
  }

  uint32_t divisor() const { return divisor_; }

 private:
  // ceil(2^64 / divisor) mod 2^64. Checks first: a member initializer runs
  // before the constructor body, so a check there would come after the
  // division by zero (SIGFPE instead of the message).
  static uint64_t Multiplier(uint32_t divisor) {
    LOCKLESS_CHECK(divisor > 0, "FastModulo by 0");
    return ~uint64_t{0} / divisor + 1;
  }

  uint64_t multiplier_ = 0;
  uint32_t divisor_ = 0;
};

}  // namespace internal
}  // namespace lockless

#endif  // LOCKLESS_IPC_INTERNAL_FAST_MODULO_H_
