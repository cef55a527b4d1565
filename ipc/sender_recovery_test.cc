// Recovery when several senders die at once while others keep sending, are
// stopped mid-send, or die during the recovery itself. Each test builds the
// situation with real threads owning real sender slots (a thread that exits
// holding its slot is marked FUTEX_OWNER_DIED by the kernel) and puts them
// mid-send with testing/send_steps.h. Regression tests for the failures found
// with real processes against the first recovery (see each test).
#include "ipc/internal/sender_recovery.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "ipc/internal/queue_layout.h"
#include "ipc/lockless_queue.h"
#include "testing/queue_invariants.h"
#include "testing/queue_memory.h"
#include "testing/send_steps.h"
#include "testing/sender_thread.h"

namespace lockless {
namespace {

using internal::RecoveryReport;
using internal::RegionView;
using ::lockless::testing::CheckEveryMessageOwnedOnce;
using ::lockless::testing::Intent;
using ::lockless::testing::NextQueueIndex;
using ::lockless::testing::PublishIntent;
using ::lockless::testing::RaceForOneIndexThenLap;
using ::lockless::testing::RecordIntent;
using ::lockless::testing::ResumeIntent;
using ::lockless::testing::SenderThread;

QueueConfig FourSlotConfig(uint32_t num_senders) {
  QueueConfig config;
  config.num_watchers = 1;
  config.num_senders = num_senders;
  config.queue_size = 4;
  config.message_data_size_bytes = 16;
  return config;
}

// Runs recovery directly, under the setup lock, to see its report.
RecoveryReport RecoverNow(const LocklessQueue& queue,
                          std::chrono::milliseconds patience) {
  RobustMutex& setup_lock = queue.region().header()->setup_lock;
  EXPECT_NE(setup_lock.Lock(), LockResult::kError);
  absl::StatusOr<RecoveryReport> report = internal::RecoverDeadSenders(
      queue.region(), std::chrono::steady_clock::now() + patience);
  setup_lock.Unlock();
  EXPECT_TRUE(report.ok()) << report.status();
  return report.ok() ? *report : RecoveryReport{};
}

// The channel is whole: every message has one owner, every slot can be
// claimed, and a fresh sender's messages read back.
void ExpectHealthy(const LocklessQueue& queue) {
  EXPECT_TRUE(CheckEveryMessageOwnedOnce(queue).ok())
      << CheckEveryMessageOwnedOnce(queue);
  std::vector<Sender> senders;
  for (uint32_t s = 0; s < queue.config().num_senders; ++s) {
    absl::StatusOr<Sender> sender = queue.MakeSender();
    ASSERT_TRUE(sender.ok()) << "slot " << s << ": " << sender.status();
    senders.push_back(*std::move(sender));
  }
  const uint32_t sends = std::min(2 * queue.config().queue_size, 32u);
  for (uint32_t i = 0; i < sends; ++i) {
    MessageInfo info;
    const std::string payload = "after " + std::to_string(i);
    ASSERT_EQ(
        senders[i % senders.size()].Send(payload.data(), payload.size(), &info),
        SendResult::kOk);
    char buffer[16];
    MessageInfo read;
    ASSERT_EQ(queue.Read(info.queue_index, &read, buffer, sizeof(buffer)),
              ReadResult::kGood);
    EXPECT_EQ(std::string(buffer, read.length), payload);
  }
}

// Failure 2 of the recovery issue, the trace as reported (queue_size 4):
// ring slot 3 holds (3, a); live sender L loads it and passes its checks; D
// publishes index 7 and takes a as its scratch; L records to_replace (3, a)
// and stalls before its CAS (which would fail); D starts index 8 and dies
// before its CAS; D2 wins index 8 and dies before taking its replaced
// message. The first recovery counted `a` as owned through L's stale word,
// gave D the wrong message, returned DataLoss and left both dead slots
// locked, so every later MakeSender failed too.
TEST(SenderRecoveryTest, StaleIntentOfAStalledSenderDoesNotFoolRecovery) {
  const QueueConfig config = FourSlotConfig(4);
  testing::QueueMemory memory(config);
  const LocklessQueue queue =
      *LocklessQueue::Attach(memory.data(), memory.size_bytes(), config);
  const RegionView& region = queue.region();
  SenderThread d(queue), d2(queue), l(queue);
  ASSERT_TRUE(d.status().ok() && d2.status().ok() && l.status().ok());

  d.SendNumbered(7);  // Indices 0..6.
  const QueueIndex seven = queue.MakeQueueIndex(7);
  const Index seen_by_l = region.ring(seven.Wrapped())->Load();
  d.SendNumbered(1);  // D publishes 7 and takes seen_by_l's message.
  const Intent stale = RecordIntent(region, l.slot(), seven, seen_by_l);
  const QueueIndex eight = queue.MakeQueueIndex(8);
  RecordIntent(region, d.slot(), eight);
  d.Die();
  const Intent winner = RecordIntent(region, d2.slot(), eight);
  ASSERT_TRUE(PublishIntent(region, winner));
  d2.Die();

  {
    absl::StatusOr<Sender> sender = queue.MakeSender();
    ASSERT_TRUE(sender.ok()) << sender.status();
    // D owns its scratch (its CAS never happened); D2 the replaced message.
    EXPECT_EQ(region.sender(d.slot())->scratch_index.Load().message_index(),
              seen_by_l.message_index());
    EXPECT_EQ(region.sender(d2.slot())->scratch_index.Load(),
              winner.to_replace);
  }
  ASSERT_FALSE(PublishIntent(region, stale));  // L resumes: its CAS fails.
  ResumeIntent(region, stale, /*published=*/false);
  l.Release();
  ExpectHealthy(queue);
}

// Failure 1: two dead slots with the same to_replace, the second owner
// having died after the recovery started. The first recovery treated it as a
// live sender mid-send, waited for it to move, and after ~11 s returned
// DataLoss on a healthy channel. Here the winner died first; the loser (its
// stale intent pending) dies at the first accounting pass.
SenderThread* g_dies_at_first_pass = nullptr;

TEST(SenderRecoveryTest, SenderDyingDuringRecoveryIsRecoveredToo) {
  const QueueConfig config = FourSlotConfig(4);
  testing::QueueMemory memory(config);
  const LocklessQueue queue =
      *LocklessQueue::Attach(memory.data(), memory.size_bytes(), config);
  SenderThread winner(queue), loser(queue), lapper(queue);
  ASSERT_TRUE(winner.status().ok() && loser.status().ok() &&
              lapper.status().ok());
  const auto [won, lost] = RaceForOneIndexThenLap(queue, winner, loser, lapper);
  winner.Die();

  g_dies_at_first_pass = &loser;
  internal::SetRecoveryPassObserver(+[](int pass) {
    if (pass == 1) g_dies_at_first_pass->Die();
  });
  const RecoveryReport report = RecoverNow(queue, std::chrono::seconds(10));
  internal::SetRecoveryPassObserver(nullptr);

  EXPECT_EQ(report.recovered, 2);
  EXPECT_EQ(report.pending, 0);
  EXPECT_EQ(report.restarts, 1);
  EXPECT_EQ(queue.region().sender(winner.slot())->scratch_index.Load(),
            won.to_replace);
  EXPECT_EQ(queue.region().sender(loser.slot())->scratch_index.Load(),
            lost.publish);
  lapper.Release();
  ExpectHealthy(queue);
}

// Failure 3, first form: a live sender stopped mid-send with a stale intent
// (its CAS will fail) made the first recovery wait for it and return
// DataLoss after ~5 s. Here the dead sender is decided without it.
TEST(SenderRecoveryTest, StoppedSenderWithStaleIntentDoesNotBlockRecovery) {
  const QueueConfig config = FourSlotConfig(4);
  testing::QueueMemory memory(config);
  const LocklessQueue queue =
      *LocklessQueue::Attach(memory.data(), memory.size_bytes(), config);
  SenderThread winner(queue), stopped(queue), lapper(queue);
  ASSERT_TRUE(winner.status().ok() && stopped.status().ok() &&
              lapper.status().ok());
  const auto [won, lost] =
      RaceForOneIndexThenLap(queue, winner, stopped, lapper);
  winner.Die();

  const RecoveryReport report = RecoverNow(queue, std::chrono::seconds(10));
  EXPECT_EQ(report.recovered, 1);
  EXPECT_EQ(report.pending, 0);
  EXPECT_EQ(queue.region().sender(winner.slot())->scratch_index.Load(),
            won.to_replace);
  {
    absl::StatusOr<Sender> sender = queue.MakeSender();
    ASSERT_TRUE(sender.ok()) << sender.status();
  }
  ResumeIntent(queue.region(), lost, /*published=*/false);
  stopped.Release();
  lapper.Release();
  ExpectHealthy(queue);
}

// Failure 3, second form: the dead sender lost the race to a live sender
// that is stopped between its CAS and taking the replaced message, and the
// slot has been lapped since. Only that sender can tell who won, so the dead
// slot stays pending (never handed out, never DataLoss) while MakeSender
// still hands out a free slot; once the stopped sender moves, the next
// recovery decides it.
TEST(SenderRecoveryTest, DeadSenderWaitingOnAStoppedOneStaysPending) {
  const QueueConfig config = FourSlotConfig(4);
  testing::QueueMemory memory(config);
  const LocklessQueue queue =
      *LocklessQueue::Attach(memory.data(), memory.size_bytes(), config);
  SenderThread stopped(queue), loser(queue), lapper(queue);
  ASSERT_TRUE(stopped.status().ok() && loser.status().ok() &&
              lapper.status().ok());
  const auto [won, lost] =
      RaceForOneIndexThenLap(queue, stopped, loser, lapper);
  loser.Die();

  const RecoveryReport report =
      RecoverNow(queue, std::chrono::milliseconds(20));
  EXPECT_EQ(report.recovered, 0);
  EXPECT_EQ(report.pending, 1);
  EXPECT_FALSE(internal::SenderSlotClaimable(queue.region(), loser.slot()));
  {
    absl::StatusOr<Sender> sender = queue.MakeSender();  // The free slot.
    ASSERT_TRUE(sender.ok()) << sender.status();
    EXPECT_NE(sender->slot(), loser.slot());
    // Now no slot is free: the pending one is not handed out either.
    absl::StatusOr<Sender> none = queue.MakeSender();
    ASSERT_FALSE(none.ok());
    EXPECT_EQ(none.status().code(), absl::StatusCode::kResourceExhausted)
        << none.status();
  }

  ResumeIntent(queue.region(), won, /*published=*/true);
  const RecoveryReport later = RecoverNow(queue, std::chrono::seconds(10));
  EXPECT_EQ(later.recovered, 1);
  EXPECT_EQ(later.pending, 0);
  EXPECT_EQ(queue.region().sender(loser.slot())->scratch_index.Load(),
            lost.publish);
  stopped.Release();
  lapper.Release();
  ExpectHealthy(queue);
}

// Failure 4: with 2^20 ring slots (60000 with 32-bit entries), one live sender
// in a tight loop and one dead sender, the first recovery took 175 s (it wanted
// a scan during which no live sender moved). Now it accumulates marks over
// passes that tolerate movement; the dead sender's slot has been lapped, so
// accounting is needed. The bound on passes is loose on purpose (a pass can
// miss a message that moves under it, never see a false one); the times are in
// the benchmark.
TEST(SenderRecoveryTest, BigRingWithABusySenderRecoversInFewPasses) {
  QueueConfig config;
  config.num_watchers = 1;
  config.num_senders = 3;
  // 32-bit ring entries (--config=index32) address at most 2^16 - 1 messages.
  config.queue_size = sizeof(Index) == 8 ? 1u << 20 : 60000;
  config.message_data_size_bytes = 8;
  testing::QueueMemory memory(config);
  const LocklessQueue queue =
      *LocklessQueue::Attach(memory.data(), memory.size_bytes(), config);
  SenderThread dead(queue);
  ASSERT_TRUE(dead.status().ok());
  std::atomic<bool> claimed{false};
  std::atomic<bool> go{false};
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> sent{0};
  std::thread busy([&] {
    // Claimed before the other sender dies, so no recovery runs here.
    absl::StatusOr<Sender> sender = queue.MakeSender();
    ASSERT_TRUE(sender.ok()) << sender.status();
    claimed.store(true);
    while (!go.load()) std::this_thread::yield();
    for (uint64_t i = 0; !stop.load(std::memory_order_relaxed); ++i) {
      ASSERT_EQ(sender->Send(&i, sizeof(i)), SendResult::kOk);
      sent.store(i + 1, std::memory_order_relaxed);
    }
  });
  while (!claimed.load()) std::this_thread::yield();
  const Intent intent =
      RecordIntent(queue.region(), dead.slot(), NextQueueIndex(queue));
  dead.Die();
  go.store(true);
  // Wait (on a condition, not a time) until the dead sender's slot is lapped.
  while (sent.load(std::memory_order_relaxed) <= config.queue_size + 1) {
    std::this_thread::yield();
  }
  const RecoveryReport report = RecoverNow(queue, std::chrono::seconds(60));
  stop.store(true);
  busy.join();
  EXPECT_EQ(report.recovered, 1);
  EXPECT_EQ(report.pending, 0);
  EXPECT_GE(report.ring_scans, 1);
  EXPECT_LE(report.ring_scans, 8);
  EXPECT_EQ(queue.region().sender(dead.slot())->scratch_index.Load(),
            intent.publish);
  ExpectHealthy(queue);
}

// Failure 5: a thread made a Sender and exited without destroying it; the
// kernel marked the slot dead, the next MakeSender recovered it and handed
// it to another thread, and the old object could still Send: one message
// with two owners. Now the old object is refused and touches nothing.
TEST(SenderRecoveryTest, SenderOutlivingItsThreadIsRefused) {
  const QueueConfig config = FourSlotConfig(1);
  testing::QueueMemory memory(config);
  const LocklessQueue queue =
      *LocklessQueue::Attach(memory.data(), memory.size_bytes(), config);
  SenderThread first(queue);
  ASSERT_TRUE(first.status().ok());
  first.SendNumbered(3);
  Sender* const orphan = first.Die();
  ASSERT_NE(orphan, nullptr);
  EXPECT_EQ(orphan->Send("x", 1), SendResult::kNotOwner);  // Slot dead.

  SenderThread second(queue);  // Recovers the slot and claims it.
  ASSERT_TRUE(second.status().ok()) << second.status();
  ASSERT_EQ(second.slot(), orphan->slot());
  const QueueIndex latest = queue.LatestQueueIndex();
  EXPECT_EQ(orphan->Send("x", 1), SendResult::kNotOwner);
  EXPECT_EQ(orphan->Send(1), SendResult::kNotOwner);
  EXPECT_EQ(orphan->data(), nullptr);
  EXPECT_EQ(queue.LatestQueueIndex(), latest);  // Nothing published.
  // Destroying it here (not its thread, not the owner) releases nothing.
  orphan->~Sender();
  second.SendNumbered(5);
  EXPECT_TRUE(CheckEveryMessageOwnedOnce(queue).ok());
  second.Release();
  ExpectHealthy(queue);
}

// A Sender moved to another thread is refused there, and still works on its
// own thread.
TEST(SenderRecoveryTest, SenderUsedFromAnotherThreadIsRefused) {
  const QueueConfig config = FourSlotConfig(2);
  testing::QueueMemory memory(config);
  const LocklessQueue queue =
      *LocklessQueue::Attach(memory.data(), memory.size_bytes(), config);
  absl::StatusOr<Sender> sender = queue.MakeSender();
  ASSERT_TRUE(sender.ok());
  std::thread([&] {
    EXPECT_EQ(sender->Send("x", 1), SendResult::kNotOwner);
    EXPECT_EQ(sender->data(), nullptr);
  }).join();
  EXPECT_FALSE(queue.LatestQueueIndex().valid());
  EXPECT_EQ(sender->Send("x", 1), SendResult::kOk);
}

// A forked child inherits the parent's Sender object but not its slot: it is
// refused there (else two processes would send through one slot).
TEST(SenderRecoveryTest, SenderUsedInAForkedChildIsRefused) {
  const QueueConfig config = FourSlotConfig(2);
  testing::QueueMemory memory(config);
  const LocklessQueue queue =
      *LocklessQueue::Attach(memory.data(), memory.size_bytes(), config);
  absl::StatusOr<Sender> sender = queue.MakeSender();
  ASSERT_TRUE(sender.ok());
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    const bool refused = sender->Send("x", 1) == SendResult::kNotOwner &&
                         sender->data() == nullptr;
    _exit(refused ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  EXPECT_FALSE(queue.LatestQueueIndex().valid());
  EXPECT_EQ(sender->Send("x", 1), SendResult::kOk);
}

// ---------------------------------------------------------------------------
// Found by the adversarial review of the new recovery; each failed on its
// first version.

// Runs `body` in a forked child and returns its wait status, so that a crash
// (abort, SIGFPE, SIGSEGV) fails one test instead of the whole binary.
int StatusOfChild(const std::function<void()>& body) {
  std::fflush(nullptr);
  const pid_t child = fork();
  if (child == 0) {
    alarm(20);
    body();
    _exit(0);
  }
  int status = 0;
  waitpid(child, &status, 0);
  return status;
}

std::string DescribeStatus(int status) {
  if (WIFSIGNALED(status)) {
    return "killed by signal " + std::to_string(WTERMSIG(status)) + " (" +
           strsignal(WTERMSIG(status)) + ")";
  }
  return "exited " + std::to_string(WEXITSTATUS(status));
}

// Found in review: a "another sender won q" decision is not permanent. A sender
// publishes q (step d) and dies before taking the replaced message; nobody
// makes a sender until 2^16 more messages went by. With 16-bit entries
// (--config=index32) the target slot then holds the lap q + 2^16, published by
// someone else, whose queue-index bits equal q's: the first version's shortcut
// concluded "another sender won q", clears to_replace and leaves the dead
// sender owning the message it published (which circulates), while the message
// it took is owned by nobody. With 32-bit queue indices the same happens after
// a full wrap (2^32 sends). Passes with 64-bit entries (the slot holds a later
// lap: accounting).
TEST(SenderRecoveryTest, PublishedDeadSenderAfterTwoToTheSixteenSends) {
  const QueueConfig config = FourSlotConfig(3);
  testing::QueueMemory memory(config);
  const LocklessQueue queue =
      *LocklessQueue::Attach(memory.data(), memory.size_bytes(), config);
  const RegionView& region = queue.region();
  SenderThread dead(queue), busy(queue);
  ASSERT_TRUE(dead.status().ok() && busy.status().ok());
  busy.SendNumbered(5);
  const QueueIndex q = NextQueueIndex(queue);
  const Intent intent = RecordIntent(region, dead.slot(), q);
  ASSERT_TRUE(PublishIntent(region, intent));  // d happened ...
  dead.Die();                                  // ... e, f, g did not.
  busy.SendNumbered(1 << 16);                  // q + 1 .. q + 2^16.
  busy.Release();
  const Index target = region.ring(q.Wrapped())->Load();
  ASSERT_NE(target.message_index(), intent.publish.message_index());
  {
    absl::StatusOr<Sender> sender = queue.MakeSender();
    ASSERT_TRUE(sender.ok()) << sender.status();
  }
  // The dead sender published, so it owns the message it replaced.
  EXPECT_EQ(region.sender(dead.slot())->scratch_index.Load(),
            intent.to_replace);
  EXPECT_TRUE(CheckEveryMessageOwnedOnce(queue).ok())
      << CheckEveryMessageOwnedOnce(queue);
}

// Found in review: a crash on a corrupted region. A dead sender slot whose
// to_replace was scribbled to a valid entry while its scratch_index still
// carries the initial, all-ones queue-index bits (a slot that never sent).
// With 32-bit queue indices IntendedQueueIndex accepted the all-ones value as
// "legal" and returned QueueIndex::Invalid(), whose Wrapped() aborts
// (LOCKLESS_DCHECK) or divides by queue_size 0 (SIGFPE in -c opt).
// MakeSender must return (an error or a repaired slot), not crash.
TEST(SenderRecoveryTest, ScribbledDeadSlotIsNotACrash) {
  const QueueConfig config = FourSlotConfig(2);
  testing::QueueMemory memory(config);
  const LocklessQueue queue =
      *LocklessQueue::Attach(memory.data(), memory.size_bytes(), config);
  const RegionView& region = queue.region();
  uint32_t slot = 0;
  {
    SenderThread never_sent(queue);
    ASSERT_TRUE(never_sent.status().ok());
    slot = never_sent.slot();
    never_sent.Die();
  }
  region.sender(slot)->to_replace.Store(region.ring(1)->Load());  // Scribble.
  const int status = StatusOfChild([&] {
    absl::StatusOr<Sender> sender = queue.MakeSender();
    std::fprintf(stderr, "MakeSender: %s\n",
                 sender.status().ToString().c_str());
  });
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
      << DescribeStatus(status);
}

// Found in review: the same all-ones scratch on a live slot (to_replace
// scribbled) crashed the accounting pass as soon as any dead sender needed it.
TEST(SenderRecoveryTest, ScribbledLiveSlotIsNotACrash) {
  const QueueConfig config = FourSlotConfig(4);
  testing::QueueMemory memory(config);
  const LocklessQueue queue =
      *LocklessQueue::Attach(memory.data(), memory.size_bytes(), config);
  const RegionView& region = queue.region();
  SenderThread idle(queue), winner(queue), loser(queue), lapper(queue);
  ASSERT_TRUE(idle.status().ok() && winner.status().ok() &&
              loser.status().ok() && lapper.status().ok());
  RaceForOneIndexThenLap(queue, winner, loser, lapper);
  winner.Die();  // Lapped: needs accounting.
  region.sender(idle.slot())->to_replace.Store(region.ring(2)->Load());
  const int status = StatusOfChild([&] {
    RobustMutex& setup_lock = region.header()->setup_lock;
    if (setup_lock.Lock() == LockResult::kError) _exit(2);
    absl::StatusOr<RecoveryReport> report = internal::RecoverDeadSenders(
        region, std::chrono::steady_clock::now() + std::chrono::seconds(1));
    std::fprintf(stderr, "RecoverDeadSenders: %s\n",
                 report.status().ToString().c_str());
  });
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
      << DescribeStatus(status);
  region.sender(idle.slot())->to_replace.Invalidate();
}

// Found in review: a release rule that identified a claim by thread id
// only. A thread exits without destroying its Sender; the slot is recovered
// and claimed by another thread, which then destroys the orphan (say, while
// clearing a list of Senders). held_lock.h says a lock whose thread exited
// "may not be unlocked from here", but the orphan's destructor saw
// IsLockedByMe() and unlocked the new owner's claim: the new owner's own
// Sender is then refused (kNotOwner) and the slot is free for a third
// thread. (The same holds for an orphaned Watcher: the new registration is
// silently dropped.)
TEST(SenderRecoveryTest, OrphanDestroyedOnTheNewOwnersThread) {
  const QueueConfig config = FourSlotConfig(1);
  testing::QueueMemory memory(config);
  const LocklessQueue queue =
      *LocklessQueue::Attach(memory.data(), memory.size_bytes(), config);
  SenderThread first(queue);
  ASSERT_TRUE(first.status().ok());
  Sender* const orphan = first.Die();
  SenderThread second(queue);
  ASSERT_TRUE(second.status().ok()) << second.status();
  ASSERT_EQ(second.slot(), orphan->slot());
  second.Run([orphan](Sender& mine) {
    orphan->~Sender();
    EXPECT_EQ(mine.Send("x", 1), SendResult::kOk);
  });
  // Nobody else may get the slot while `second` holds its Sender.
  absl::StatusOr<Sender> third = queue.MakeSender();
  EXPECT_FALSE(third.ok()) << "slot " << third->slot() << " handed out twice";
}

// Found in review: a live sender's scratch_index is not always in
// circulation.
// The first accounting marked the scratch_index of every live sender, on the
// claim that it "owns that message or has just published it". Between its ring
// CAS (d) and taking the replaced message (f), it names the message the sender
// published, and if the sender is stopped (or just preempted) there for one
// lap, another sender takes that message out of the ring; if that one dies
// between its own d and f, the message is its O, and recovery marks it
// through the stopped sender's stale scratch_index.
//
// Form 1 (DataLoss on a healthy channel): the dead lapper's C is marked too,
// so "both marked" reported corruption.
TEST(SenderRecoveryTest, StoppedPublisherLappedByADeadSenderNoDataLoss) {
  const QueueConfig config = FourSlotConfig(4);
  testing::QueueMemory memory(config);
  const LocklessQueue queue =
      *LocklessQueue::Attach(memory.data(), memory.size_bytes(), config);
  const RegionView& region = queue.region();
  SenderThread stopped(queue), dead(queue), lapper(queue);
  ASSERT_TRUE(stopped.status().ok() && dead.status().ok() &&
              lapper.status().ok());
  lapper.SendNumbered(5);
  const QueueIndex q = NextQueueIndex(queue);
  const Intent published = RecordIntent(region, stopped.slot(), q);
  ASSERT_TRUE(PublishIntent(region, published));  // Stopped between d and f.
  lapper.SendNumbered(3);                         // q + 1 .. q + 3.
  const Intent lap = RecordIntent(region, dead.slot(), q.IncrementBy(4));
  ASSERT_EQ(lap.to_replace, published.publish);
  ASSERT_TRUE(
      PublishIntent(region, lap));  // Takes the stopped sender's message,
  dead.Die();                       // which is now the dead sender's.
  lapper.SendNumbered(4);           // Lapped: only accounting can decide it.

  absl::StatusOr<RecoveryReport> report;
  {
    RobustMutex& setup_lock = region.header()->setup_lock;
    ASSERT_NE(setup_lock.Lock(), LockResult::kError);
    report = internal::RecoverDeadSenders(
        region, std::chrono::steady_clock::now() + std::chrono::seconds(2));
    setup_lock.Unlock();
  }
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->pending + report->recovered, 1);
  ResumeIntent(region, published, /*published=*/true);
  stopped.Release();
  lapper.Release();
  {
    absl::StatusOr<Sender> sender = queue.MakeSender();  // Decides it now.
    ASSERT_TRUE(sender.ok()) << sender.status();
  }
  EXPECT_EQ(region.sender(dead.slot())->scratch_index.Load(), lap.to_replace);
  ExpectHealthy(queue);
}

// Form 2 (a message with two owners): as form 1, but the dead lapper's own
// message is held invisibly too, by a third sender stopped between d and f
// whose publish has been lapped. Recovery sees the dead sender's O marked
// (through the stale scratch_index) and its C unmarked, decided "its CAS
// never happened", and handed the slot out owning the message the third
// sender is about to take as its scratch.
TEST(SenderRecoveryTest, StoppedPublisherLappedByADeadSenderNoTwoOwners) {
  const QueueConfig config = FourSlotConfig(5);
  testing::QueueMemory memory(config);
  const LocklessQueue queue =
      *LocklessQueue::Attach(memory.data(), memory.size_bytes(), config);
  const RegionView& region = queue.region();
  SenderThread stopped(queue), dead(queue), stopped2(queue), lapper(queue);
  ASSERT_TRUE(stopped.status().ok() && dead.status().ok() &&
              stopped2.status().ok() && lapper.status().ok());
  lapper.SendNumbered(5);
  const QueueIndex q = NextQueueIndex(queue);
  const Intent published = RecordIntent(region, stopped.slot(), q);
  ASSERT_TRUE(PublishIntent(region, published));  // Stopped between d and f.
  lapper.SendNumbered(3);
  const Intent lap = RecordIntent(region, dead.slot(), q.IncrementBy(4));
  ASSERT_TRUE(PublishIntent(region, lap));
  dead.Die();  // Published: owns the stopped sender's message.
  lapper.SendNumbered(3);
  const Intent lap2 = RecordIntent(region, stopped2.slot(), q.IncrementBy(8));
  ASSERT_EQ(lap2.to_replace, lap.publish);
  ASSERT_TRUE(PublishIntent(region, lap2));  // Holds the dead sender's message,
  lapper.SendNumbered(4);                    // invisibly once lapped.

  {
    absl::StatusOr<Sender> sender = queue.MakeSender();
    ASSERT_TRUE(sender.ok()) << sender.status();
  }
  // The dead sender published: it owns what it replaced, never its own
  // published message (stopped2 takes that one when it resumes). Left
  // pending (to_replace still set) is fine too: only stopped2 can tell.
  const internal::SenderSlot* const dead_slot = region.sender(dead.slot());
  EXPECT_TRUE(dead_slot->to_replace.Load().valid() ||
              dead_slot->scratch_index.Load() == lap.to_replace)
      << "dead sender decided as owning "
      << dead_slot->scratch_index.Load().DebugString() << ", truth "
      << lap.to_replace.DebugString();
  ResumeIntent(region, published, /*published=*/true);
  ResumeIntent(region, lap2, /*published=*/true);
  stopped.Release();
  stopped2.Release();
  lapper.Release();
  {
    absl::StatusOr<Sender> sender = queue.MakeSender();
    ASSERT_TRUE(sender.ok()) << sender.status();
  }
  EXPECT_TRUE(CheckEveryMessageOwnedOnce(queue).ok())
      << CheckEveryMessageOwnedOnce(queue);
}

// Found in review: the tid cached per thread was refreshed only through a
// pthread_atfork handler, which _Fork() (glibc 2.34+, the async-signal-safe
// fork), syscall(SYS_fork) and clone() without CLONE_VM do not run: such a
// child still "was" the parent's thread and sent through the parent's slot.
TEST(SenderRecoveryTest, SenderInAChildOfUnderscoreForkIsRefused) {
  const QueueConfig config = FourSlotConfig(2);
  testing::QueueMemory memory(config);
  const LocklessQueue queue =
      *LocklessQueue::Attach(memory.data(), memory.size_bytes(), config);
  absl::StatusOr<Sender> sender = queue.MakeSender();
  ASSERT_TRUE(sender.ok());
  for (const bool underscore : {false, true}) {
    std::fflush(nullptr);
    const pid_t child = underscore ? _Fork() : fork();
    if (child == 0) {
      const SendResult result = sender->Send("child", 5);
      _exit(result == SendResult::kNotOwner ? 0
                                            : 10 + static_cast<int>(result));
    }
    int status = 0;
    ASSERT_EQ(waitpid(child, &status, 0), child);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
        << (underscore ? "_Fork" : "fork")
        << " child: " << DescribeStatus(status)
        << " (10 + SendResult; 10 = kOk: sent through the parent's slot)";
  }
  EXPECT_FALSE(queue.LatestQueueIndex().valid());
  EXPECT_EQ(sender->Send("parent", 6), SendResult::kOk);
}

}  // namespace
}  // namespace lockless
