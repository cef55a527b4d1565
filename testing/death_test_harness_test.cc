#include "testing/death_test_harness.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sync/robust_mutex.h"

namespace lockless::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// The harness also works under --config=asan (ASan lets the child replace its
// SIGSEGV handler, and its shadow checks only read), so nothing is skipped
// there.
#define SKIP_IF_UNSUPPORTED()                              \
  do {                                                     \
    if (!DeathTestSupported()) {                           \
      GTEST_SKIP() << "death tests need x86-64 trap flag"; \
    }                                                      \
  } while (false)

// Bits of a robust futex word (linux/futex.h).
constexpr uint32_t kFutexWaiters = 0x80000000u;
constexpr uint32_t kFutexOwnerDied = 0x40000000u;

// Five independent 64-bit fields. Written through volatile so the compiler
// neither merges nor reorders the stores.
struct FiveFields {
  uint64_t value[5];
};

void WriteField(void* region, int i, uint64_t value) {
  static_cast<volatile uint64_t*>(region)[i] = value;
}

uint64_t ReadField(void* region, int i) {
  return static_cast<volatile uint64_t*>(region)[i];
}

TEST(DeathTestHarnessTest, RecordsEveryPlainStoreInOrder) {
  SKIP_IF_UNSUPPORTED();
  int checks = 0;
  DeathTestOptions options;
  options.region_size_bytes = sizeof(FiveFields);
  options.run = [](void* region) {
    for (int i = 0; i < 5; ++i) WriteField(region, i, i + 1);
  };
  // At die point n exactly the first n fields are written; the final check
  // (n = 6) sees all five.
  options.check = [&checks](void* region) -> absl::Status {
    const int n = ++checks;
    for (int i = 0; i < 5; ++i) {
      const uint64_t expected = i < n ? i + 1 : 0;
      if (ReadField(region, i) != expected) {
        return absl::InternalError(
            absl::StrCat("field ", i, " is ", ReadField(region, i)));
      }
    }
    return absl::OkStatus();
  };
  absl::StatusOr<DeathTestReport> report = RunDeathTest(options);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->writes_recorded, 5u);
  EXPECT_EQ(report->die_points_tested, 5u);
  EXPECT_EQ(report->owner_died_emulated, 0u);
  EXPECT_THAT(report->write_offsets, ElementsAre(0, 8, 16, 24, 32));
  EXPECT_EQ(checks, 6);
}

TEST(DeathTestHarnessTest, PrepareRunsBeforeEveryChildAndIsNotTraced) {
  SKIP_IF_UNSUPPORTED();
  DeathTestOptions options;
  options.region_size_bytes = 3 * 4096 + 1;  // Rounded up to 4 pages.
  options.prepare = [](void* region) {
    // Fresh zeroed region every time.
    for (int i = 0; i < 2048; ++i) {
      if (ReadField(region, i) != 0) abort();
    }
    WriteField(region, 0, 7);
  };
  options.run = [](void* region) {
    // Spans pages: the whole region is traced.
    WriteField(region, 1500, ReadField(region, 0) + 1);
  };
  options.check = [](void* region) -> absl::Status {
    if (ReadField(region, 0) != 7) return absl::InternalError("prepare lost");
    const uint64_t v = ReadField(region, 1500);
    if (v != 0 && v != 8) return absl::InternalError("bad value");
    return absl::OkStatus();
  };
  absl::StatusOr<DeathTestReport> report = RunDeathTest(options);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_THAT(report->write_offsets, ElementsAre(1500 * 8));
}

// cleanup pairs with every prepare, after the check and while the region is
// still the one prepare saw; also when the harness stops on an error.
TEST(DeathTestHarnessTest, CleanupFollowsEveryPrepareOnItsRegion) {
  SKIP_IF_UNSUPPORTED();
  int prepared = 0;
  int cleaned = 0;
  int checked_since_prepare = 0;
  DeathTestOptions options;
  options.region_size_bytes = 64;
  options.prepare = [&](void* region) {
    if (prepared != cleaned) abort();  // The previous region was cleaned up.
    ++prepared;
    checked_since_prepare = 0;
    WriteField(region, 7, 42);
  };
  options.run = [](void* region) {
    WriteField(region, 0, 1);
    WriteField(region, 1, 2);
  };
  options.check = [&](void*) {
    ++checked_since_prepare;
    return absl::OkStatus();
  };
  options.cleanup = [&](void* region) {
    // Still the prepared region, not yet replaced by a fresh one.
    if (ReadField(region, 7) != 42) abort();
    ++cleaned;
  };
  absl::StatusOr<DeathTestReport> report = RunDeathTest(options);
  ASSERT_TRUE(report.ok()) << report.status();
  // Recording run + 2 die points + the completing run.
  EXPECT_EQ(prepared, 4);
  EXPECT_EQ(cleaned, 4);
  EXPECT_EQ(checked_since_prepare, 1);  // Check ran before the last cleanup.

  // A failing check ends the run early; its region is still cleaned up.
  prepared = cleaned = 0;
  options.check = [](void* region) -> absl::Status {
    if (ReadField(region, 1) != 2) return absl::OkStatus();
    return absl::InternalError("fails once the second write is made");
  };
  report = RunDeathTest(options);
  ASSERT_FALSE(report.ok());
  EXPECT_THAT(report.status().message(), HasSubstr("dying at 2/2"));
  // Recording run, die point 1, die point 2 (where it stops).
  EXPECT_EQ(prepared, 3);
  EXPECT_EQ(cleaned, 3);
}

TEST(DeathTestHarnessTest, AtomicReadModifyWritesAreOneWriteEach) {
  SKIP_IF_UNSUPPORTED();
  DeathTestOptions options;
  options.region_size_bytes = 64;
  options.run = [](void* region) {
    auto* counter = static_cast<std::atomic<uint32_t>*>(region);
    counter->fetch_add(1, std::memory_order_relaxed);
    uint32_t expected = 1;
    counter->compare_exchange_strong(expected, 5, std::memory_order_relaxed);
    // A failed CAS still writes (lock cmpxchg always does a write cycle).
    expected = 0;
    counter->compare_exchange_strong(expected, 9, std::memory_order_relaxed);
  };
  absl::StatusOr<DeathTestReport> report = RunDeathTest(options);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_THAT(report->write_offsets, ElementsAre(0, 0, 0));
  EXPECT_EQ(report->die_points_tested, 3u);
}

TEST(DeathTestHarnessTest, MemcpyIsTracedDeterministically) {
  SKIP_IF_UNSUPPORTED();
  DeathTestOptions options;
  options.region_size_bytes = 4096;
  options.run = [](void* region) {
    char source[200];
    for (int i = 0; i < 200; ++i) source[i] = static_cast<char>(i + 1);
    memcpy(static_cast<char*>(region) + 100, source, sizeof(source));
  };
  options.check = [](void* region) -> absl::Status {
    const char* bytes = static_cast<const char*>(region) + 100;
    for (int i = 0; i < 200; ++i) {
      if (bytes[i] != 0 && bytes[i] != static_cast<char>(i + 1)) {
        return absl::InternalError(absl::StrCat("byte ", i, " is garbage"));
      }
    }
    return absl::OkStatus();
  };
  absl::StatusOr<DeathTestReport> report = RunDeathTest(options);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_GE(report->writes_recorded, 1u);
  EXPECT_EQ(report->die_points_tested, report->writes_recorded);
  for (uint64_t offset : report->write_offsets) {
    EXPECT_GE(offset, 100u);
    EXPECT_LT(offset, 300u);
  }
}

TEST(DeathTestHarnessTest, DetectsNonRobustTwoFieldUpdate) {
  SKIP_IF_UNSUPPORTED();
  DeathTestOptions options;
  options.region_size_bytes = 16;
  options.run = [](void* region) {
    WriteField(region, 0, 42);
    WriteField(region, 1, 42);
  };
  options.check = [](void* region) -> absl::Status {
    if (ReadField(region, 0) != ReadField(region, 1)) {
      return absl::DataLossError("a != b");
    }
    return absl::OkStatus();
  };
  absl::StatusOr<DeathTestReport> report = RunDeathTest(options);
  ASSERT_FALSE(report.ok());
  EXPECT_EQ(report.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(report.status().message(), "dying at 1/2: a != b");
}

TEST(DeathTestHarnessTest, ReportsTheFirstFailingDiePoint) {
  SKIP_IF_UNSUPPORTED();
  DeathTestOptions options;
  options.region_size_bytes = 64;
  options.run = [](void* region) {
    WriteField(region, 0, 1);
    WriteField(region, 1, 1);
    WriteField(region, 2, 1);  // Breaks the invariant until field 3 is set.
    WriteField(region, 3, 1);
  };
  options.check = [](void* region) -> absl::Status {
    if (ReadField(region, 2) != ReadField(region, 3)) {
      return absl::InternalError("c != d");
    }
    return absl::OkStatus();
  };
  absl::StatusOr<DeathTestReport> report = RunDeathTest(options);
  ASSERT_FALSE(report.ok());
  EXPECT_EQ(report.status().message(), "dying at 3/4: c != d");
}

TEST(DeathTestHarnessTest, RobustCommitProtocolPasses) {
  SKIP_IF_UNSUPPORTED();
  // Layout: [0] data, [1] commit flag. The data is written first, then the
  // flag (release store: pairs with the acquire load in check).
  DeathTestOptions options;
  options.region_size_bytes = 16;
  options.run = [](void* region) {
    WriteField(region, 0, 1234);
    reinterpret_cast<std::atomic<uint64_t>*>(static_cast<uint64_t*>(region) + 1)
        ->store(1, std::memory_order_release);
  };
  options.check = [](void* region) -> absl::Status {
    const uint64_t committed = reinterpret_cast<std::atomic<uint64_t>*>(
                                   static_cast<uint64_t*>(region) + 1)
                                   ->load(std::memory_order_acquire);
    if (committed && ReadField(region, 0) != 1234) {
      return absl::InternalError("committed without data");
    }
    return absl::OkStatus();
  };
  absl::StatusOr<DeathTestReport> report = RunDeathTest(options);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_THAT(report->write_offsets, ElementsAre(0, 8));
  EXPECT_EQ(report->die_points_tested, 2u);
}

TEST(DeathTestHarnessTest, FunctionWithoutWritesRunsOnce) {
  SKIP_IF_UNSUPPORTED();
  int checks = 0;
  DeathTestOptions options;
  options.region_size_bytes = 8;
  options.run = [](void* region) { (void)ReadField(region, 0); };
  options.check = [&checks](void*) {
    ++checks;
    return absl::OkStatus();
  };
  absl::StatusOr<DeathTestReport> report = RunDeathTest(options);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->writes_recorded, 0u);
  EXPECT_EQ(report->die_points_tested, 0u);
  EXPECT_EQ(checks, 1);
}

// A page shared with every child, outside the traced region: lets `run`
// behave differently on each run.
class SharedCounter {
 public:
  SharedCounter() {
    void* memory = mmap(nullptr, 4096, PROT_READ | PROT_WRITE,
                        MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (memory == MAP_FAILED) abort();
    counter_ = static_cast<std::atomic<uint32_t>*>(memory);
  }
  ~SharedCounter() { munmap(counter_, 4096); }
  // Relaxed: children run one at a time, ordered by fork/waitpid.
  uint32_t Next() { return counter_->fetch_add(1, std::memory_order_relaxed); }

 private:
  std::atomic<uint32_t>* counter_;
};

TEST(DeathTestHarnessTest, DetectsWriteOrderDifferingBetweenRuns) {
  SKIP_IF_UNSUPPORTED();
  SharedCounter counter;
  DeathTestOptions options;
  options.region_size_bytes = 4096;
  options.run = [&counter](void* region) {
    WriteField(region, static_cast<int>(counter.Next()), 1);
  };
  absl::StatusOr<DeathTestReport> report = RunDeathTest(options);
  ASSERT_FALSE(report.ok());
  EXPECT_EQ(report.status().message(),
            "dying at 1/1: write order differs between runs at write 1: "
            "expected offset 0 got 8; run must be deterministic");
}

TEST(DeathTestHarnessTest, DetectsExtraWritesInReplay) {
  SKIP_IF_UNSUPPORTED();
  SharedCounter counter;
  DeathTestOptions options;
  options.region_size_bytes = 4096;
  // One write when recording, two afterwards.
  options.run = [&counter](void* region) {
    const uint32_t run = counter.Next();
    WriteField(region, 0, 1);
    if (run > 0) WriteField(region, 1, 1);
  };
  absl::StatusOr<DeathTestReport> report = RunDeathTest(options);
  ASSERT_FALSE(report.ok());
  // Die point 1 dies before the extra write; the final run hits it.
  EXPECT_THAT(report.status().message(),
              HasSubstr("after completing all 1 writes (no death): write "
                        "order differs between runs at write 2"));
}

TEST(DeathTestHarnessTest, DetectsFewerWritesInReplay) {
  SKIP_IF_UNSUPPORTED();
  SharedCounter counter;
  DeathTestOptions options;
  options.region_size_bytes = 4096;
  options.run = [&counter](void* region) {
    const uint32_t run = counter.Next();
    WriteField(region, 0, 1);
    if (run == 0) WriteField(region, 1, 1);
  };
  absl::StatusOr<DeathTestReport> report = RunDeathTest(options);
  ASSERT_FALSE(report.ok());
  EXPECT_THAT(report.status().message(),
              HasSubstr("dying at 2/2: write order differs between runs: "
                        "child completed after 1 writes"));
}

TEST(DeathTestHarnessTest, ReportsAChildCrash) {
  SKIP_IF_UNSUPPORTED();
  DeathTestOptions options;
  options.region_size_bytes = 64;
  options.run = [](void* region) {
    WriteField(region, 0, 1);
    // A store to an inaccessible page (not a null pointer, which UBSan would
    // catch first under --config=asan).
    void* page =
        mmap(nullptr, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    *static_cast<volatile uint64_t*>(page) = 1;
  };
  absl::StatusOr<DeathTestReport> report = RunDeathTest(options);
  ASSERT_FALSE(report.ok());
  EXPECT_THAT(report.status().message(),
              HasSubstr("recording run: child crashed with signal 11"));
  EXPECT_THAT(report.status().message(), HasSubstr("after 1 writes"));
}

TEST(DeathTestHarnessTest, ReportsAHungChild) {
  SKIP_IF_UNSUPPORTED();
  DeathTestOptions options;
  options.region_size_bytes = 64;
  options.child_timeout_seconds = 1;
  options.run = [](void* region) {
    WriteField(region, 0, 1);
    for (;;) pause();
  };
  absl::StatusOr<DeathTestReport> report = RunDeathTest(options);
  ASSERT_FALSE(report.ok());
  EXPECT_EQ(report.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_THAT(report.status().message(),
              HasSubstr("recording run: child timed out after 1 s"));
}

TEST(DeathTestHarnessTest, ReportsAnException) {
  SKIP_IF_UNSUPPORTED();
  DeathTestOptions options;
  options.region_size_bytes = 64;
  options.run = [](void*) { throw std::runtime_error("boom"); };
  absl::StatusOr<DeathTestReport> report = RunDeathTest(options);
  ASSERT_FALSE(report.ok());
  EXPECT_THAT(report.status().message(), HasSubstr("threw an exception"));
}

TEST(DeathTestHarnessTest, EnforcesMaxDiePoints) {
  SKIP_IF_UNSUPPORTED();
  DeathTestOptions options;
  options.region_size_bytes = 64;
  options.max_die_points = 2;
  options.run = [](void* region) {
    for (int i = 0; i < 3; ++i) WriteField(region, i, 1);
  };
  absl::StatusOr<DeathTestReport> report = RunDeathTest(options);
  ASSERT_FALSE(report.ok());
  EXPECT_EQ(report.status().code(), absl::StatusCode::kResourceExhausted);
}

TEST(DeathTestHarnessTest, RejectsBadOptions) {
  DeathTestOptions options;
  options.run = [](void*) {};
  EXPECT_EQ(RunDeathTest(options).status().code(),
            absl::StatusCode::kInvalidArgument);
  options.region_size_bytes = 8;
  options.run = nullptr;
  EXPECT_EQ(RunDeathTest(options).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(DeathTestHarnessTest, EmulatesOwnerDiedForPlainFutexWords) {
  SKIP_IF_UNSUPPORTED();
  // A futex word written with plain stores (no robust list, so the kernel
  // never marks it): the parent must mark it for die points where the child
  // still "owns" it, and leave it alone after the release.
  int checks = 0;
  DeathTestOptions options;
  options.region_size_bytes = 64;
  options.run = [](void* region) {
    auto* word = static_cast<std::atomic<uint32_t>*>(region);
    word->store(static_cast<uint32_t>(getpid()) | kFutexWaiters,
                std::memory_order_relaxed);
    word->store(0, std::memory_order_release);
  };
  options.robust_futex_words = [](void* region) {
    return std::vector<std::atomic<uint32_t>*>{
        static_cast<std::atomic<uint32_t>*>(region)};
  };
  options.check = [&checks](void* region) -> absl::Status {
    const int n = ++checks;
    const uint32_t word = static_cast<std::atomic<uint32_t>*>(region)->load();
    const uint32_t expected = n == 1 ? (kFutexWaiters | kFutexOwnerDied) : 0;
    if (word != expected) {
      return absl::InternalError(absl::StrCat("word is ", word));
    }
    return absl::OkStatus();
  };
  absl::StatusOr<DeathTestReport> report = RunDeathTest(options);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->owner_died_emulated, 1u);
}

// A mutex-protected update in the region: the harness must open the futex
// word around each library write (observers) and route the kernel's
// death-time robust-list walk to the twin mapping (offset). Death while
// holding the mutex must make the parent's Lock return kOwnerDied; death
// before the lock or after the unlock must not.
struct GuardedCounter {
  RobustMutex mutex;
  uint64_t value;
};

TEST(DeathTestHarnessTest, RobustMutexDeathMarksOwnerDied) {
  SKIP_IF_UNSUPPORTED();
  std::vector<LockResult> results;
  DeathTestOptions options;
  options.region_size_bytes = sizeof(GuardedCounter);
  options.run = [](void* region) {
    auto* counter = static_cast<GuardedCounter*>(region);
    if (counter->mutex.Lock() != LockResult::kAcquired) abort();
    static_cast<volatile uint64_t&>(counter->value) = counter->value + 1;
    counter->mutex.Unlock();
  };
  options.robust_futex_words = [](void* region) {
    return std::vector<std::atomic<uint32_t>*>{
        &static_cast<GuardedCounter*>(region)->mutex.futex};
  };
  options.check = [&results](void* region) -> absl::Status {
    auto* counter = static_cast<GuardedCounter*>(region);
    const LockResult result = counter->mutex.Lock();
    results.push_back(result);
    if (result == LockResult::kError) {
      return absl::InternalError(
          absl::StrCat("Lock failed, word ", counter->mutex.RawOwnerWord()));
    }
    counter->mutex.Unlock();
    return absl::OkStatus();
  };
  absl::StatusOr<DeathTestReport> report = RunDeathTest(options);
  ASSERT_TRUE(report.ok()) << report.status();

  // The futex word is at offset 0; the list links are written through the
  // twin, so they are not traced. The first futex write is the lock, the
  // last the unlock; the value is written in between.
  const std::vector<uint64_t>& offsets = report->write_offsets;
  ASSERT_GE(offsets.size(), 3u);
  EXPECT_EQ(offsets.front(), 0u);
  EXPECT_EQ(offsets.back(), 0u);
  EXPECT_NE(std::find(offsets.begin(), offsets.end(),
                      offsetof(GuardedCounter, value)),
            offsets.end());
  for (uint64_t offset : offsets) {
    EXPECT_TRUE(offset == 0 || offset == offsetof(GuardedCounter, value))
        << offset;
  }
  // Die point n (1-based) dies after write n: the mutex is held from the lock
  // (write 1) until the unlock (the last write). The final run completes.
  ASSERT_EQ(results.size(), offsets.size() + 1);
  for (size_t n = 1; n <= results.size(); ++n) {
    const LockResult expected =
        n < offsets.size() ? LockResult::kOwnerDied : LockResult::kAcquired;
    EXPECT_EQ(results[n - 1], expected) << "die point " << n;
  }
  // The kernel marked the dead owner itself, through the twin mapping.
  EXPECT_EQ(report->owner_died_emulated, 0u);
}

}  // namespace
}  // namespace lockless::testing
