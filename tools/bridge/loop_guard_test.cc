#include "tools/bridge/loop_guard.h"

#include "gtest/gtest.h"

namespace lockless::bridge {
namespace {

QueueIndex At(uint32_t i) { return QueueIndex::Zero(16).IncrementBy(i); }

TEST(LoopGuardTest, RecognisesImportedIndicesAndForgetsPassedOnes) {
  LoopGuard guard;
  for (uint32_t i : {2u, 5u, 6u}) {
    ASSERT_TRUE(guard.SendAndRecord([&](QueueIndex* sent) {
      *sent = At(i);
      return true;
    }));
  }
  EXPECT_FALSE(guard.WasImported(At(0)));
  EXPECT_FALSE(guard.WasImported(At(1)));
  EXPECT_TRUE(guard.WasImported(At(2)));
  // 5 was overwritten before the exporter read it: skipped to 6.
  EXPECT_TRUE(guard.WasImported(At(6)));
  EXPECT_FALSE(guard.WasImported(At(7)));
}

TEST(LoopGuardTest, FailedSendRecordsNothing) {
  LoopGuard guard;
  EXPECT_FALSE(guard.SendAndRecord([](QueueIndex* sent) {
    *sent = At(3);
    return false;
  }));
  EXPECT_FALSE(guard.WasImported(At(3)));
}

TEST(LoopGuardTest, WorksAcrossTheCounterWrap) {
  LoopGuard guard;
  const QueueIndex last = At(0).DecrementBy(1);  // just before the wrap
  ASSERT_TRUE(guard.SendAndRecord([&](QueueIndex* sent) {
    *sent = last;
    return true;
  }));
  ASSERT_TRUE(guard.SendAndRecord([&](QueueIndex* sent) {
    *sent = At(1);
    return true;
  }));
  EXPECT_FALSE(guard.WasImported(last.DecrementBy(1)));
  EXPECT_TRUE(guard.WasImported(last));
  EXPECT_FALSE(guard.WasImported(At(0)));
  EXPECT_TRUE(guard.WasImported(At(1)));
}

}  // namespace
}  // namespace lockless::bridge
