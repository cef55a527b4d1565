// The chaos suite: real processes sending on one channel while a supervisor
// SIGKILLs them at random (alone and several at once), replaces them at once,
// and SIGSTOPs some mid-send; a reader checks every message it reads, and at
// the end every slot must be claimable, every message owned exactly once,
// and the ring readable. See testing/chaos_supervisor.h for the workload.
//
// Flags (the defaults take ~12 s):
//   --chaos_duration_s   seconds of chaos per case (default 6)
//   --chaos_seed         seed of the supervisor's choices (0: time-based,
//                        printed so a failure's workload can be replayed as
//                        closely as timing allows)
//   --chaos_hang_s       a child without progress for this long is a hang
//   --chaos_max_stop_ms  longest SIGSTOP of a sender
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <vector>

#include "gflags/gflags.h"
#include "gtest/gtest.h"
#include "testing/chaos_payload.h"
#include "testing/chaos_supervisor.h"

DEFINE_double(chaos_duration_s, 6, "Seconds of chaos per test case.");
DEFINE_uint64(chaos_seed, 1, "Seed of the supervisor (0 = time-based).");
DEFINE_int32(chaos_hang_s, 20,
             "A child that makes no progress for this many seconds is "
             "killed by its watchdog and reported as a hang.");
DEFINE_int32(chaos_max_stop_ms, 2000, "Longest SIGSTOP of a sender.");

namespace lockless {
namespace testing {
namespace {

ChaosOptions OptionsFromFlags() {
  ChaosOptions options;
  options.duration = std::chrono::milliseconds(
      static_cast<int64_t>(FLAGS_chaos_duration_s * 1000));
  options.seed = FLAGS_chaos_seed;
  if (options.seed == 0) {
    options.seed = static_cast<uint64_t>(
        std::chrono::steady_clock::now().time_since_epoch().count());
  }
  options.hang_s = FLAGS_chaos_hang_s;
  options.max_stop_ms = FLAGS_chaos_max_stop_ms;
  return options;
}

void RunAndCheck(const ChaosOptions& options) {
  absl::StatusOr<ChaosReport> report = RunChaos(options);
  ASSERT_TRUE(report.ok()) << report.status();
  std::printf("%s", FormatChaosReport(*report).c_str());
  std::fflush(stdout);
  // What the queue promises.
  EXPECT_TRUE(report->failures.empty()) << "see FAILURES above";
  EXPECT_EQ(report->final_claims, report->num_sender_slots);
  EXPECT_EQ(report->final_ring_good, options.queue_size);
  EXPECT_TRUE(report->ownership_ok);
  // That the chaos really happened.
  EXPECT_GT(report->kills, 0u);
  EXPECT_GT(report->senders_made, 0u);
  EXPECT_GT(report->messages_sent, options.queue_size);
  EXPECT_GT(report->good_reads, 0u);
}

// The reader's checks are only as good as the payload check: every byte of
// a message matters, and so does its length.
TEST(ChaosPayloadTest, EveryByteAndTheLengthAreChecked) {
  std::vector<unsigned char> message(128);
  for (uint32_t stream = 0; stream < 5; ++stream) {
    for (uint64_t sequence = 0; sequence < 50; ++sequence) {
      const size_t length =
          FillChaosMessage(stream, sequence, message.data(), message.size());
      ASSERT_GE(length, kChaosHeaderBytes);
      ASSERT_LE(length, message.size());
      absl::StatusOr<ChaosMessageId> id =
          CheckChaosMessage(message.data(), length);
      ASSERT_TRUE(id.ok()) << id.status();
      EXPECT_EQ(id->stream, stream);
      EXPECT_EQ(id->sequence, sequence);
      for (size_t at = 0; at < length; ++at) {
        message[at] ^= 0x10;
        EXPECT_FALSE(CheckChaosMessage(message.data(), length).ok())
            << "byte " << at << " of " << length;
        message[at] ^= 0x10;
      }
      EXPECT_FALSE(CheckChaosMessage(message.data(), length - 1).ok());
      if (length < message.size()) {
        EXPECT_FALSE(CheckChaosMessage(message.data(), length + 1).ok());
      }
    }
  }
}

TEST(ChaosPayloadTest,
     OrderCheckerRejectsRepeatsUnknownStreamsAndTimeGoingBack) {
  RingOrderChecker order;
  MessageInfo info;
  info.monotonic_sent_time =
      std::chrono::steady_clock::time_point(std::chrono::seconds(10));
  EXPECT_TRUE(order.Observe(info, {1, 5}, 2).ok());
  EXPECT_TRUE(order.Observe(info, {0, 0}, 2).ok());
  EXPECT_TRUE(order.Observe(info, {1, 9}, 2).ok());  // Gaps are fine.
  EXPECT_FALSE(order.Observe(info, {1, 9}, 2).ok());
  EXPECT_FALSE(order.Observe(info, {1, 7}, 2).ok());
  EXPECT_FALSE(order.Observe(info, {2, 0}, 2).ok());
  info.monotonic_sent_time -= std::chrono::nanoseconds(1);
  EXPECT_FALSE(order.Observe(info, {0, 1}, 2).ok());
}

// Three single-threaded sender processes on two spare slots.
TEST(ChaosTest, SingleThreadedSenders) {
  ChaosOptions options = OptionsFromFlags();
  options.sender_processes = 3;
  options.threads_per_process = 1;
  options.spare_sender_slots = 2;
  RunAndCheck(options);
}

// Two processes of three senders each: every kill takes three senders at
// once, each possibly mid-send.
TEST(ChaosTest, MultiThreadedSenders) {
  ChaosOptions options = OptionsFromFlags();
  options.sender_processes = 2;
  options.threads_per_process = 3;
  options.spare_sender_slots = 3;
  options.seed += 1;
  RunAndCheck(options);
}

}  // namespace
}  // namespace testing
}  // namespace lockless

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  ::gflags::ParseCommandLineFlags(&argc, &argv, /*remove_flags=*/true);
  return RUN_ALL_TESTS();
}
