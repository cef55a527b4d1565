#include "ipc/internal/fast_modulo.h"

#include <cstdint>
#include <random>
#include <vector>

#include "gtest/gtest.h"

namespace lockless {
namespace internal {
namespace {

// Divisors that matter: tiny, powers of two and their neighbours, ring sizes
// users pick, and the extremes of 32 bits.
std::vector<uint32_t> Divisors() {
  std::vector<uint32_t> divisors = {1, 2, 3, 5, 7, 10, 100, 1000, 1023, 1024,
                                    1025, 65535, 65536, 65537, 1000003,
                                    0x7fffffffu, 0x80000000u, 0xfffffffeu,
                                    0xffffffffu};
  for (int bit = 0; bit < 32; ++bit) {
    const uint32_t power = uint32_t{1} << bit;
    divisors.push_back(power);
    if (power > 1) divisors.push_back(power - 1);
    divisors.push_back(power + 1);
  }
  return divisors;
}

// Dividends around every multiple boundary near 0 and the top of 32 bits,
// plus seeded random ones.
TEST(FastModuloTest, MatchesTheRemainderOperator) {
  std::mt19937 random(12345);
  for (const uint32_t divisor : Divisors()) {
    const FastModulo modulo(divisor);
    EXPECT_EQ(modulo.divisor(), divisor);
    std::vector<uint32_t> dividends;
    for (uint32_t x = 0; x < 3000; ++x) {
      dividends.push_back(x);
      dividends.push_back(0xffffffffu - x);
    }
    for (uint32_t k = 1; k < 100; ++k) {
      const uint64_t multiple = uint64_t{divisor} * k;
      if (multiple > 0xffffffffu) break;
      for (int delta = -1; delta <= 1; ++delta) {
        dividends.push_back(static_cast<uint32_t>(multiple + delta));
      }
    }
    // The last multiples below 2^32: the queue index wrap point
    // (QueueIndex::MaxIndex) and the lap before it, where Send and Read
    // compute the slot of the last indices before the counter wraps.
    const uint32_t top_multiple = 0xffffffffu - 0xffffffffu % divisor;
    for (const uint32_t multiple :
         {top_multiple,
          top_multiple - (top_multiple >= divisor ? divisor : 0)}) {
      for (int64_t delta = -2; delta <= 2; ++delta) {
        const int64_t x = int64_t{multiple} + delta;
        if (x >= 0 && x <= 0xffffffff) {
          dividends.push_back(static_cast<uint32_t>(x));
        }
      }
    }
    for (int i = 0; i < 20000; ++i) dividends.push_back(random());
    for (const uint32_t x : dividends) {
      ASSERT_EQ(modulo.Of(x), x % divisor) << x << " % " << divisor;
    }
  }
}

// The constructor's check must run before anything divides by the divisor:
// a zero queue_size (a bug of ours: configurations are validated first) has
// to abort with the message, not with SIGFPE from the multiplier's division.
TEST(FastModuloDeathTest, ZeroDivisorFailsTheCheck) {
  EXPECT_DEATH(FastModulo(0), "FastModulo by 0");
}

}  // namespace
}  // namespace internal
}  // namespace lockless
