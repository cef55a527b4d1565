// Sender recovery under concurrent deaths, stops and recoveries, explored one
// shared-memory write at a time (testing/interleaving_explorer.h).
//
// Named schedules replay the two traces that broke the previous recovery;
// the random exploration runs --explorer_schedules seeded schedules.
//
// Flags:
//   --explorer_seed          first seed (schedule i uses seed + i); 0 picks
//                            one from the clock and prints it
//   --explorer_schedules     random schedules to run
//   --explorer_max_failures  stop after this many failing schedules (each is
//                            printed with its seed and its action list)
//   --explorer_max_kills, --explorer_max_stops, --explorer_max_recoverers
//                            caps on what a random schedule may contain
//   --explorer_pinner_schedules, --explorer_pinner_seed,
//   --explorer_max_pinners   the same for schedules with pinner actors
//   --explorer_blocked_ms    bound after which an actor that does not stop
//                            is treated as blocked (a scheduling decision)
//
// Replaying a failure: the log names its seed; run
//   ./bazelw test //testing:interleaving_explorer_test
//     --test_arg=--explorer_seed=<seed> --test_arg=--explorer_schedules=1
//     --test_filter='*RandomSchedules' --test_output=all
#include "testing/interleaving_explorer.h"

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>

#include "absl/status/statusor.h"
#include "gflags/gflags.h"
#include "gtest/gtest.h"

DEFINE_uint64(explorer_seed, 1, "First seed (0 = from the clock, printed).");
DEFINE_int32(explorer_schedules, 2500, "Random schedules to run.");
DEFINE_int32(explorer_max_failures, 1,
             "Stop exploring after this many failing schedules.");
DEFINE_int32(explorer_max_kills, 4, "Most kills in one random schedule.");
DEFINE_int32(explorer_max_stops, 2, "Most stops in one random schedule.");
DEFINE_int32(explorer_max_recoverers, 3,
             "Most recoverers in one random schedule.");
DEFINE_int32(explorer_pinner_schedules, 300,
             "Random schedules with pinner actors to run.");
DEFINE_uint64(explorer_pinner_seed, 500000,
              "First seed of the schedules with pinners.");
DEFINE_int32(explorer_max_pinners, 2, "Most pinners in one random schedule.");
DEFINE_int32(explorer_blocked_ms, 2000,
             "An actor that neither stops nor exits this long is treated as "
             "blocked (a scheduling decision, never a check).");

namespace lockless::testing {
namespace {

#define SKIP_IF_UNSUPPORTED()                                          \
  do {                                                                 \
    if (!InterleavingExplorerSupported()) {                            \
      GTEST_SKIP() << "the explorer needs x86-64 trap-flag stepping";  \
    }                                                                  \
  } while (false)

ExplorerLimits Limits() {
  ExplorerLimits limits;
  limits.blocked_ms = FLAGS_explorer_blocked_ms;
  return limits;
}

// Runs `schedule` and expects every check to pass; prints the trace either
// way (it is the readable record of what the named schedule does).
void ExpectPasses(const ExplorerScenario& scenario,
                  const ExplicitSchedule& schedule) {
  absl::StatusOr<ScheduleOutcome> outcome =
      RunExplicitSchedule(scenario, schedule, Limits());
  ASSERT_TRUE(outcome.ok()) << outcome.status();
  std::printf("%s\n", outcome->Describe().c_str());
  EXPECT_FALSE(outcome->failed()) << outcome->failure;
}

// Trace 1. Three senders on a small ring. D (s0) and L (s1) both read the
// same ring slot for the same queue index; D publishes it and dies before
// taking the replaced message, L records that same entry as its to_replace
// (stale: its CAS would fail) and stops before its CAS. A recoverer starts
// and, while it recovers, L dies. The previous recovery counted L's stale
// to_replace as ownership, so D looked ambiguous; it waited for L, which was
// dead and never moved, and after 100000 scans (~5-11 s) MakeSender
// returned DATA_LOSS on a healthy channel.
ExplicitSchedule TraceOne() {
  const ActorRef d = SenderActor(0);
  const ActorRef l = SenderActor(1);
  const ActorRef recoverer = RecovererActor(0);
  return ExplicitSchedule()
      // L has read next_queue_index and its target slot: it stops before
      // its first write after those reads (stamping the send time).
      .StepUntil(l, BeforeWriteTo(RegionPlace::kMessageTime))
      // D publishes the same index (its ring CAS) and advances
      // next_queue_index, then dies before taking the replaced message.
      .StepUntil(d, BeforeWriteTo(RegionPlace::kRing))
      .Step(d)
      .StepUntil(d, BeforeWriteTo(RegionPlace::kSenderScratch, 0))
      .Kill(d)
      // L records its stale to_replace and stops before its (failing) CAS.
      .StepUntil(l, BeforeWriteTo(RegionPlace::kRing))
      .StartRecoverer()
      // The recovery is under way: it has looked at the senders at least
      // once. (The previous recovery, with a pass hook, is then at its
      // second scan; the new one decides D from its ring slot and is about
      // to write D's slot; a recovery with no pass hook and no write to
      // make runs blocked from here.)
      .StepUntil(recoverer,
                 AnyOf(AtRecoveryPass(2),
                       AnyOf(BeforeWriteTo(RegionPlace::kSenderScratch, 0),
                             BeforeWriteTo(RegionPlace::kSenderToReplace, 0))))
      .Kill(l);
}

ExplorerScenario TraceOneScenario() {
  ExplorerScenario scenario;
  scenario.queue_size = 4;
  scenario.sends = {1, 1, 1};
  scenario.max_recoverers = 1;
  return scenario;
}

TEST(InterleavingExplorerTest, TraceOneLiveSenderDiesDuringRecovery) {
  SKIP_IF_UNSUPPORTED();
  ExpectPasses(TraceOneScenario(), TraceOne());
}

// Trace 2, queue_size 4, seven messages sent before (slot 3 holds index 3).
// L (s0) loads slot 3 for index 7 and passes its checks; D (s1) publishes 7
// and takes slot 3's old message as its scratch; L records that message's
// entry as to_replace and stops before its CAS (which would fail). D starts
// index 8 (intent recorded, to_replace = slot 0's entry for index 4) and
// dies before its CAS; D2 (s2) wins index 8 and dies before taking slot 0's
// old message as scratch. Then a new MakeSender. The previous recovery took
// L's stale to_replace as ownership, decided D wrongly (gave it the message
// D2 owns; the truth check fails right at that write), then could not
// decide D2: DATA_LOSS, dead slots left locked.
ExplicitSchedule TraceTwo(EndOfStops end) {
  const ActorRef l = SenderActor(0);
  const ActorRef d = SenderActor(1);
  const ActorRef d2 = SenderActor(2);
  return ExplicitSchedule()
      .StepUntil(l, BeforeWriteTo(RegionPlace::kMessageTime))
      .StepUntil(d, AfterSends(1))
      .StepUntil(l, BeforeWriteTo(RegionPlace::kRing))
      .Stop(l)
      .StepUntil(d, BeforeWriteTo(RegionPlace::kRing))
      .Kill(d)
      .StepUntil(d2, BeforeWriteTo(RegionPlace::kRing))
      .Step(d2)
      .StepUntil(d2, BeforeWriteTo(RegionPlace::kSenderScratch, 2))
      .Kill(d2)
      .StartRecoverer()
      .ThenStopped(end);
}

ExplorerScenario TraceTwoScenario() {
  ExplorerScenario scenario;
  scenario.queue_size = 4;
  scenario.setup_sends = 7;
  scenario.sends = {1, 2, 1};
  scenario.max_recoverers = 1;
  return scenario;
}

TEST(InterleavingExplorerTest, TraceTwoStaleToReplaceThenResumed) {
  SKIP_IF_UNSUPPORTED();
  ExpectPasses(TraceTwoScenario(), TraceTwo(EndOfStops::kResume));
}

TEST(InterleavingExplorerTest, TraceTwoStaleToReplaceThenKilled) {
  SKIP_IF_UNSUPPORTED();
  ExpectPasses(TraceTwoScenario(), TraceTwo(EndOfStops::kKill));
}

// The checks have teeth: a sender that rewrites a byte of a message it has
// published is caught at the next checkpoint, as a torn GOOD read.
TEST(InterleavingExplorerTest, CatchesAPayloadChangedAfterPublishing) {
  SKIP_IF_UNSUPPORTED();
  ExplorerScenario scenario;
  scenario.sends = {1, 1};
  scenario.sabotage_published_payload = true;
  absl::StatusOr<ScheduleOutcome> outcome =
      RunExplicitSchedule(scenario, ExplicitSchedule(), Limits());
  ASSERT_TRUE(outcome.ok()) << outcome.status();
  ASSERT_TRUE(outcome->failed()) << outcome->Describe();
  EXPECT_NE(outcome->failure.find("torn or foreign"), std::string::npos)
      << outcome->failure;
}

// The same seed gives the same schedule, write for write (recoverers left
// out: their recovery's wall-clock deadline may end a pass loop at a
// different pass).
TEST(InterleavingExplorerTest, RandomSchedulesReplayExactly) {
  SKIP_IF_UNSUPPORTED();
  RandomScheduleOptions options;
  options.max_recoverers = 0;
  options.limits = Limits();
  for (uint64_t seed = 100; seed < 110; ++seed) {
    absl::StatusOr<ScheduleOutcome> first = RunRandomSchedule(seed, options);
    absl::StatusOr<ScheduleOutcome> second = RunRandomSchedule(seed, options);
    ASSERT_TRUE(first.ok()) << first.status();
    ASSERT_TRUE(second.ok()) << second.status();
    EXPECT_FALSE(first->failed()) << first->Describe();
    EXPECT_EQ(first->trace, second->trace) << "seed " << seed;
  }
}

// Runs `count` random schedules from `seed` with `options`, adding their
// statistics to `total` and counting failures (each reported with the flags
// that replay it: --<flag_prefix>_seed=S --<flag_prefix>_schedules=1); stops
// after --explorer_max_failures.
void RunSchedules(uint64_t seed, int count,
                  const RandomScheduleOptions& options,
                  const char* flag_prefix, ExplorerStats* total,
                  int* failures) {
  for (int i = 0; i < count; ++i) {
    const uint64_t schedule_seed = seed + static_cast<uint64_t>(i);
    absl::StatusOr<ScheduleOutcome> outcome =
        RunRandomSchedule(schedule_seed, options);
    ASSERT_TRUE(outcome.ok()) << "seed " << schedule_seed << ": "
                              << outcome.status();
    total->Add(outcome->stats);
    if (outcome->failed()) {
      ++*failures;
      ADD_FAILURE() << "schedule " << i << " failed; replay with --"
                    << flag_prefix << "_seed=" << schedule_seed << " --"
                    << flag_prefix << "_schedules=1\n"
                    << outcome->Describe();
      if (*failures >= FLAGS_explorer_max_failures) return;
    }
  }
}

TEST(InterleavingExplorerTest, RandomSchedules) {
  SKIP_IF_UNSUPPORTED();
  uint64_t seed = FLAGS_explorer_seed;
  if (seed == 0) {
    seed = static_cast<uint64_t>(
        std::chrono::steady_clock::now().time_since_epoch().count());
  }
  std::printf("random exploration: seeds %llu..%llu\n",
              static_cast<unsigned long long>(seed),
              static_cast<unsigned long long>(seed + FLAGS_explorer_schedules -
                                              1));
  RandomScheduleOptions options;
  options.max_kills = FLAGS_explorer_max_kills;
  options.max_stops = FLAGS_explorer_max_stops;
  options.max_recoverers = FLAGS_explorer_max_recoverers;
  options.limits = Limits();
  ExplorerStats total;
  int failures = 0;
  RunSchedules(seed, FLAGS_explorer_schedules, options, "explorer",
               &total, &failures);
  std::printf("%s\n%d failing schedule(s)\n", total.ToString().c_str(),
              failures);
  // The exploration itself must have reached the cases it exists for.
  if (FLAGS_explorer_schedules >= 500 && failures == 0) {
    EXPECT_GT(total.senders_killed_during_recovery, 0);
    EXPECT_GT(total.recoverers_killed, 0);
    EXPECT_GT(total.stops_resumed, 0);
    EXPECT_GT(total.stops_killed, 0);
    EXPECT_GT(total.recoveries_facing_dead_senders, 0);
    EXPECT_GT(total.recoveries_facing_stopped_mid_send, 0);
    EXPECT_GT(total.recoveries_facing_lapped_dead, 0);
    EXPECT_GT(total.recoveries_with_accounting, 0);
    EXPECT_GT(total.decisions_checked, 0);
    EXPECT_GT(total.wrapping_schedules, 0);
    EXPECT_GT(total.unmarked_kills, 0);
    EXPECT_GT(total.unmarked_words, 0);
  }
}

// One sender sending `sends` messages after a full ring of setup sends, and
// one pinner pinning once.
ExplorerScenario OnePinnerOneSender(uint32_t queue_size, int sends) {
  ExplorerScenario scenario;
  scenario.queue_size = queue_size;
  scenario.setup_sends = static_cast<int>(queue_size);
  scenario.sends = {sends};
  scenario.pinners = 1;
  scenario.pin_rounds = 1;
  return scenario;
}

// Pinning. p0 pins the newest message (the last setup send); s0 laps the
// ring and, when it takes that message out of the ring, parks it; s0 is
// killed right after writing its parked entry (before taking the parked
// message as its scratch).
// A recoverer then finishes s0's swap from its slot's own words and claims
// a slot. Every checkpoint compares the pinned bytes; the final checks count
// parked entries as owners.
TEST(InterleavingExplorerTest, SenderKilledMidSwapWhileAPinIsHeld) {
  SKIP_IF_UNSUPPORTED();
  const ExplorerScenario scenario =
      OnePinnerOneSender(/*queue_size=*/4, /*sends=*/5);
  const ActorRef s0 = SenderActor(0);
  const ActorRef p0 = PinnerActor(0);
  ExpectPasses(scenario,
               ExplicitSchedule()
                   // The pin's store, then p0 parks before its unpin.
                   .StepUntil(p0, BeforeWriteTo(RegionPlace::kPinnerPinned))
                   .Step(p0)
                   .StepUntil(s0, BeforeWriteTo(RegionPlace::kSenderParked))
                   .Step(s0)
                   .Kill(s0)
                   .StartRecoverer());
}

// The pinner dies holding its pin while a sender laps the ring past it; a
// recoverer's MakeSender releases the dead pin.
TEST(InterleavingExplorerTest, PinnerKilledWhileSendersLap) {
  SKIP_IF_UNSUPPORTED();
  const ExplorerScenario scenario =
      OnePinnerOneSender(/*queue_size=*/3, /*sends=*/6);
  const ActorRef s0 = SenderActor(0);
  const ActorRef p0 = PinnerActor(0);
  ExpectPasses(scenario,
               ExplicitSchedule()
                   .StepUntil(p0, BeforeWriteTo(RegionPlace::kPinnerPinned))
                   .Step(p0)
                   .StepUntil(s0, AfterSends(4))
                   .Kill(p0)
                   .StartRecoverer());
}

TEST(InterleavingExplorerTest, RandomSchedulesWithPinners) {
  SKIP_IF_UNSUPPORTED();
  const uint64_t seed = FLAGS_explorer_pinner_seed;
  RandomScheduleOptions options;
  options.max_kills = FLAGS_explorer_max_kills;
  options.max_stops = FLAGS_explorer_max_stops;
  options.max_recoverers = FLAGS_explorer_max_recoverers;
  options.max_pinners = FLAGS_explorer_max_pinners;
  options.limits = Limits();
  ExplorerStats total;
  int failures = 0;
  RunSchedules(seed, FLAGS_explorer_pinner_schedules, options,
               "explorer_pinner", &total, &failures);
  std::printf("with pinners: %s\n%d failing schedule(s)\n",
              total.ToString().c_str(), failures);
  if (FLAGS_explorer_pinner_schedules >= 200 && failures == 0) {
    EXPECT_GT(total.pins, 0);
    EXPECT_GT(total.pin_checks, 0);
    EXPECT_GT(total.pinners_killed, 0);
    EXPECT_GT(total.parks, 0);
    EXPECT_GT(total.kills_mid_swap, 0);
    EXPECT_GT(total.decisions_checked, 0);
  }
}

}  // namespace
}  // namespace lockless::testing

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  ::gflags::ParseCommandLineFlags(&argc, &argv, /*remove_flags=*/true);
  return RUN_ALL_TESTS();
}
