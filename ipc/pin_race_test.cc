// Pinning under real concurrency: sender threads lap the ring as fast as they
// can while pinner threads pin, check and unpin. A pinned message's bytes
// must never change. Driven until enough has happened, not for a fixed time:
// at least kHeldPins pins were held while the ring lapped past them (each
// such lap made a sender take the pinned message and park it), and at least
// kQuickPins pins were taken and dropped (half of them on the oldest index,
// held until a sender took it), and at least kOverwrites pins were refused
// because a sender's CAS landed inside the pin's handshake.
#include <atomic>
#include <cstdint>
#include <cstring>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "gtest/gtest.h"
#include "ipc/lockless_queue.h"
#include "ipc/queue_config.h"
#include "testing/queue_invariants.h"
#include "testing/queue_memory.h"

namespace lockless {
namespace {

constexpr size_t kWords = 8;  // 64-byte payload.
constexpr int kHeldPins = 200;
constexpr int kQuickPins = 5000;
// Pins refused with kOverwrote: the ring slot moved between the pin's first
// look and its re-check, i.e. a sender's CAS landed inside the handshake.
constexpr int kOverwrites = 50;
// Generous bounds on attempts (not time): far beyond what the goals need.
constexpr int64_t kMaxAttempts = 50'000'000;

// Word 0 is a sequence number; the others are derived from it.
void Fill(uint64_t seq, uint64_t* words) {
  words[0] = seq;
  for (size_t w = 1; w < kWords; ++w) words[w] = seq * 0x9e3779b97f4a7c15u + w;
}

bool Consistent(const void* data) {
  uint64_t words[kWords];
  std::memcpy(words, data, sizeof(words));
  uint64_t expected[kWords];
  Fill(words[0], expected);
  return std::memcmp(words, expected, sizeof(words)) == 0;
}

TEST(PinRaceTest, PinnedBytesNeverChangeWhileSendersLap) {
  QueueConfig config;
  config.num_watchers = 0;
  config.num_senders = 2;
  config.queue_size = 8;
  config.message_data_size_bytes = kWords * sizeof(uint64_t);
  config.num_pinners = 2;
  testing::QueueMemory memory(config);
  const LocklessQueue queue =
      *LocklessQueue::Attach(memory.data(), memory.size_bytes(), config);

  std::atomic<bool> stop{false};
  std::atomic<int> held_pins{0};
  std::atomic<int> quick_pins{0};
  std::atomic<int> overwrites{0};
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (uint64_t s = 0; s < config.num_senders; ++s) {
    threads.emplace_back([&, s] {
      absl::StatusOr<Sender> sender = queue.MakeSender();
      if (!sender.ok()) {
        ++failures;
        return;
      }
      for (uint64_t seq = s << 48; !stop.load(std::memory_order_relaxed);
           ++seq) {
        uint64_t words[kWords];
        Fill(seq, words);
        if (sender->Send(words, sizeof(words)) != SendResult::kOk) {
          ++failures;
          return;
        }
      }
    });
  }
  // Pinner 0 holds each pin until the ring laps past it; pinner 1 pins and
  // unpins as fast as it can.
  for (int p = 0; p < 2; ++p) {
    threads.emplace_back([&, p] {
      absl::StatusOr<Pinner> pinner = queue.MakePinner();
      if (!pinner.ok()) {
        ++failures;
        return;
      }
      std::atomic<int>& goal_count = p == 0 ? held_pins : quick_pins;
      const int goal = p == 0 ? kHeldPins : kQuickPins;
      for (int64_t attempt = 0;
           attempt < kMaxAttempts &&
           (goal_count.load() < goal ||
            (p == 1 && overwrites.load() < kOverwrites)) &&
           failures.load() == 0;
           ++attempt) {
        // Pinner 1 alternates the newest and the oldest index: the oldest
        // is the next a sender replaces, so its pins race the senders' CAS
        // and scan (counted by kOverwrote, and a kGood one is then held
        // until a sender has taken it, below).
        const bool oldest = p == 1 && attempt % 2 == 1;
        const QueueIndex latest =
            oldest ? queue.OldestQueueIndex() : queue.LatestQueueIndex();
        if (!latest.valid()) continue;
        PinnedMessage view;
        const PinResult result = pinner->Pin(latest, &view);
        if (result != PinResult::kGood) {
          if (result == PinResult::kOverwrote) ++overwrites;
          if (result != PinResult::kTooOld && result != PinResult::kOverwrote) {
            ++failures;
          }
          continue;
        }
        uint64_t at_pin[kWords];
        std::memcpy(at_pin, view.data, sizeof(at_pin));
        if (!Consistent(at_pin) || view.info.length != sizeof(at_pin)) {
          ++failures;
        }
        if (p == 0 || oldest) {
          // Hold until the ring laps past the pinned index (a sender took
          // the message out of the ring and parked it), checking throughout.
          int64_t spins = 0;
          while (queue.LatestQueueIndex().DistanceFrom(latest) <
                     config.queue_size &&
                 spins++ < kMaxAttempts) {
            if (std::memcmp(at_pin, view.data, sizeof(at_pin)) != 0) {
              ++failures;
              break;
            }
          }
          if (spins >= kMaxAttempts) ++failures;
        }
        if (std::memcmp(at_pin, view.data, sizeof(at_pin)) != 0) ++failures;
        pinner->Unpin();
        ++goal_count;
      }
    });
  }
  // The pinner threads finish on their goals (or bounds); then stop senders.
  threads[2].join();
  threads[3].join();
  stop = true;
  threads[0].join();
  threads[1].join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_GE(held_pins.load(), kHeldPins);
  EXPECT_GE(quick_pins.load(), kQuickPins);
  EXPECT_GE(overwrites.load(), kOverwrites);
  EXPECT_TRUE(testing::CheckEveryMessageOwnedOnce(queue).ok());
}

}  // namespace
}  // namespace lockless
