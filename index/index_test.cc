// Tests for QueueIndex, BasicIndex (both widths) and their atomics.
//
// This file is compiled twice (see BUILD): index_test uses the default Index
// width and index_32bit_test defines LOCKLESS_32BIT_INDEX. Both binaries test
// BasicIndex<uint64_t> and BasicIndex<uint32_t> explicitly (typed tests); only
// IndexAliasTest depends on which binary it is in.
//
// Expectations are derived independently of the implementation: QueueIndex
// arithmetic is checked against a slow 64-bit reference model whose wrap point
// is computed by division (not by the `max - max % qs` formula), and Index
// packing is checked against the documented bit layout and width constants.
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <ostream>
#include <set>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "index/atomic_index.h"
#include "index/index.h"
#include "index/queue_index.h"

namespace lockless {

// Readable gtest failure messages (found by argument-dependent lookup).
void PrintTo(const QueueIndex& value, std::ostream* os) {
  *os << value.DebugString();
}
template <typename Word>
void PrintTo(const BasicIndex<Word>& value, std::ostream* os) {
  *os << value.DebugString();
}

namespace {

constexpr uint64_t kAllOnes32 = 0xffffffffull;

// ---------------------------------------------------------------------------
// Reference model for QueueIndex, all in 64-bit arithmetic.
// ---------------------------------------------------------------------------

// The wrap point: the largest multiple of qs that is <= 2^32 - 1, computed by
// integer division rather than by subtracting a remainder.
uint64_t RefMax(uint64_t qs) { return (kAllOnes32 / qs) * qs; }
uint64_t RefAdd(uint64_t a, uint64_t n, uint64_t max) { return (a + n) % max; }
uint64_t RefSub(uint64_t a, uint64_t n, uint64_t max) {
  return (a + max - n % max) % max;
}

const uint32_t kQueueSizes[] = {1,          2,          3,     4,
                                7,          1000,       65535, 65536,
                                0x7fffffff, 0x80000001, 0xffffffff};

// Start values around the wrap point: [max-2qs-3, max) and [0, 2qs+3), each
// range capped at kRangeCap values for huge queue sizes, plus a few values
// around the first lap boundaries and the middle.
constexpr uint64_t kRangeCap = 3000;

std::vector<uint32_t> WrapStarts(uint32_t qs) {
  const uint64_t max = RefMax(qs);
  const uint64_t span = std::min<uint64_t>(2 * uint64_t{qs} + 3, kRangeCap);
  std::set<uint64_t> starts;
  for (uint64_t i = 0; i < span && i < max; ++i) {
    starts.insert(i);
    starts.insert(max - 1 - i);
  }
  for (uint64_t anchor : {uint64_t{qs}, max / 2, max / 2 + 1}) {
    for (uint64_t d = 0; d < 3; ++d) {
      if (anchor + d < max) starts.insert(anchor + d);
      if (anchor >= d + 1 && anchor - d - 1 < max) starts.insert(anchor - d - 1);
    }
  }
  return std::vector<uint32_t>(starts.begin(), starts.end());
}

// {0, 1, 2, qs-1, qs, qs+1, max-1, max}, keeping only legal amounts (<= max).
std::vector<uint32_t> Amounts(uint32_t qs) {
  const uint64_t max = RefMax(qs);
  std::set<uint64_t> amounts = {0,  1,       2,       uint64_t{qs} - 1,
                                qs, qs + 1ull, max - 1, max};
  std::vector<uint32_t> out;
  for (uint64_t a : amounts) {
    if (a <= max) out.push_back(static_cast<uint32_t>(a));
  }
  return out;
}

// ---------------------------------------------------------------------------
// QueueIndex, parameterised over the queue size table.
// ---------------------------------------------------------------------------

class QueueIndexTest : public ::testing::TestWithParam<uint32_t> {
 protected:
  uint32_t qs() const { return GetParam(); }
  uint64_t max() const { return RefMax(GetParam()); }

  // Checks every arithmetic property for one start value; stops at the first
  // failing assertion (callers test HasFatalFailure()).
  void CheckStart(uint32_t start, const std::vector<uint32_t>& amounts) {
    const QueueIndex a = QueueIndex::FromRaw(start, qs());
    ASSERT_TRUE(a.valid()) << start;
    ASSERT_EQ(a.index(), start);
    ASSERT_EQ(a.queue_size(), qs());
    const uint64_t slot = a.Wrapped();
    ASSERT_EQ(slot, start % uint64_t{qs()}) << start;

    // Increment == IncrementBy(1), and the ring slot is continuous.
    const QueueIndex next = a.Increment();
    ASSERT_EQ(next.index(), RefAdd(start, 1, max())) << "start " << start;
    ASSERT_EQ(next, a.IncrementBy(1)) << "start " << start;
    ASSERT_EQ(uint64_t{next.Wrapped()}, (slot + 1) % qs())
        << "slot discontinuity after " << start;
    ASSERT_EQ(next.DecrementBy(1), a) << "start " << start;

    for (uint32_t n : amounts) {
      const QueueIndex up = a.IncrementBy(n);
      const QueueIndex down = a.DecrementBy(n);
      ASSERT_TRUE(up.valid());
      ASSERT_TRUE(down.valid());
      ASSERT_EQ(up.queue_size(), qs());
      ASSERT_EQ(down.queue_size(), qs());
      ASSERT_EQ(up.index(), RefAdd(start, n, max()))
          << "start " << start << " + " << n;
      ASSERT_EQ(down.index(), RefSub(start, n, max()))
          << "start " << start << " - " << n;
      ASSERT_LT(uint64_t{up.index()}, max());
      ASSERT_LT(uint64_t{down.index()}, max());
      // Inverses.
      ASSERT_EQ(up.DecrementBy(n), a) << "start " << start << " n " << n;
      ASSERT_EQ(down.IncrementBy(n), a) << "start " << start << " n " << n;
      // Slots advance by n mod qs, also across the wrap.
      ASSERT_EQ(uint64_t{up.Wrapped()}, (slot + n) % qs())
          << "start " << start << " + " << n;
      ASSERT_EQ(uint64_t{down.Wrapped()},
                (slot + qs() - n % uint64_t{qs()}) % qs())
          << "start " << start << " - " << n;
      // Distances.
      if (n < max()) {
        ASSERT_EQ(up.DistanceFrom(a), n) << "start " << start << " n " << n;
        ASSERT_EQ(a.DistanceFrom(down), n) << "start " << start << " n " << n;
        ASSERT_EQ(uint64_t{a.DistanceFrom(up)}, (max() - n) % max())
            << "start " << start << " n " << n;
      }
    }
    ASSERT_EQ(a.DistanceFrom(a), 0u);
  }
};

TEST_P(QueueIndexTest, MaxIndexIsTheLargestMultipleThatFits) {
  const uint64_t m = QueueIndex::MaxIndex(QueueIndex::kMaxValue, qs());
  EXPECT_EQ(m % qs(), 0u);
  EXPECT_LE(m, kAllOnes32);
  EXPECT_GT(m + qs(), kAllOnes32);
  EXPECT_GE(m, uint64_t{qs()});
  EXPECT_EQ(m, RefMax(qs()));
  EXPECT_EQ(uint64_t{QueueIndex::Zero(qs()).max_index()}, m);
  // The last valid index sits in the last slot, so index 0 (slot 0) follows.
  EXPECT_EQ((m - 1) % qs(), qs() - 1u);
}

TEST_P(QueueIndexTest, ZeroAndInvalid) {
  const QueueIndex zero = QueueIndex::Zero(qs());
  EXPECT_TRUE(zero.valid());
  EXPECT_EQ(zero.index(), 0u);
  EXPECT_EQ(zero.queue_size(), qs());
  EXPECT_EQ(zero.Wrapped(), 0u);
  EXPECT_EQ(zero, QueueIndex::FromRaw(0, qs()));

  const QueueIndex invalid = QueueIndex::Invalid();
  EXPECT_FALSE(invalid.valid());
  EXPECT_EQ(uint64_t{invalid.index()}, kAllOnes32);
  EXPECT_EQ(invalid, QueueIndex());
  EXPECT_EQ(invalid, QueueIndex::FromRaw(0xffffffffu, qs()));
  EXPECT_FALSE(QueueIndex::FromRaw(0xffffffffu, qs()).valid());
  EXPECT_NE(invalid, zero);
  // No valid index can equal the invalid marker.
  EXPECT_NE(QueueIndex::FromRaw(static_cast<uint32_t>(max() - 1), qs()),
            invalid);
}

TEST_P(QueueIndexTest, ArithmeticAroundTheWrapMatchesReference) {
  const std::vector<uint32_t> amounts = Amounts(qs());
  const std::vector<uint32_t> starts = WrapStarts(qs());
  // The table must actually straddle the wrap.
  ASSERT_EQ(starts.front(), 0u);
  ASSERT_EQ(uint64_t{starts.back()}, max() - 1);
  for (uint32_t start : starts) {
    CheckStart(start, amounts);
    if (HasFatalFailure()) return;
  }
}

TEST_P(QueueIndexTest, IsLegalRaw) {
  const uint64_t m = max();
  std::vector<uint64_t> values = {0, 1, m / 2, m - 1, m, m + 1,
                                  kAllOnes32 - 1, kAllOnes32};
  for (uint64_t v : values) {
    if (v > kAllOnes32) continue;
    const bool expected = v == kAllOnes32 || v < m;
    EXPECT_EQ(QueueIndex::IsLegalRaw(static_cast<uint32_t>(v), qs()),
              expected)
        << "value " << v << " qs " << qs();
  }
  // Explicit anchors that do not depend on the formula above.
  EXPECT_TRUE(QueueIndex::IsLegalRaw(0, qs()));
  EXPECT_TRUE(QueueIndex::IsLegalRaw(0xffffffffu, qs()));
  EXPECT_TRUE(QueueIndex::IsLegalRaw(static_cast<uint32_t>(m - 1), qs()));
  if (m < kAllOnes32) {
    EXPECT_FALSE(QueueIndex::IsLegalRaw(static_cast<uint32_t>(m), qs()));
    EXPECT_FALSE(QueueIndex::IsLegalRaw(0xfffffffeu, qs()));
  }
}

TEST_P(QueueIndexTest, FromRawRoundTrips) {
  for (uint32_t v : WrapStarts(qs())) {
    const QueueIndex q = QueueIndex::FromRaw(v, qs());
    ASSERT_TRUE(q.valid()) << v;
    ASSERT_EQ(q.index(), v);
    ASSERT_EQ(q.queue_size(), qs());
    ASSERT_EQ(QueueIndex::FromRaw(q.index(), q.queue_size()), q);
    ASSERT_TRUE(QueueIndex::IsLegalRaw(q.index(), qs()));
  }
  // A corrupt value (at or above the wrap point, but not the invalid marker)
  // must not abort: FromRaw accepts it and IsLegalRaw flags it.
  if (max() < kAllOnes32) {
    const QueueIndex corrupt =
        QueueIndex::FromRaw(static_cast<uint32_t>(max()), qs());
    EXPECT_TRUE(corrupt.valid());
    EXPECT_EQ(uint64_t{corrupt.index()}, max());
    EXPECT_FALSE(QueueIndex::IsLegalRaw(corrupt.index(), qs()));
  }
}

// Walks the last/first 10000 values one by one; only for small queue sizes
// (instantiated below with its own table).
class QueueIndexWalkTest : public QueueIndexTest {};

TEST_P(QueueIndexWalkTest, FullWrapIsContinuous) {
  constexpr uint64_t kSide = 10000;
  QueueIndex q = QueueIndex::FromRaw(static_cast<uint32_t>(max() - kSide),
                                     qs());
  uint64_t expected = max() - kSide;
  int zeros_seen = 0;
  for (uint64_t step = 0; step < 2 * kSide; ++step) {
    const QueueIndex next = q.Increment();
    expected = RefAdd(expected, 1, max());
    ASSERT_EQ(uint64_t{next.index()}, expected) << "step " << step;
    ASSERT_EQ(next.Wrapped(), (q.Wrapped() + 1) % qs())
        << "slot jump at " << q.DebugString();
    ASSERT_EQ(next.DistanceFrom(q), 1u);
    if (next.index() == 0) ++zeros_seen;
    q = next;
  }
  EXPECT_EQ(zeros_seen, 1);
  EXPECT_EQ(uint64_t{q.index()}, kSide);
}

TEST_P(QueueIndexTest, EqualityAndDebugString) {
  const QueueIndex a = QueueIndex::FromRaw(12345 % max(), qs());
  const QueueIndex b = QueueIndex::FromRaw(12345 % max(), qs());
  const QueueIndex c = a.Increment();
  EXPECT_TRUE(a == b);
  EXPECT_FALSE(a != b);
  EXPECT_TRUE(a != c);
  EXPECT_FALSE(a == c);
  EXPECT_TRUE(a != QueueIndex::Invalid());

  const std::string text = a.DebugString();
  EXPECT_NE(text.find(std::to_string(a.index())), std::string::npos) << text;
  EXPECT_EQ(text.find("invalid"), std::string::npos) << text;
  const std::string last =
      QueueIndex::FromRaw(static_cast<uint32_t>(max() - 1), qs()).DebugString();
  EXPECT_NE(last.find(std::to_string(max() - 1)), std::string::npos) << last;
  EXPECT_NE(QueueIndex::Invalid().DebugString().find("invalid"),
            std::string::npos);
}

INSTANTIATE_TEST_SUITE_P(
    Sizes, QueueIndexTest, ::testing::ValuesIn(kQueueSizes),
    [](const ::testing::TestParamInfo<uint32_t>& info) {
      return "qs_" + std::to_string(info.param);
    });

const uint32_t kSmallQueueSizes[] = {1, 2, 3, 4, 7};
INSTANTIATE_TEST_SUITE_P(
    SmallSizes, QueueIndexWalkTest, ::testing::ValuesIn(kSmallQueueSizes),
    [](const ::testing::TestParamInfo<uint32_t>& info) {
      return "qs_" + std::to_string(info.param);
    });

// Worked examples from the header comment, independent of the table.
TEST(QueueIndexExamples, WrapPoints) {
  // 2^32 - 1 is a multiple of 1, 3, 5, 17, 257, 65535 and itself.
  EXPECT_EQ(QueueIndex::MaxIndex(0xffffffffu, 1), 0xffffffffu);
  EXPECT_EQ(QueueIndex::MaxIndex(0xffffffffu, 3), 0xffffffffu);
  EXPECT_EQ(QueueIndex::MaxIndex(0xffffffffu, 65535), 0xffffffffu);
  EXPECT_EQ(QueueIndex::MaxIndex(0xffffffffu, 0xffffffffu), 0xffffffffu);
  EXPECT_EQ(QueueIndex::MaxIndex(0xffffffffu, 2), 0xfffffffeu);
  EXPECT_EQ(QueueIndex::MaxIndex(0xffffffffu, 4), 0xfffffffcu);
  EXPECT_EQ(QueueIndex::MaxIndex(0xffffffffu, 65536), 0xffff0000u);
  EXPECT_EQ(QueueIndex::MaxIndex(0xffffffffu, 0x7fffffffu), 0xfffffffeu);
  // Far below 2^32: exactly one lap.
  EXPECT_EQ(QueueIndex::MaxIndex(0xffffffffu, 0x80000001u), 0x80000001u);
  // Small max_value argument.
  EXPECT_EQ(QueueIndex::MaxIndex(10, 3), 9u);
  EXPECT_EQ(QueueIndex::MaxIndex(9, 3), 9u);
}

TEST(QueueIndexExamples, NaiveWrapWouldBreakSlotContinuity) {
  // For qs = 7 the counter must not wrap at 2^32: slot of 2^32 - 1 is 3, so
  // continuing at 0 would jump from slot 3 to slot 0. The real wrap point
  // keeps it continuous.
  EXPECT_EQ(kAllOnes32 % 7, 3u);
  const QueueIndex last = QueueIndex::FromRaw(
      QueueIndex::MaxIndex(QueueIndex::kMaxValue, 7) - 1, 7);
  EXPECT_EQ(last.Wrapped(), 6u);
  EXPECT_EQ(last.Increment(), QueueIndex::Zero(7));
  EXPECT_EQ(last.Increment().Wrapped(), 0u);
}

// ---------------------------------------------------------------------------
// Index: typed over both widths.
// ---------------------------------------------------------------------------

// Documented widths (index.h): 64-bit word = 32 queue bits + 32 message bits,
// 32-bit word = 16 + 16.
template <typename Word>
struct Expected;
template <>
struct Expected<uint64_t> {
  static constexpr uint32_t kQueueMask = 0xffffffffu;
  static constexpr uint32_t kMaxMessages = 0xffffffffu;  // 2^32 - 1
  static constexpr int kShift = 32;
};
template <>
struct Expected<uint32_t> {
  static constexpr uint32_t kQueueMask = 0xffffu;
  static constexpr uint32_t kMaxMessages = 0xffffu;  // 2^16 - 1
  static constexpr int kShift = 16;
};

template <typename Word>
class IndexTest : public ::testing::Test {
 protected:
  using I = BasicIndex<Word>;
  using E = Expected<Word>;

  static std::vector<uint32_t> QueueIndices() {
    return {0,          1,          2,          0xfffe,     0xffff,
            0x10000,    0x10001,    0x12345,    0x7fffffff, 0x80000000,
            0xdeadbeef, 0xfffffffd, 0xfffffffe};
  }
  static std::vector<uint32_t> MessageIndices() {
    const uint32_t max_messages = E::kMaxMessages;
    return {0, 1, 2, 0xff, max_messages / 2, max_messages - 2,
            max_messages - 1};
  }
};

using Words = ::testing::Types<uint64_t, uint32_t>;
class WordNames {
 public:
  template <typename T>
  static std::string GetName(int) {
    return std::is_same_v<T, uint64_t> ? "Index64" : "Index32";
  }
};
TYPED_TEST_SUITE(IndexTest, Words, WordNames);

TYPED_TEST(IndexTest, Constants) {
  using I = typename TestFixture::I;
  using E = typename TestFixture::E;
  EXPECT_EQ(I::MaxMessages(), E::kMaxMessages);
  EXPECT_EQ(I::kQueueIndexMask, E::kQueueMask);
  EXPECT_EQ(sizeof(typename I::WordType), sizeof(TypeParam));
  EXPECT_EQ(sizeof(I), sizeof(TypeParam));
}

TYPED_TEST(IndexTest, Invalid) {
  using I = typename TestFixture::I;
  const I invalid = I::Invalid();
  EXPECT_FALSE(invalid.valid());
  EXPECT_EQ(invalid.raw(), static_cast<TypeParam>(~TypeParam{0}));
  EXPECT_EQ(invalid, I());
  EXPECT_EQ(invalid, I::FromRaw(static_cast<TypeParam>(~TypeParam{0})));
  EXPECT_FALSE(I::FromRaw(static_cast<TypeParam>(~TypeParam{0})).valid());
  EXPECT_TRUE(I::FromRaw(0).valid());
}

TYPED_TEST(IndexTest, PackingRoundTrips) {
  using I = typename TestFixture::I;
  using E = typename TestFixture::E;
  std::set<TypeParam> raws;
  size_t distinct_pairs = 0;
  std::set<std::pair<uint32_t, uint32_t>> pairs;
  for (uint32_t q : TestFixture::QueueIndices()) {
    for (uint32_t m : TestFixture::MessageIndices()) {
      const I idx(q, m);
      SCOPED_TRACE(idx.DebugString());
      EXPECT_TRUE(idx.valid());
      EXPECT_NE(idx, I::Invalid());
      EXPECT_EQ(idx.queue_index(), q & E::kQueueMask);
      EXPECT_EQ(idx.message_index(), m);
      // Documented layout: message above, queue bits below.
      EXPECT_EQ(uint64_t{idx.raw()},
                (uint64_t{m} << E::kShift) | (q & E::kQueueMask));
      EXPECT_EQ(I::FromRaw(idx.raw()), idx);
      EXPECT_EQ(I::FromRaw(idx.raw()).message_index(), m);
      // Same packing through the QueueIndex constructor, for a queue where q
      // is a legal index (qs = 1 wraps at 2^32 - 1).
      const I via_queue_index(QueueIndex::FromRaw(q, 1), m);
      EXPECT_EQ(via_queue_index, idx);
      raws.insert(idx.raw());
      if (pairs.insert({q & E::kQueueMask, m}).second) ++distinct_pairs;
    }
  }
  // Distinct (stored queue bits, message) pairs pack to distinct words.
  EXPECT_EQ(raws.size(), distinct_pairs);
}

TYPED_TEST(IndexTest, DocumentedLayoutExamples) {
  using I = typename TestFixture::I;
  if constexpr (std::is_same_v<TypeParam, uint64_t>) {
    EXPECT_EQ(I(0x12345678u, 0x9abcu).raw(), 0x00009abc12345678ull);
    EXPECT_EQ(I(0u, 0xfffffffeu).raw(), 0xfffffffe00000000ull);
    EXPECT_EQ(I(0xffffffffu, 0xfffffffeu).raw(), 0xfffffffeffffffffull);
  } else {
    // Only the low 16 queue-index bits are kept.
    EXPECT_EQ(I(0x12345678u, 0x9abcu).raw(), 0x9abc5678u);
    EXPECT_EQ(I(0u, 0xfffeu).raw(), 0xfffe0000u);
    EXPECT_EQ(I(0xffffffffu, 0xfffeu).raw(), 0xfffeffffu);
    EXPECT_EQ(I(0x10000u, 7u), I(0u, 7u));
  }
}

TYPED_TEST(IndexTest, NoValidPackingIsInvalid) {
  using I = typename TestFixture::I;
  using E = typename TestFixture::E;
  // The closest a valid word gets to all ones: all queue bits set and the top
  // message numbers. (For the 32-bit word this covers every message number.)
  const uint32_t max_messages = E::kMaxMessages;
  const uint32_t span = std::min<uint32_t>(max_messages, 70000);
  for (uint32_t i = 1; i <= span; ++i) {
    const uint32_t m = max_messages - i;
    for (uint32_t q : {0xffffffffu, 0xffffu, 0u}) {
      const I idx(q, m);
      ASSERT_TRUE(idx.valid()) << q << " " << m;
      ASSERT_NE(idx, I::Invalid()) << q << " " << m;
      ASSERT_EQ(idx.message_index(), m);
    }
  }
}

TYPED_TEST(IndexTest, IsPlausibleExactOnly) {
  using I = typename TestFixture::I;
  // Queue sizes and positions where no neighbour aliases in either width
  // (neighbour differences are never a multiple of 2^16; see
  // KnownLimitation32Bit for the cases that do alias).
  for (uint32_t qs : {1u, 2u, 3u, 7u, 1000u}) {
    const uint64_t max = RefMax(qs);
    for (uint64_t pos : {uint64_t{0}, uint64_t{1}, uint64_t{qs}, uint64_t{12345},
                         max / 2, max - qs, max - 1}) {
      const QueueIndex q = QueueIndex::FromRaw(static_cast<uint32_t>(pos), qs);
      for (uint32_t m : {0u, 1u, I::MaxMessages() - 1}) {
        const I idx(q, m);
        SCOPED_TRACE(q.DebugString() + " " + idx.DebugString());
        EXPECT_TRUE(idx.IsPlausible(q));
        EXPECT_TRUE(idx.IsPlausible(QueueIndex::FromRaw(q.index(), qs)));
        EXPECT_FALSE(idx.IsPlausible(q.Increment()));
        EXPECT_FALSE(idx.IsPlausible(q.DecrementBy(1)));
        EXPECT_FALSE(idx.IsPlausible(q.IncrementBy(qs)));
        EXPECT_FALSE(idx.IsPlausible(q.DecrementBy(qs)));
        EXPECT_FALSE(idx.IsPlausible(QueueIndex::Invalid()));
        EXPECT_FALSE(I::Invalid().IsPlausible(q));
      }
    }
  }
  EXPECT_FALSE(I::Invalid().IsPlausible(QueueIndex::Invalid()));
  // A valid entry whose stored queue bits are all ones is still not
  // plausible for the invalid queue index (whose raw value is all ones).
  EXPECT_FALSE(I(0xffffffffu, 0u).IsPlausible(QueueIndex::Invalid()));
}

TYPED_TEST(IndexTest, KnownLimitation32Bit) {
  using I = typename TestFixture::I;
  // The 32-bit entry keeps only 16 queue-index bits, so IsPlausible cannot
  // tell q from q + 65536 (an ABA window of an exact multiple of 2^16 sends).
  // The 64-bit entry keeps the whole queue index and always can.
  constexpr bool k32 = std::is_same_v<TypeParam, uint32_t>;
  for (uint32_t qs : {1u, 3u, 7u, 1000u, 65535u}) {
    for (uint32_t pos : {0u, 1u, 0x12345u, 0x7fff0000u}) {
      const QueueIndex q = QueueIndex::FromRaw(pos, qs);
      const QueueIndex far = QueueIndex::FromRaw(pos + 65536, qs);
      ASSERT_LT(uint64_t{far.index()}, RefMax(qs));
      const I idx(q, 5);
      EXPECT_TRUE(idx.IsPlausible(q));
      EXPECT_EQ(idx.IsPlausible(far), k32) << q.DebugString();
      EXPECT_EQ(I(far, 5).IsPlausible(q), k32) << q.DebugString();
      EXPECT_EQ(idx.IsPlausible(q), I(far, 5).IsPlausible(far));
    }
  }
  // Across the wrap the alias distance is not 2^16 sends: for qs = 65535 the
  // wrap point is 2^32 - 1, so the entry for the last index (0xfffffffe)
  // stores 0xfffe, which is also the low half of the index one lap later
  // (0xfffffffe + 65535 wraps to 0xfffe). In the 32-bit width the previous
  // lap's entry therefore looks plausible at this one wrap.
  {
    const QueueIndex last = QueueIndex::FromRaw(0xfffffffeu, 65535);
    const QueueIndex next_lap = last.IncrementBy(65535);
    EXPECT_EQ(next_lap.index(), 0xfffeu);
    EXPECT_EQ(I(last, 1).IsPlausible(next_lap), k32);
  }
  // And for a queue size that is a multiple of 2^16, every lap aliases in the
  // 32-bit width.
  {
    const QueueIndex q = QueueIndex::FromRaw(3 * 65536 + 9, 65536);
    EXPECT_EQ(I(q, 1).IsPlausible(q.IncrementBy(65536)), k32);
    EXPECT_EQ(I(q, 1).IsPlausible(q.DecrementBy(65536)), k32);
  }
}

TYPED_TEST(IndexTest, EqualityAndDebugString) {
  using I = typename TestFixture::I;
  const I a(0x1234u, 77u);
  EXPECT_TRUE(a == I(0x1234u, 77u));
  EXPECT_FALSE(a != I(0x1234u, 77u));
  EXPECT_TRUE(a != I(0x1234u, 78u));
  EXPECT_TRUE(a != I(0x1235u, 77u));
  EXPECT_TRUE(a != I::Invalid());

  const std::string text = a.DebugString();
  EXPECT_NE(text.find("4660"), std::string::npos) << text;  // 0x1234
  EXPECT_NE(text.find("77"), std::string::npos) << text;
  EXPECT_EQ(text.find("invalid"), std::string::npos) << text;
  EXPECT_NE(I::Invalid().DebugString().find("invalid"), std::string::npos);
  // The printed queue index is the stored one (low 16 bits for 32-bit).
  const std::string high = I(0x12345u, 1u).DebugString();
  EXPECT_NE(high.find(std::is_same_v<TypeParam, uint32_t> ? "9029" : "74565"),
            std::string::npos)
      << high;
}

// ---------------------------------------------------------------------------
// The Index alias picked by this binary.
// ---------------------------------------------------------------------------

TEST(IndexAliasTest, WidthMatchesBuild) {
#ifdef LOCKLESS_32BIT_INDEX
  EXPECT_TRUE((std::is_same_v<Index, BasicIndex<uint32_t>>));
  EXPECT_EQ(sizeof(Index), 4u);
  EXPECT_EQ(Index::MaxMessages(), 0xffffu);
#else
  // The default build runs on targets with lock-free 64-bit atomics.
  ASSERT_EQ(ATOMIC_LLONG_LOCK_FREE, 2);
  EXPECT_TRUE((std::is_same_v<Index, BasicIndex<uint64_t>>));
  EXPECT_EQ(sizeof(Index), 8u);
  EXPECT_EQ(Index::MaxMessages(), 0xffffffffu);
#endif
  EXPECT_TRUE((std::is_same_v<AtomicIndex, BasicAtomicIndex<Index::WordType>>));
  EXPECT_EQ(sizeof(AtomicIndex), sizeof(Index));
  EXPECT_EQ(sizeof(AtomicQueueIndex), 4u);
}

// ---------------------------------------------------------------------------
// BasicAtomicIndex, both widths.
// ---------------------------------------------------------------------------

template <typename Word>
class AtomicIndexTest : public ::testing::Test {};
TYPED_TEST_SUITE(AtomicIndexTest, Words, WordNames);

TYPED_TEST(AtomicIndexTest, LoadsReturnWhatWasStored) {
  using I = BasicIndex<TypeParam>;
  BasicAtomicIndex<TypeParam> word;
  const I values[] = {I(0u, 0u), I(0x12345u, 3u), I(0xffffffffu, 1u),
                      I(7u, I::MaxMessages() - 1), I::Invalid()};
  for (const I& v : values) {
    word.Store(v);
    EXPECT_EQ(word.Load(), v) << v.DebugString();
    EXPECT_EQ(word.RelaxedLoad(), v) << v.DebugString();
    word.RelaxedStore(I(1u, 1u));
    EXPECT_EQ(word.Load(), I(1u, 1u));
    word.RelaxedStore(v);
    EXPECT_EQ(word.RelaxedLoad(), v) << v.DebugString();
    EXPECT_EQ(word.Load().raw(), v.raw());
  }
  word.Store(I(2u, 2u));
  word.Invalidate();
  EXPECT_FALSE(word.Load().valid());
  EXPECT_EQ(word.Load(), I::Invalid());
}

TYPED_TEST(AtomicIndexTest, CompareAndExchangeStrong) {
  using I = BasicIndex<TypeParam>;
  BasicAtomicIndex<TypeParam> word;
  const I a(10u, 1u), b(11u, 2u), c(12u, 3u);
  word.Store(a);

  I expected = a;
  EXPECT_TRUE(word.CompareAndExchangeStrong(&expected, b));
  EXPECT_EQ(expected, a);  // untouched on success
  EXPECT_EQ(word.Load(), b);

  expected = a;  // stale
  EXPECT_FALSE(word.CompareAndExchangeStrong(&expected, c));
  EXPECT_EQ(expected, b);  // updated to the current value
  EXPECT_EQ(word.Load(), b);

  // Retrying with the refreshed value succeeds.
  EXPECT_TRUE(word.CompareAndExchangeStrong(&expected, c));
  EXPECT_EQ(word.Load(), c);

  // From and to invalid.
  expected = c;
  EXPECT_TRUE(word.CompareAndExchangeStrong(&expected, I::Invalid()));
  EXPECT_FALSE(word.Load().valid());
  expected = a;
  EXPECT_FALSE(word.CompareAndExchangeStrong(&expected, b));
  EXPECT_FALSE(expected.valid());
  EXPECT_TRUE(word.CompareAndExchangeStrong(&expected, a));
  EXPECT_EQ(word.Load(), a);

  // Same stored queue bits but a different message: not equal words.
  expected = I(10u, 2u);
  EXPECT_FALSE(word.CompareAndExchangeStrong(&expected, b));
  EXPECT_EQ(expected, a);
}

// ---------------------------------------------------------------------------
// AtomicQueueIndex.
// ---------------------------------------------------------------------------

TEST(AtomicQueueIndexTest, LoadsReturnWhatWasStored) {
  for (uint32_t qs : {1u, 7u, 65536u, 0x80000001u}) {
    AtomicQueueIndex word;
    const uint64_t max = RefMax(qs);
    for (uint64_t v : {uint64_t{0}, uint64_t{1}, max / 2, max - 1}) {
      const QueueIndex q = QueueIndex::FromRaw(static_cast<uint32_t>(v), qs);
      word.Store(q);
      EXPECT_EQ(word.Load(qs), q);
      EXPECT_EQ(word.Load(qs).queue_size(), qs);
      EXPECT_EQ(word.RelaxedLoad(qs), q);
      EXPECT_EQ(uint64_t{word.RelaxedLoadRaw()}, v);
      word.RelaxedStore(QueueIndex::Zero(qs));
      EXPECT_EQ(word.Load(qs), QueueIndex::Zero(qs));
      word.RelaxedStore(q);
      EXPECT_EQ(word.RelaxedLoad(qs), q);
    }
    word.Invalidate();
    EXPECT_FALSE(word.Load(qs).valid());
    EXPECT_EQ(word.RelaxedLoadRaw(), 0xffffffffu);
    word.Store(QueueIndex::Invalid());
    EXPECT_EQ(word.RelaxedLoad(qs), QueueIndex::Invalid());
  }
}

TEST(AtomicQueueIndexTest, CompareAndExchangeStrong) {
  constexpr uint32_t kQs = 7;
  AtomicQueueIndex word;
  const QueueIndex a = QueueIndex::FromRaw(40, kQs);
  word.Store(a);

  QueueIndex expected = a;
  EXPECT_TRUE(word.CompareAndExchangeStrong(&expected, a.Increment()));
  EXPECT_EQ(expected, a);
  EXPECT_EQ(word.Load(kQs), a.Increment());

  expected = a;  // stale
  EXPECT_FALSE(word.CompareAndExchangeStrong(&expected, a.IncrementBy(5)));
  EXPECT_EQ(expected, a.Increment());
  EXPECT_EQ(expected.queue_size(), kQs);
  EXPECT_EQ(word.Load(kQs), a.Increment());

  word.Invalidate();
  expected = a;
  EXPECT_FALSE(word.CompareAndExchangeStrong(&expected, a));
  EXPECT_FALSE(expected.valid());
  EXPECT_TRUE(word.CompareAndExchangeStrong(&expected, QueueIndex::Zero(kQs)));
  EXPECT_EQ(word.Load(kQs), QueueIndex::Zero(kQs));
}

TEST(AtomicQueueIndexTest, ConcurrentCasIncrementsAcrossTheWrap) {
  constexpr uint32_t kQs = 7;
  constexpr int kThreads = 4;
  constexpr uint32_t kPerThread = 20000;
  constexpr uint32_t kTotal = kThreads * kPerThread;
  const uint64_t max = RefMax(kQs);
  // Start so that the wrap is crossed half way through.
  const QueueIndex start =
      QueueIndex::FromRaw(static_cast<uint32_t>(max - kTotal / 2), kQs);

  AtomicQueueIndex word;
  word.Store(start);
  std::atomic<bool> go{false};
  std::atomic<int> slot_jumps{0};
  std::atomic<int> bad_failures{0};
  std::vector<std::vector<uint32_t>> replaced(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      replaced[t].reserve(kPerThread);
      while (!go.load(std::memory_order_acquire)) {
      }
      QueueIndex current = word.Load(kQs);
      for (uint32_t i = 0; i < kPerThread; ++i) {
        QueueIndex next = current.Increment();
        QueueIndex stale = current;
        while (!word.CompareAndExchangeStrong(&current, next)) {
          // A strong CAS fails only on a mismatch, and then reports the
          // (different) current value. Bail out instead of spinning forever
          // if it does not.
          if (current == stale) {
            ++bad_failures;
            return;
          }
          stale = current;
          next = current.Increment();
        }
        if (next.Wrapped() != (current.Wrapped() + 1) % kQs) ++slot_jumps;
        replaced[t].push_back(current.index());
        current = next;
      }
    });
  }
  go.store(true, std::memory_order_release);
  for (std::thread& thread : threads) thread.join();

  ASSERT_EQ(bad_failures.load(), 0) << "CAS failed without updating expected";
  EXPECT_EQ(slot_jumps.load(), 0);
  const QueueIndex final_value = word.Load(kQs);
  EXPECT_EQ(uint64_t{final_value.index()}, RefAdd(start.index(), kTotal, max));
  EXPECT_EQ(final_value.DistanceFrom(start), kTotal);

  // Every value from start to final was replaced exactly once: no increment
  // was lost or duplicated.
  std::vector<bool> seen(kTotal, false);
  for (const std::vector<uint32_t>& values : replaced) {
    ASSERT_EQ(values.size(), kPerThread);
    for (uint32_t v : values) {
      const uint32_t offset = QueueIndex::FromRaw(v, kQs).DistanceFrom(start);
      ASSERT_LT(offset, kTotal) << v;
      ASSERT_FALSE(seen[offset]) << "value " << v << " replaced twice";
      seen[offset] = true;
    }
  }
}

}  // namespace
}  // namespace lockless
