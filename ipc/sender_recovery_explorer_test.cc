// A seeded random interleaving explorer for sender recovery, in one process
// (first written by the adversarial review of the recovery; the
// multi-process one is testing/interleaving_explorer). Emulated senders execute Send's protocol one shared access at a
// time (the test thread performs the steps on slots owned by real
// SenderThreads, so a death is a real kernel FUTEX_OWNER_DIED mark). Between
// recovery passes (the pass observer) live emulated senders take random steps
// and may die; some are "stopped" for a whole recovery. After each recovery:
// no error; every dead slot that recovery made consistent owns exactly the
// message the emulation knows it owns; afterwards, with every live sender
// idle, a second recovery must leave nothing pending and the channel must
// have one owner per message.
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstdint>
#include <cstring>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "ipc/internal/queue_layout.h"
#include "ipc/internal/sender_recovery.h"
#include "ipc/lockless_queue.h"
#include "testing/queue_invariants.h"
#include "testing/queue_memory.h"
#include "testing/sender_thread.h"

namespace lockless {
namespace {

using internal::RecoveryReport;
using internal::RegionView;
using ::lockless::testing::CheckEveryMessageOwnedOnce;
using ::lockless::testing::SenderThread;

struct Stats {
  int recoveries = 0, scans = 0, restarts = 0, pending = 0, recovered = 0;
  int deaths_by_phase[12] = {};
};
extern Stats g_stats;

enum class Phase {
  kIdle,      // No send in progress.
  kReadNext,  // About to load next_queue_index (step 2).
  kReadRing,  // About to load the ring slot and check it (step 2).
  kA,         // About to store scratch_index := S.
  kB,         // About to store the header queue index.
  kC,         // About to store to_replace := T.
  kD,         // About to CAS the ring.
  kDFail,     // CAS failed, about to clear to_replace.
  kE,         // CAS succeeded, about to advance next_queue_index.
  kF,         // About to store scratch_index := T.
  kG,         // About to clear to_replace.
  kH,         // About to invalidate T's header.
};

struct Emu {
  std::unique_ptr<SenderThread> thread;
  uint32_t slot = 0;
  bool dead = false;
  bool stopped = false;
  Phase phase = Phase::kIdle;
  QueueIndex actual_next;
  QueueIndex next;
  Index scratch;  // Read at the start of a send.
  Index to_replace;
  Index publish;
  // The message this sender owns by the protocol (ground truth).
  uint32_t owned = 0;
  // Recovery already checked and made consistent (dead only).
  bool settled = false;
};

class Explorer {
 public:
  Explorer(const QueueConfig& config, uint64_t seed)
      : config_(config), memory_(config), random_(seed) {
    queue_.emplace(
        *LocklessQueue::Attach(memory_.data(), memory_.size_bytes(), config));
  }

  const RegionView& region() const { return queue_->region(); }

  void AddSender() {
    auto emu = std::make_unique<Emu>();
    emu->thread = std::make_unique<SenderThread>(*queue_);
    if (!emu->thread->status().ok()) return;  // No slot now.
    emu->slot = emu->thread->slot();
    emu->owned = region().sender(emu->slot)->scratch_index.Load()
                     .message_index();
    // A slot taken over from a dead emulated sender: forget that one.
    for (auto& other : emus_) {
      if (other && other->dead && other->slot == emu->slot) other.reset();
    }
    emus_.push_back(std::move(emu));
  }

  // One shared-memory step of `e`. Returns false on a protocol error.
  bool Step(Emu& e) {
    const uint32_t qs = config_.queue_size;
    internal::SenderSlot* const slot = region().sender(e.slot);
    switch (e.phase) {
      case Phase::kIdle:
        e.scratch = slot->scratch_index.Load();
        e.phase = Phase::kReadNext;
        return true;
      case Phase::kReadNext:
        e.actual_next = region().header()->next_queue_index.Load(qs);
        e.next = e.actual_next.valid() ? e.actual_next : QueueIndex::Zero(qs);
        e.phase = Phase::kReadRing;
        return true;
      case Phase::kReadRing: {
        const QueueIndex one_lap_earlier = e.next.DecrementBy(qs);
        const Index entry = region().ring(e.next.Wrapped())->Load();
        if (!entry.IsPlausible(one_lap_earlier)) {
          if (entry.IsPlausible(e.next)) {
            QueueIndex expected = e.actual_next;
            region().header()->next_queue_index.CompareAndExchangeStrong(
                &expected, e.next.Increment());
          }
          e.phase = Phase::kReadNext;
          return true;
        }
        const QueueIndex replaced =
            region().message(entry.message_index())->header.queue_index.Load(
                qs);
        if (replaced.valid() && replaced != one_lap_earlier) {
          e.phase = Phase::kReadNext;
          return true;
        }
        e.to_replace = entry;
        e.publish = Index(e.next, e.scratch.message_index());
        e.phase = Phase::kA;
        return true;
      }
      case Phase::kA:
        slot->scratch_index.Store(e.publish);
        e.phase = Phase::kB;
        return true;
      case Phase::kB:
        region().message(e.scratch.message_index())->header.queue_index.Store(
            e.next);
        e.phase = Phase::kC;
        return true;
      case Phase::kC:
        slot->to_replace.Store(e.to_replace);
        e.phase = Phase::kD;
        return true;
      case Phase::kD: {
        Index expected = e.to_replace;
        if (region().ring(e.next.Wrapped())->CompareAndExchangeStrong(
                &expected, e.publish)) {
          e.owned = e.to_replace.message_index();
          e.phase = Phase::kE;
        } else {
          e.phase = Phase::kDFail;
        }
        return true;
      }
      case Phase::kDFail:
        slot->to_replace.Invalidate();
        e.phase = Phase::kReadNext;
        return true;
      case Phase::kE: {
        QueueIndex expected = e.actual_next;
        region().header()->next_queue_index.CompareAndExchangeStrong(
            &expected, e.next.Increment());
        e.phase = Phase::kF;
        return true;
      }
      case Phase::kF:
        slot->scratch_index.Store(e.to_replace);
        e.phase = Phase::kG;
        return true;
      case Phase::kG:
        slot->to_replace.Invalidate();
        e.phase = Phase::kH;
        return true;
      case Phase::kH:
        region().message(e.to_replace.message_index())
            ->header.queue_index.Invalidate();
        e.phase = Phase::kIdle;
        return true;
    }
    return false;
  }

  std::vector<Emu*> Movable() {
    std::vector<Emu*> out;
    for (auto& e : emus_) {
      if (e && !e->dead && !e->stopped) out.push_back(e.get());
    }
    return out;
  }

  void RandomSteps(int steps, int death_per_mille) {
    for (int i = 0; i < steps; ++i) {
      std::vector<Emu*> movable = Movable();
      if (movable.empty()) return;
      Emu* e = movable[random_() % movable.size()];
      const bool mid_send = e->phase >= Phase::kD && e->phase <= Phase::kG;
      if (static_cast<int>(random_() % 1000) <
          (mid_send ? 8 * death_per_mille : death_per_mille / 4)) {
        Kill(*e);
      } else {
        Step(*e);
      }
    }
  }

  void Kill(Emu& e) {
    e.thread->Die();
    e.dead = true;
    ++g_stats.deaths_by_phase[static_cast<int>(e.phase)];
    log_ += " die(" + std::to_string(e.slot) + "@" +
            std::to_string(static_cast<int>(e.phase)) + ")";
  }

  // Checks every dead slot recovery made consistent. Returns a description
  // of the first wrong one.
  std::string CheckDead(bool all_must_be_settled) {
    for (auto& e : emus_) {
      if (!e || !e->dead) continue;
      internal::SenderSlot* const slot = region().sender(e->slot);
      const Index to_replace = slot->to_replace.Load();
      if (to_replace.valid()) {
        if (all_must_be_settled) {
          return "dead slot " + std::to_string(e->slot) + " still pending";
        }
        continue;
      }
      const uint32_t m = slot->scratch_index.Load().message_index();
      if (m != e->owned) {
        return "dead slot " + std::to_string(e->slot) + " (phase " +
               std::to_string(static_cast<int>(e->phase)) + ") owns " +
               std::to_string(m) + ", truth " + std::to_string(e->owned);
      }
    }
    return "";
  }

  static void Observer(int pass) {
    if (current_ == nullptr || pass == 0) return;
    current_->RandomSteps(static_cast<int>(current_->random_() % 40),
                          current_->death_per_mille_);
  }

  // Runs recovery as MakeSender does (under the setup lock) with the
  // explorer interleaving between passes.
  absl::StatusOr<RecoveryReport> Recover(bool interleave,
                                         std::chrono::milliseconds patience) {
    RobustMutex& setup_lock = region().header()->setup_lock;
    if (setup_lock.Lock() == LockResult::kError) {
      return absl::InternalError("setup lock");
    }
    current_ = interleave ? this : nullptr;
    internal::SetRecoveryPassObserver(&Explorer::Observer);
    absl::StatusOr<RecoveryReport> report = internal::RecoverDeadSenders(
        region(), std::chrono::steady_clock::now() + patience);
    internal::SetRecoveryPassObserver(nullptr);
    current_ = nullptr;
    setup_lock.Unlock();
    return report;
  }

  // One round; returns "" or a failure description.
  std::string Round() {
    // Some history, with deaths.
    for (int burst = 0; burst < 4; ++burst) {
      // Some senders stall for a whole burst (stale intents arise).
      for (auto& e : emus_) {
        if (e && !e->dead) e->stopped = random_() % 3 == 0;
      }
      RandomSteps(static_cast<int>(random_() % 40), 30);
    }
    // Then let the others lap the ring (slots stop telling who won).
    RandomSteps(static_cast<int>(random_() % 300), 0);
    for (auto& e : emus_) {
      if (e && !e->dead && !e->stopped) {
        const bool mid_send = e->phase >= Phase::kD && e->phase <= Phase::kG;
        e->stopped = random_() % (mid_send ? 2 : 5) == 0;
      }
    }
    death_per_mille_ = static_cast<int>(random_() % 300);
    absl::StatusOr<RecoveryReport> report =
        Recover(/*interleave=*/true, std::chrono::milliseconds(3));
    if (!report.ok()) return "recovery: " + report.status().ToString();
    ++g_stats.recoveries;
    g_stats.scans += report->ring_scans > 0;
    g_stats.restarts += report->restarts;
    g_stats.pending += report->pending;
    g_stats.recovered += report->recovered;
    if (std::string bad = CheckDead(false); !bad.empty()) {
      return "after recovery: " + bad;
    }
    // Let every live sender finish its send.
    for (auto& e : emus_) {
      if (!e || e->dead) continue;
      e->stopped = false;
      for (int i = 0; i < 1000 && e->phase != Phase::kIdle; ++i) Step(*e);
      if (e->phase != Phase::kIdle) return "live sender did not finish";
    }
    report = Recover(/*interleave=*/false, std::chrono::seconds(5));
    if (!report.ok()) return "second recovery: " + report.status().ToString();
    if (report->pending != 0) return "second recovery left pending";
    if (std::string bad = CheckDead(true); !bad.empty()) {
      return "after second recovery: " + bad;
    }
    if (absl::Status s = CheckEveryMessageOwnedOnce(*queue_); !s.ok()) {
      return "invariant: " + s.ToString();
    }
    for (auto& e : emus_) {
      if (e && e->dead) e->settled = true;
    }
    // Refill slots (MakeSender recovers too).
    const int add = static_cast<int>(random_() % 3);
    for (int i = 0; i < add; ++i) AddSender();
    return "";
  }

  void ReleaseAll() {
    for (auto& e : emus_) {
      if (e && !e->dead) e->thread->Release();
    }
  }

  const std::string& log() const { return log_; }
  std::mt19937_64& random() { return random_; }
  const LocklessQueue& queue() const { return *queue_; }

  std::string Dump() {
    std::string out;
    char line[256];
    for (uint32_t i = 0; i < config_.queue_size; ++i) {
      std::snprintf(line, sizeof(line), "\n  ring[%u] = %s", i,
                    region().ring(i)->Load().DebugString().c_str());
      out += line;
    }
    std::snprintf(line, sizeof(line), "\n  next_queue_index raw %u",
                  region().header()->next_queue_index.RelaxedLoadRaw());
    out += line;
    for (uint32_t s = 0; s < config_.num_senders; ++s) {
      const internal::SenderSlot* slot = region().sender(s);
      std::snprintf(line, sizeof(line),
                    "\n  sender %u word 0x%08x scratch %s to_replace %s", s,
                    slot->ownership.RawOwnerWord(),
                    slot->scratch_index.Load().DebugString().c_str(),
                    slot->to_replace.Load().DebugString().c_str());
      out += line;
      for (auto& e : emus_) {
        if (!e || e->slot != s) continue;
        std::snprintf(line, sizeof(line),
                      "  [emu %s%s phase %d owned %u S %s T %s]",
                      e->dead ? "dead" : "live", e->stopped ? " stopped" : "",
                      static_cast<int>(e->phase), e->owned,
                      e->publish.DebugString().c_str(),
                      e->to_replace.DebugString().c_str());
        out += line;
      }
    }
    return out;
  }

 private:
  static Explorer* current_;
  QueueConfig config_;
  testing::QueueMemory memory_;
  std::optional<LocklessQueue> queue_;
  std::mt19937_64 random_;
  std::vector<std::unique_ptr<Emu>> emus_;
  int death_per_mille_ = 0;
  std::string log_;
};

Explorer* Explorer::current_ = nullptr;
Stats g_stats;

TEST(SenderRecoveryExplorerTest, RandomInterleavingsKeepOneOwnerPerMessage) {
  int failures = 0;
  const char* count = std::getenv("EXPLORER_SEEDS");
  const int seeds = count ? std::atoi(count) : 6000;
  const char* only = std::getenv("EXPLORER_SEED");
  for (int seed = only ? std::atoi(only) : 1;
       seed <= (only ? std::atoi(only) : seeds) && failures < 3; ++seed) {
    std::mt19937_64 pick(seed);
    QueueConfig config;
    config.num_watchers = 1;
    config.num_senders = 2 + pick() % 5;
    config.queue_size = 1 + pick() % 3;
    config.message_data_size_bytes = 8;
    Explorer explorer(config, seed);
    const uint32_t initial = 1 + pick() % config.num_senders;
    for (uint32_t i = 0; i < initial; ++i) explorer.AddSender();
    for (int round = 0; round < 6; ++round) {
      const std::string bad = explorer.Round();
      if (!bad.empty()) {
        ADD_FAILURE() << "seed " << seed << " (senders "
                      << config.num_senders << ", queue_size "
                      << config.queue_size << ") round " << round << ": "
                      << bad << "; deaths:" << explorer.log()
                      << explorer.Dump();
        ++failures;
        break;
      }
    }
    explorer.ReleaseAll();
  }
  std::printf("recoveries %d with-scan %d restarts %d pending %d recovered %d\n",
              g_stats.recoveries, g_stats.scans, g_stats.restarts,
              g_stats.pending, g_stats.recovered);
  for (int p = 0; p < 12; ++p) std::printf("deaths in phase %d: %d\n", p, g_stats.deaths_by_phase[p]);
}


// Review: corruption on top of a recovery-worthy state. Live senders are
// stopped mid-send and dead ones wait for recovery when another process
// scribbles on sender slots, ring entries, message headers or
// next_queue_index; then a forked child makes a sender (running recovery)
// under alarm(). It must return (any status), never crash or hang.
TEST(SenderRecoveryExplorerTest, ScribbledRecoveryNeverCrashesOrHangs) {
  int failures = 0;
  const char* count = std::getenv("EXPLORER_SEEDS");
  const int seeds = count ? std::atoi(count) / 4 : 1500;
  for (int seed = 1; seed <= seeds && failures < 3; ++seed) {
    std::mt19937_64 pick(seed * 7919);
    QueueConfig config;
    config.num_watchers = 1;
    config.num_senders = 2 + pick() % 4;
    config.queue_size = 1 + pick() % 4;
    config.message_data_size_bytes = 8;
    Explorer explorer(config, seed);
    for (uint32_t i = 0; i < config.num_senders - 1; ++i) explorer.AddSender();
    explorer.RandomSteps(static_cast<int>(pick() % 200), 40);
    const RegionView& region = explorer.region();
    std::string what;
    const int scribbles = 1 + static_cast<int>(pick() % 3);
    for (int i = 0; i < scribbles; ++i) {
      const uint32_t s = pick() % config.num_senders;
      const uint32_t near = static_cast<uint32_t>(pick() % 40);
      const uint32_t qi = pick() % 3 == 0 ? QueueIndex::kInvalidValue
                          : pick() % 2   ? near
                                         : region.header()
                                               ->next_queue_index.RelaxedLoadRaw() -
                                               near % 8;
      const uint32_t m = static_cast<uint32_t>(
          pick() % (region.layout().num_messages + 2));
      const Index nasty = pick() % 5 == 0
                              ? Index::FromRaw(static_cast<Index::WordType>(pick()))
                              : Index(qi, m % Index::MaxMessages());
      switch (pick() % 5) {
        case 0:
          region.sender(s)->to_replace.Store(nasty);
          what += " to_replace[" + std::to_string(s) + "]";
          break;
        case 1:
          region.sender(s)->scratch_index.Store(nasty);
          what += " scratch[" + std::to_string(s) + "]";
          break;
        case 2:
          region.ring(pick() % config.queue_size)->Store(nasty);
          what += " ring";
          break;
        case 3:
          region.header()->next_queue_index.Store(QueueIndex::FromRaw(
              static_cast<uint32_t>(pick()), config.queue_size));
          what += " next";
          break;
        default:
          region.message(pick() % region.layout().num_messages)
              ->header.queue_index.Store(
                  QueueIndex::FromRaw(qi, config.queue_size));
          what += " header";
          break;
      }
      what += "=" + nasty.DebugString();
    }
    std::fflush(nullptr);
    const pid_t child = fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      alarm(10);
      absl::StatusOr<Sender> sender = explorer.queue().MakeSender();
      _exit(0);
    }
    int status = 0;
    ASSERT_EQ(waitpid(child, &status, 0), child);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      ++failures;
      ADD_FAILURE() << "seed " << seed << ": child "
                    << (WIFSIGNALED(status)
                            ? std::string("killed by signal ") +
                                  strsignal(WTERMSIG(status))
                            : "exited " + std::to_string(WEXITSTATUS(status)))
                    << " after scribbling" << what << explorer.Dump();
    }
    explorer.ReleaseAll();
  }
}

}  // namespace
}  // namespace lockless
