// tools/recovery_benchmark: how long MakeSender takes when it must recover
// senders that died mid-send, while another sender sends as fast as it can.
//
//   ./bazelw run -c opt //tools:recovery_benchmark -- [--rings=1K,64K,1M]
//       [--repeats=N]
//
// For each ring size, two situations, each built fresh --repeats times with
// real threads (a thread that exits holding its slot is marked dead by the
// kernel) and Send's steps written one by one (testing/send_steps.h):
//   in-slot     one sender died right after its ring CAS, before taking the
//               replaced message: its message still sits in its slot, which
//               decides it without a ring scan (unless the busy sender laps
//               the ring before MakeSender looks, as it may on small rings).
//   lapped      two senders raced for one index (the winner's CAS went in),
//               both died, and the ring was lapped since, so the slot says
//               nothing: decided by accounting, scanning the ring while the
//               busy sender keeps publishing.
// The busy sender runs on its own thread throughout the timed MakeSender.
// Prints min / median / max MakeSender wall time per cell.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "gflags/gflags.h"
#include "ipc/lockless_queue.h"
#include "testing/queue_memory.h"
#include "testing/send_steps.h"
#include "testing/sender_thread.h"
#include "tools/benchmark_system.h"

DEFINE_string(rings, "1K,64K,1M",
              "Ring sizes (queue_size), comma-separated; suffix K = 1024, "
              "M = 1048576.");
DEFINE_int32(repeats, 15, "Fresh channels per (ring, situation).");

namespace lockless {
namespace {

using Clock = std::chrono::steady_clock;
using testing::SenderThread;

// A sender thread publishing as fast as it can until destroyed.
class BusySender {
 public:
  explicit BusySender(const LocklessQueue& queue)
      : thread_([this, queue] { Loop(queue); }) {
    while (!claimed_.load()) std::this_thread::yield();
  }
  ~BusySender() {
    stop_.store(true);
    thread_.join();
  }
  void Start() { go_.store(true); }

 private:
  void Loop(const LocklessQueue& queue) {
    absl::StatusOr<Sender> sender = queue.MakeSender();
    claimed_.store(true);
    if (!sender.ok()) return;
    while (!go_.load() && !stop_.load()) std::this_thread::yield();
    for (uint64_t i = 0; !stop_.load(std::memory_order_relaxed); ++i) {
      if (sender->Send(&i, sizeof(i)) != SendResult::kOk) return;
    }
  }

  std::atomic<bool> claimed_{false};
  std::atomic<bool> go_{false};
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

enum class Situation { kInSlot, kLapped };

// Builds `situation` on a fresh channel with `queue_size` slots, then times
// one MakeSender while a busy sender publishes. Returns seconds, or a
// negative value if MakeSender failed.
double TimeOneRecovery(uint32_t queue_size, Situation situation) {
  QueueConfig config;
  config.num_watchers = 1;
  config.num_senders = 5;
  config.queue_size = queue_size;
  config.message_data_size_bytes = 8;
  testing::QueueMemory memory(config);
  absl::StatusOr<LocklessQueue> attached =
      LocklessQueue::Attach(memory.data(), memory.size_bytes(), config);
  if (!attached.ok()) return -1;
  const LocklessQueue& queue = *attached;
  BusySender busy(queue);
  {
    SenderThread first(queue), second(queue), lapper(queue);
    if (situation == Situation::kInSlot) {
      lapper.SendNumbered(5);
      const testing::Intent intent = testing::RecordIntent(
          queue.region(), first.slot(), testing::NextQueueIndex(queue));
      if (!testing::PublishIntent(queue.region(), intent)) return -1;
      first.Die();
    } else {
      testing::RaceForOneIndexThenLap(queue, first, second, lapper);
      first.Die();
      second.Die();
    }
  }
  busy.Start();
  const Clock::time_point start = Clock::now();
  absl::StatusOr<Sender> sender = queue.MakeSender();
  const double seconds =
      std::chrono::duration<double>(Clock::now() - start).count();
  if (!sender.ok()) {
    std::fprintf(stderr, "MakeSender failed: %s\n",
                 std::string(sender.status().message()).c_str());
    return -1;
  }
  return seconds;
}

std::string Milliseconds(double seconds) {
  return absl::StrFormat("%.3f", seconds * 1e3);
}

int Main() {
  std::vector<uint32_t> rings;
  for (absl::string_view part :
       absl::StrSplit(FLAGS_rings, ',', absl::SkipEmpty())) {
    uint32_t multiplier = 1;
    if (absl::EndsWithIgnoreCase(part, "k")) multiplier = 1024;
    if (absl::EndsWithIgnoreCase(part, "m")) multiplier = 1024 * 1024;
    if (multiplier != 1) part.remove_suffix(1);
    uint32_t value = 0;
    if (!absl::SimpleAtoi(part, &value) || value == 0) {
      std::fprintf(stderr, "--rings: bad size '%s'\n",
                   std::string(part).c_str());
      return 2;
    }
    rings.push_back(value * multiplier);
  }
  absl::PrintF(
      "MakeSender with recovery, one busy sender publishing throughout\n"
      "machine: %s\n%d fresh channels per cell; wall time in ms\n\n",
      benchmark_tool::MachineFacts(), FLAGS_repeats);
  absl::PrintF("%-10s %-11s %9s %9s %9s\n", "ring", "situation", "min",
               "median", "max");
  int failures = 0;
  for (const uint32_t ring : rings) {
    for (const Situation situation :
         {Situation::kInSlot, Situation::kLapped}) {
      std::vector<double> times;
      for (int r = 0; r < FLAGS_repeats; ++r) {
        const double seconds = TimeOneRecovery(ring, situation);
        if (seconds < 0) {
          ++failures;
        } else {
          times.push_back(seconds);
        }
      }
      if (times.empty()) continue;
      std::sort(times.begin(), times.end());
      absl::PrintF(
          "%-10u %-11s %9s %9s %9s\n", ring,
          situation == Situation::kInSlot ? "in-slot" : "lapped",
          Milliseconds(times.front()), Milliseconds(times[times.size() / 2]),
          Milliseconds(times.back()));
      std::fflush(stdout);
    }
  }
  if (failures > 0) {
    absl::PrintF("%d MakeSender calls failed (see above)\n", failures);
    return 1;
  }
  return 0;
}

}  // namespace
}  // namespace lockless

int main(int argc, char** argv) {
  gflags::SetUsageMessage(
      "Times MakeSender's recovery of dead senders while a busy sender "
      "sends.");
  gflags::ParseCommandLineFlags(&argc, &argv, true);
  return lockless::Main();
}
