#include "sync/rt_priority.h"

#include <sched.h>

#include "gtest/gtest.h"

namespace lockless {
namespace {

TEST(RtPriorityTest, CurrentSchedulingReads) {
  absl::StatusOr<SchedulingState> state = CurrentScheduling();
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_GE(state->priority, 0);
}

TEST(RtPriorityTest, RejectsOutOfRangePriority) {
  EXPECT_EQ(SetFifoPriority(0).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(SetFifoPriority(100).code(), absl::StatusCode::kInvalidArgument);
}

TEST(RtPriorityTest, SetAndRestore) {
  absl::StatusOr<SchedulingState> before = CurrentScheduling();
  ASSERT_TRUE(before.ok()) << before.status();
  const absl::Status status = SetFifoPriority(10);
  if (absl::IsPermissionDenied(status)) {
    // The EPERM path: a clean PermissionDenied that says what to do.
    EXPECT_NE(status.message().find("CAP_SYS_NICE"), absl::string_view::npos)
        << status;
    GTEST_SKIP() << "SCHED_FIFO not permitted here (run as root / with "
                    "CAP_SYS_NICE / RLIMIT_RTPRIO, outside a sandbox): "
                 << status;
  }
  ASSERT_TRUE(status.ok()) << status;
  absl::StatusOr<SchedulingState> boosted = CurrentScheduling();
  ASSERT_TRUE(boosted.ok());
  EXPECT_EQ(boosted->policy & ~SCHED_RESET_ON_FORK, SCHED_FIFO);
  EXPECT_EQ(boosted->priority, 10);
  ASSERT_TRUE(RestoreScheduling(*before).ok());
  absl::StatusOr<SchedulingState> after = CurrentScheduling();
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(after->policy, before->policy);
  EXPECT_EQ(after->priority, before->priority);
}

TEST(RtPriorityTest, ScopedBoost) {
  absl::StatusOr<SchedulingState> before = CurrentScheduling();
  ASSERT_TRUE(before.ok()) << before.status();
  {
    ScopedPriorityBoost boost(20);
    if (absl::IsPermissionDenied(boost.status())) {
      EXPECT_FALSE(boost.boosted());
      GTEST_SKIP() << "SCHED_FIFO not permitted here: " << boost.status();
    }
    ASSERT_TRUE(boost.status().ok()) << boost.status();
    EXPECT_TRUE(boost.boosted());
    EXPECT_EQ(CurrentScheduling()->priority, 20);
    {
      // Lower than the current priority: nothing to do.
      ScopedPriorityBoost lower(5);
      EXPECT_TRUE(lower.status().ok());
      EXPECT_FALSE(lower.boosted());
      EXPECT_EQ(CurrentScheduling()->priority, 20);
    }
    {
      ScopedPriorityBoost higher(30);
      EXPECT_TRUE(higher.boosted());
      EXPECT_EQ(CurrentScheduling()->priority, 30);
    }
    EXPECT_EQ(CurrentScheduling()->priority, 20);
  }
  absl::StatusOr<SchedulingState> after = CurrentScheduling();
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(after->policy, before->policy);
  EXPECT_EQ(after->priority, before->priority);
}

}  // namespace
}  // namespace lockless
