// Multithreaded races on one LocklessQueue (DESIGN.md section 9), driven by
// QueueRacer. The defaults finish in seconds (also under TSan); for a soak run
// pass e.g. --race_duration_s=600 --race_threads=8, which keeps every case
// iterating until the time is up.
//
// Flags:
//   --race_threads              writer threads (default 4, on purpose more
//                               than the cores of a small machine)
//   --race_iterations           iterations per case when not soaking
//   --race_messages_per_thread  messages per writer per iteration
//   --race_duration_s           0: use --race_iterations; else iterate each
//                               case until this many seconds passed
//   --race_seed                 seed of the random-mix case (0: time-based,
//                               printed so a failure can be replayed)
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <random>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "gflags/gflags.h"
#include "gtest/gtest.h"
#include "ipc/lockless_queue.h"
#include "ipc/queue_config.h"
#include "testing/queue_racer.h"

DEFINE_int32(race_threads, 4, "Writer threads per race.");
DEFINE_int32(race_iterations, 6, "Iterations per case (if not soaking).");
DEFINE_uint64(race_messages_per_thread, 3000,
              "Messages each writer sends per iteration.");
DEFINE_double(race_duration_s, 0,
              "If > 0, iterate each case until this many seconds passed "
              "instead of --race_iterations times (soak mode).");
DEFINE_uint64(race_seed, 1, "Seed of the random mix (0 = time-based).");

namespace lockless {
namespace testing {
namespace {

// Calls `iteration(i)` --race_iterations times, or until --race_duration_s
// elapsed (at least once). The clock only decides when to stop iterating;
// nothing asserts on it.
template <typename F>
void Repeat(F iteration) {
  if (FLAGS_race_duration_s <= 0) {
    for (int i = 0; i < FLAGS_race_iterations; ++i) {
      iteration(i);
      if (::testing::Test::HasFatalFailure()) return;
    }
    return;
  }
  const auto deadline =
      std::chrono::steady_clock::now() +
      std::chrono::duration_cast<std::chrono::steady_clock::duration>(
          std::chrono::duration<double>(FLAGS_race_duration_s));
  int i = 0;
  do {
    iteration(i++);
    if (::testing::Test::HasFatalFailure()) return;
  } while (std::chrono::steady_clock::now() < deadline);
  std::printf("soak: %d iterations\n", i);
}

QueueConfig RaceConfig(uint32_t queue_size, int num_threads) {
  QueueConfig config;
  config.num_watchers = 0;
  config.num_senders = static_cast<uint32_t>(num_threads);
  config.queue_size = queue_size;
  config.message_data_size_bytes = 48;
  return config;
}

// One queue in its own memory, plus a racer on it.
class RaceFixture {
 public:
  RaceFixture(uint32_t queue_size, int num_threads,
              uint64_t messages_per_thread)
      : config_(RaceConfig(queue_size, num_threads)), memory_(config_) {
    absl::StatusOr<LocklessQueue> queue =
        LocklessQueue::Attach(memory_.data(), memory_.size_bytes(), config_);
    EXPECT_TRUE(queue.ok()) << queue.status();
    if (!queue.ok()) return;
    queue_.emplace(*queue);
    RacerOptions options;
    options.num_threads = num_threads;
    options.num_messages_per_thread = messages_per_thread;
    racer_.emplace(*queue_, options);
  }

  bool ok() const { return racer_.has_value(); }
  QueueRacer& racer() { return *racer_; }

 private:
  QueueConfig config_;
  QueueMemory memory_;
  std::optional<LocklessQueue> queue_;
  std::optional<QueueRacer> racer_;
};

// One line per case, so a soak log shows what the races looked like.
void PrintStats(const QueueRacer& racer) {
  const RacerStats& stats = racer.last_stats();
  std::printf(
      "last iteration: %llu sent; read after: %llu GOOD, %llu TOO_OLD; read "
      "racing: %llu GOOD, %llu TOO_OLD, %llu NOTHING_NEW waits; %llu "
      "LatestQueueIndex polls%s\n",
      static_cast<unsigned long long>(stats.messages_sent),
      static_cast<unsigned long long>(stats.good_reads),
      static_cast<unsigned long long>(stats.too_old_reads),
      static_cast<unsigned long long>(stats.racing_good_reads),
      static_cast<unsigned long long>(stats.racing_too_old_reads),
      static_cast<unsigned long long>(stats.nothing_new_spins),
      static_cast<unsigned long long>(stats.polls),
      stats.wrapped ? ", wrapped" : "");
}

uint64_t Messages() { return FLAGS_race_messages_per_thread; }
int Threads() { return FLAGS_race_threads; }

// Big enough that `threads * messages` does not wrap.
uint32_t NoWrapQueueSize(int threads, uint64_t messages) {
  return static_cast<uint32_t>(threads * messages + 7);
}

TEST(RaceTest, SingleSenderNoWrap) {
  RaceFixture fixture(NoWrapQueueSize(1, Messages()), 1, Messages());
  ASSERT_TRUE(fixture.ok());
  Repeat([&](int) {
    ASSERT_FALSE(fixture.racer().Wraps(0));
    const absl::Status status =
        fixture.racer().RunIteration(/*race_reads=*/false,
                                     /*write_wrap_count=*/0);
    ASSERT_TRUE(status.ok()) << status;
    EXPECT_EQ(fixture.racer().last_stats().good_reads, Messages());
  });
  if (fixture.ok()) PrintStats(fixture.racer());
}

TEST(RaceTest, SingleSenderRacingReads) {
  RaceFixture fixture(NoWrapQueueSize(1, Messages()), 1, Messages());
  ASSERT_TRUE(fixture.ok());
  Repeat([&](int) {
    const absl::Status status =
        fixture.racer().RunIteration(/*race_reads=*/true,
                                     /*write_wrap_count=*/0);
    ASSERT_TRUE(status.ok()) << status;
  });
  if (fixture.ok()) PrintStats(fixture.racer());
}

TEST(RaceTest, ManySendersNoWrap) {
  RaceFixture fixture(NoWrapQueueSize(Threads(), Messages()), Threads(),
                      Messages());
  ASSERT_TRUE(fixture.ok());
  Repeat([&](int) {
    ASSERT_FALSE(fixture.racer().Wraps(0));
    const absl::Status status =
        fixture.racer().RunIteration(/*race_reads=*/false,
                                     /*write_wrap_count=*/0);
    ASSERT_TRUE(status.ok()) << status;
    EXPECT_EQ(fixture.racer().last_stats().good_reads,
              fixture.racer().TotalMessages(0));
  });
  if (fixture.ok()) PrintStats(fixture.racer());
}

TEST(RaceTest, ManySendersRacingReads) {
  RaceFixture fixture(NoWrapQueueSize(Threads(), Messages()), Threads(),
                      Messages());
  ASSERT_TRUE(fixture.ok());
  Repeat([&](int) {
    const absl::Status status =
        fixture.racer().RunIteration(/*race_reads=*/true,
                                     /*write_wrap_count=*/0);
    ASSERT_TRUE(status.ok()) << status;
  });
  if (fixture.ok()) PrintStats(fixture.racer());
}

// A ring a tenth of the iteration: several laps per iteration.
class WrapRaceTest : public ::testing::TestWithParam<bool> {};

TEST_P(WrapRaceTest, SeveralLaps) {
  const bool race_reads = GetParam();
  const uint32_t queue_size =
      std::max<uint32_t>(10, static_cast<uint32_t>(Threads() * Messages() / 10));
  RaceFixture fixture(queue_size, Threads(), Messages());
  ASSERT_TRUE(fixture.ok());
  Repeat([&](int i) {
    const int wrap_count = 1 + i % 3;
    ASSERT_TRUE(fixture.racer().Wraps(wrap_count));
    const absl::Status status =
        fixture.racer().RunIteration(race_reads, wrap_count);
    ASSERT_TRUE(status.ok()) << status;
    const RacerStats& stats = fixture.racer().last_stats();
    EXPECT_TRUE(stats.wrapped);
    EXPECT_EQ(stats.good_reads, queue_size);
    EXPECT_EQ(stats.too_old_reads, stats.messages_sent - queue_size);
  });
  if (fixture.ok()) PrintStats(fixture.racer());
}

INSTANTIATE_TEST_SUITE_P(ReadsAfterOrRacing, WrapRaceTest, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& info) {
                           return info.param ? "RacingReads" : "ReadsAfter";
                         });

// queue_size 1 and 2: every send replaces the slot a concurrent sender is
// about to take, and the racing reader is almost always too old.
class SmallQueueRaceTest : public ::testing::TestWithParam<uint32_t> {};

TEST_P(SmallQueueRaceTest, Stress) {
  const uint32_t queue_size = GetParam();
  RaceFixture fixture(queue_size, Threads(), Messages());
  ASSERT_TRUE(fixture.ok());
  Repeat([&](int i) {
    const absl::Status status =
        fixture.racer().RunIteration(/*race_reads=*/i % 2 == 0,
                                     /*write_wrap_count=*/i % 2);
    ASSERT_TRUE(status.ok()) << status;
    EXPECT_EQ(fixture.racer().last_stats().good_reads, queue_size);
  });
  if (fixture.ok()) PrintStats(fixture.racer());
}

INSTANTIATE_TEST_SUITE_P(QueueSize, SmallQueueRaceTest,
                         ::testing::Values(1u, 2u));

// A seeded random mix of racing reads and wrap counts on one queue whose ring
// is about the size of an iteration, so some iterations wrap and some do not.
TEST(RaceTest, RandomMix) {
  uint64_t seed = FLAGS_race_seed;
  if (seed == 0) {
    seed = static_cast<uint64_t>(
        std::chrono::steady_clock::now().time_since_epoch().count());
  }
  std::printf("RandomMix: --race_seed=%llu\n",
              static_cast<unsigned long long>(seed));
  std::mt19937_64 random(seed);
  const int threads = Threads();
  const uint64_t messages = Messages();
  const uint32_t queue_size = static_cast<uint32_t>(threads * messages);
  RaceFixture fixture(queue_size, threads, messages / 2 + 1);
  ASSERT_TRUE(fixture.ok());
  Repeat([&](int i) {
    const bool race_reads = random() % 2 == 0;
    const int wrap_count = static_cast<int>(random() % 3);
    SCOPED_TRACE(::testing::Message() << "iteration " << i << ", race_reads "
                                    << race_reads << ", wrap_count "
                                    << wrap_count << ", seed " << seed);
    const absl::Status status =
        fixture.racer().RunIteration(race_reads, wrap_count);
    ASSERT_TRUE(status.ok()) << status;
  });
  if (fixture.ok()) PrintStats(fixture.racer());
}

}  // namespace
}  // namespace testing
}  // namespace lockless

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  ::gflags::ParseCommandLineFlags(&argc, &argv, /*remove_flags=*/true);
  return RUN_ALL_TESTS();
}
