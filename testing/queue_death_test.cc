// The death suite: kills a process after every single write it makes to a
// channel (testing/death_test_harness.h) and checks that the survivor finds a
// consistent channel — DESIGN.md section 6 proven write by write.
//
// After each death the check opens the queue, creates senders (which runs
// recovery), sends, reads every message back, and verifies:
//   - the messages read are exactly: those sent before the child ran, then a
//     prefix of the child's messages (the one in flight may or may not have
//     been published), then the check's own message, in order, all GOOD;
//   - every message is owned exactly once (a ring slot, a sender's scratch or
//     one of its parked entries);
//   - with pinning: a pinned message's bytes never change and no claimed
//     sender's scratch is pinned;
//   - every sender slot can be claimed (none leaked);
//   - LatestQueueIndex is exact;
//   - every message's guard is intact once every slot was claimed.
#include <sys/mman.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "gtest/gtest.h"
#include "ipc/internal/queue_layout.h"
#include "ipc/lockless_queue.h"
#include "testing/death_test_harness.h"
#include "testing/queue_invariants.h"
#include "testing/send_steps.h"
#include "testing/sender_thread.h"

namespace lockless {
namespace {

using ::lockless::testing::DeathTestOptions;
using ::lockless::testing::DeathTestReport;
using ::lockless::testing::RunDeathTest;

QueueConfig DeathConfig() {
  QueueConfig config;
  config.num_watchers = 2;
  config.num_senders = 3;
  config.queue_size = 6;
  config.message_data_size_bytes = 24;
  return config;
}

uint64_t RegionSize(const QueueConfig& config) {
  return *QueueMemorySize(config);
}

LocklessQueue AttachOrDie(void* region, const QueueConfig& config) {
  absl::StatusOr<LocklessQueue> queue =
      LocklessQueue::Attach(region, RegionSize(config), config);
  if (!queue.ok()) {
    std::fprintf(stderr, "attach failed: %s\n",
                 std::string(queue.status().message()).c_str());
    std::abort();
  }
  return *queue;
}

// For `run` (a forked child, no gtest assertions): any failure aborts, which
// the harness reports as a crash of the child.
Sender MakeSenderOrDie(const LocklessQueue& queue) {
  absl::StatusOr<Sender> sender = queue.MakeSender();
  if (!sender.ok()) std::abort();
  return *std::move(sender);
}

void SendOrDie(Sender& sender, const void* data, size_t length) {
  if (sender.Send(data, length) != SendResult::kOk) std::abort();
}

std::string Payload(const std::string& tag, int i) {
  return absl::StrCat(tag, i);
}

// Sends `count` messages tagged `tag` with a fresh sender (the child's
// function under test, or setup in the parent).
void SendMessages(const LocklessQueue& queue, const std::string& tag,
                  int count) {
  Sender sender = MakeSenderOrDie(queue);
  for (int i = 0; i < count; ++i) {
    const std::string payload = Payload(tag, i);
    SendOrDie(sender, payload.data(), payload.size());
  }
}

// Reads every message from index 0 to LatestQueueIndex (no wrap in these
// tests: queue_size exceeds what is sent, unless `first` says otherwise).
absl::StatusOr<std::vector<std::string>> ReadAll(const LocklessQueue& queue,
                                                 uint32_t first) {
  std::vector<std::string> messages;
  const QueueIndex latest = queue.LatestQueueIndex();
  if (!latest.valid()) return messages;
  for (QueueIndex index = queue.MakeQueueIndex(first);;
       index = index.Increment()) {
    char buffer[4096];
    MessageInfo info;
    const ReadResult result = queue.Read(index, &info, buffer, sizeof(buffer));
    if (result != ReadResult::kGood) {
      return absl::DataLossError(absl::StrCat("reading ", index.DebugString(),
                                              ": ", ReadResultName(result)));
    }
    messages.emplace_back(buffer, info.length);
    if (index == latest) break;
  }
  return messages;
}

// Names the first message that differs, where, and how (payloads may be
// kilobytes of binary: show a short escaped excerpt, not the whole thing).
absl::Status DescribeMismatch(const std::vector<std::string>& read,
                              const std::vector<std::string>& expected) {
  const auto excerpt = [](const std::string& m, size_t at) {
    return absl::CHexEscape(m.substr(at, 24));
  };
  for (size_t i = 0; i < std::max(read.size(), expected.size()); ++i) {
    if (i >= read.size() || i >= expected.size()) {
      return absl::DataLossError(absl::StrCat(
          "read ", read.size(), " messages, expected ", expected.size()));
    }
    const std::string& got = read[i];
    const std::string& want = expected[i];
    if (got == want) continue;
    size_t at = 0;
    while (at < got.size() && at < want.size() && got[at] == want[at]) ++at;
    return absl::DataLossError(absl::StrCat(
        "message ", i, " of ", read.size(), " differs at byte ", at,
        " (length ", got.size(), ", expected ", want.size(), "): \"",
        excerpt(got, at), "\" instead of \"", excerpt(want, at), "\""));
  }
  return absl::OkStatus();
}

absl::Status CheckPinnedBytes(const PinnedMessage& view,
                              const std::string& expected, const char* when) {
  if (view.info.length != expected.size() ||
      std::memcmp(view.data, expected.data(), expected.size()) != 0) {
    return absl::DataLossError(
        absl::StrCat("pinned message changed ", when, ": \"",
                     absl::CHexEscape(std::string(
                         static_cast<const char*>(view.data),
                         std::min<size_t>(view.info.length, 24))),
                     "\", expected \"", expected, "\""));
  }
  return absl::OkStatus();
}

// Pinned messages a check must find unchanged: each view and the bytes it
// held when pinned.
using PinnedBytes = std::vector<std::pair<const PinnedMessage*, std::string>>;

// The check shared by the recoverer cases: every sender slot can be claimed
// (nothing leaked, every dead one recovered) and none is handed a pinned
// message of `pins` as scratch, each new sender sends `rounds` messages
// (after each, every pin in `pins` still holds its bytes), and every message
// is then owned exactly once.
absl::Status ClaimEverySlotSendAndCheckOwnership(const LocklessQueue& queue,
                                                 const QueueConfig& config,
                                                 uint32_t rounds,
                                                 const PinnedBytes& pins = {}) {
  std::vector<Sender> senders;
  while (senders.size() < config.num_senders) {
    absl::StatusOr<Sender> sender = queue.MakeSender();
    if (!sender.ok()) return sender.status();
    for (const auto& [view, bytes] : pins) {
      if (sender->data() == view->data) {
        return absl::DataLossError(absl::StrCat(
            "sender slot ", sender->slot(), " was handed a pinned scratch"));
      }
    }
    senders.push_back(*std::move(sender));
  }
  for (uint32_t round = 0; round < rounds; ++round) {
    for (Sender& sender : senders) {
      const SendResult result = sender.Send("check", 5);
      if (result != SendResult::kOk) {
        return absl::InternalError(
            absl::StrCat("send in check: ", SendResultName(result)));
      }
      for (const auto& [view, bytes] : pins) {
        if (absl::Status status =
                CheckPinnedBytes(*view, bytes, "while the check sent");
            !status.ok()) {
          return status;
        }
      }
    }
  }
  return testing::CheckEveryMessageOwnedOnce(queue);
}

// The check shared by the sender suites: recovery, then `expected_before`
// (sent before the child), a prefix of `child` messages, then one message
// from a sender made here.
absl::Status CheckAfterSenderDeath(void* region, const QueueConfig& config,
                                   const std::vector<std::string>& before,
                                   const std::vector<std::string>& child,
                                   uint32_t first_read) {
  const LocklessQueue queue = AttachOrDie(region, config);
  absl::StatusOr<Sender> sender = queue.MakeSender();
  if (!sender.ok()) return sender.status();
  if (absl::Status status = testing::CheckEveryMessageOwnedOnce(queue);
      !status.ok()) {
    return absl::Status(status.code(),
                        absl::StrCat("after recovery: ", status.message()));
  }
  const std::string mine = "check";
  if (sender->Send(mine.data(), mine.size()) != SendResult::kOk) {
    return absl::InternalError("send in check failed");
  }
  absl::StatusOr<std::vector<std::string>> read = ReadAll(queue, first_read);
  if (!read.ok()) return read.status();
  // before + child[0..k) + "check" for some k.
  const size_t k = read->size() - before.size() - 1;
  if (read->size() < before.size() + 1 || k > child.size()) {
    return absl::DataLossError(
        absl::StrCat("read ", read->size(), " messages"));
  }
  std::vector<std::string> expected = before;
  expected.insert(expected.end(), child.begin(), child.begin() + k);
  expected.push_back(mine);
  if (*read != expected) return DescribeMismatch(*read, expected);
  // Every other sender slot is claimable too (nothing leaked).
  std::vector<Sender> others;
  for (uint32_t s = 1; s < config.num_senders; ++s) {
    absl::StatusOr<Sender> other = queue.MakeSender();
    if (!other.ok()) {
      return absl::Status(
          other.status().code(),
          absl::StrCat("sender slot leaked: ", other.status().message()));
    }
    others.push_back(*std::move(other));
  }
  if (absl::Status status = testing::CheckEveryMessageOwnedOnce(queue);
      !status.ok())
    return status;
  // Every slot claimed: every guard is intact (written by initialisation,
  // never broken by a send, repaired by the claim if an overrun was cut
  // short by the death).
  return queue.CheckGuards();
}

// Options for a death test over a queue with `config`: the region's size and
// its robust futex words (from the layout the configuration implies, not from
// the header, which may be half-written when the creator dies).
DeathTestOptions QueueDeathOptions(const QueueConfig& config) {
  DeathTestOptions options;
  options.region_size_bytes = RegionSize(config);
  options.robust_futex_words = [config](void* region) {
    return internal::RobustFutexWords(
        internal::RegionView(region, *internal::ComputeLayout(config)));
  };
  return options;
}

// Runs the death test, logs how many die points it tested, and expects every
// recorded write to have been a die point, at least `min_writes` of them
// where the harness single-steps.
void ExpectSurvivesEveryDeath(const char* name, const DeathTestOptions& options,
                              size_t min_writes = 1) {
  absl::StatusOr<DeathTestReport> report = RunDeathTest(options);
  ASSERT_TRUE(report.ok()) << report.status();
  std::printf(
      "%s: %zu writes recorded, %zu die points tested, %zu owner-died "
      "markings emulated\n",
      name, report->writes_recorded, report->die_points_tested,
      report->owner_died_emulated);
  std::fflush(stdout);
  EXPECT_EQ(report->die_points_tested, report->writes_recorded);
  // The kernel itself (walking the dead child's robust list through the twin
  // mapping) must have marked every dead owner: recovery is proven against
  // real owner-died markings, not the harness's emulation of them.
  EXPECT_EQ(report->owner_died_emulated, 0u);
  if (testing::DeathTestSupported()) {
    EXPECT_GE(report->writes_recorded, min_writes);
  }
}

std::vector<std::string> Tagged(const std::string& tag, int count) {
  std::vector<std::string> out;
  for (int i = 0; i < count; ++i) out.push_back(Payload(tag, i));
  return out;
}

// A sender dies anywhere in MakeSender + two sends + releasing its slot.
TEST(QueueDeathTest, SenderDiesMidSend) {
  const QueueConfig config = DeathConfig();
  DeathTestOptions options = QueueDeathOptions(config);
  options.prepare = [&](void* region) {
    SendMessages(AttachOrDie(region, config), "p", 2);
  };
  options.run = [&](void* region) {
    SendMessages(AttachOrDie(region, config), "c", 2);
  };
  options.check = [&](void* region) {
    return CheckAfterSenderDeath(region, config, Tagged("p", 2), Tagged("c", 2),
                                 0);
  };
  ExpectSurvivesEveryDeath("sender dies mid-send", options,
                           /*min_writes=*/20);
}

// The same while the ring wraps (the child replaces real messages), with a
// live sender in the surviving process whose scratch recovery must count.
TEST(QueueDeathTest, SenderDiesMidSendWhileRingWraps) {
  const QueueConfig config = DeathConfig();
  std::optional<Sender> live_sender;
  DeathTestOptions options = QueueDeathOptions(config);
  options.prepare = [&](void* region) {
    const LocklessQueue queue = AttachOrDie(region, config);
    SendMessages(queue, "p", 5);  // Ring of 6: the child's sends wrap it.
    live_sender.emplace(*queue.MakeSender());
  };
  // Runs after the recording run too, which has no check: the live sender
  // must unlock its slot while its region is still mapped.
  options.cleanup = [&](void*) { live_sender.reset(); };
  options.run = [&](void* region) {
    SendMessages(AttachOrDie(region, config), "c", 3);
  };
  options.check = [&](void* region) -> absl::Status {
    // Release the live sender first so the check can claim every slot; its
    // scratch stayed its own throughout.
    live_sender.reset();
    const std::vector<std::string> before = Tagged("p", 5);
    // 5 + up to 3 + 1 messages in a ring of 6: read only what is still in
    // the ring, i.e. from LatestQueueIndex - 5.
    const LocklessQueue queue = AttachOrDie(region, config);
    absl::StatusOr<Sender> sender = queue.MakeSender();
    if (!sender.ok()) return sender.status();
    if (absl::Status status = testing::CheckEveryMessageOwnedOnce(queue);
        !status.ok()) {
      return status;
    }
    if (sender->Send("check", 5) != SendResult::kOk) {
      return absl::InternalError("send in check failed");
    }
    const QueueIndex latest = queue.LatestQueueIndex();
    const uint32_t sent = latest.index() + 1;
    if (sent < 6 || sent > 9) {
      return absl::DataLossError(absl::StrCat(sent, " messages sent"));
    }
    absl::StatusOr<std::vector<std::string>> read =
        ReadAll(queue, sent - config.queue_size);
    if (!read.ok()) return read.status();
    std::vector<std::string> all = before;
    for (uint32_t i = 0; i + 6 < sent; ++i) all.push_back(Payload("c", i));
    all.push_back("check");
    const std::vector<std::string> expected(all.end() - config.queue_size,
                                            all.end());
    if (*read != expected) return absl::DataLossError("wrong messages");
    return testing::CheckEveryMessageOwnedOnce(queue);
  };
  ExpectSurvivesEveryDeath("sender dies mid-send while the ring wraps",
                           options);
}

// Two sends of near-page-sized payloads: every vector store of the payload
// copy is a die point of its own (hundreds in all), so a death anywhere inside
// the data must leave the message unpublished or published whole.
TEST(QueueDeathTest, SenderDiesMidLargeSends) {
  QueueConfig config = DeathConfig();
  config.message_data_size_bytes = 2048;
  constexpr size_t kPayloadBytes = 2000;
  const auto payload = [](char fill, int i) {
    std::string data(kPayloadBytes, fill);
    for (size_t b = 0; b < data.size(); b += 97) data[b] = '0' + i + b % 7;
    return data;
  };
  DeathTestOptions options = QueueDeathOptions(config);
  options.prepare = [&](void* region) {
    SendMessages(AttachOrDie(region, config), "p", 1);
  };
  options.run = [&](void* region) {
    const LocklessQueue queue = AttachOrDie(region, config);
    Sender sender = MakeSenderOrDie(queue);
    // memcpy picks its store order from the source's address and alignment:
    // copy from a static buffer, whose address is the same in every child,
    // so that every replay makes the same writes (a heap string's address
    // depends on what the parent allocated since the last fork).
    static char source[kPayloadBytes];
    for (int i = 0; i < 2; ++i) {
      const std::string data = payload('L', i);
      std::memcpy(source, data.data(), data.size());
      SendOrDie(sender, source, sizeof(source));
    }
  };
  options.check = [&](void* region) {
    return CheckAfterSenderDeath(region, config, Tagged("p", 1),
                                 {payload('L', 0), payload('L', 1)}, 0);
  };
  ExpectSurvivesEveryDeath("sender dies mid-send of two 2000 B messages",
                           options,
                           // The payload copy itself is traced: no store is
                           // wider than 64 bytes.
                           /*min_writes=*/2 * kPayloadBytes / 64);
}

// Zero-copy sends whose payload the caller writes straight into the shared
// scratch buffer, eight bytes per store (as a user filling a struct would):
// two sends give hundreds of die points, deterministically on any CPU. A
// death while the caller is still filling the buffer, or inside Send, must
// leave the message unpublished or published whole.
TEST(QueueDeathTest, SenderDiesMidZeroCopySends) {
  QueueConfig config = DeathConfig();
  config.message_data_size_bytes = 1024;
  constexpr size_t kWords = 128;  // 1 KiB payload.
  const auto payload = [](int i) {
    std::string data(kWords * sizeof(uint64_t), '\0');
    for (size_t w = 0; w < kWords; ++w) {
      const uint64_t word =
          0x5a00000000000000u | (static_cast<uint64_t>(i) << 32) | w;
      std::memcpy(&data[w * sizeof(word)], &word, sizeof(word));
    }
    return data;
  };
  DeathTestOptions options = QueueDeathOptions(config);
  options.prepare = [&](void* region) {
    SendMessages(AttachOrDie(region, config), "p", 1);
  };
  options.run = [&](void* region) {
    const LocklessQueue queue = AttachOrDie(region, config);
    Sender sender = MakeSenderOrDie(queue);
    for (int i = 0; i < 2; ++i) {
      const std::string data = payload(i);
      // volatile: one traced store per word, whatever the optimiser likes.
      volatile uint64_t* words = static_cast<volatile uint64_t*>(sender.data());
      for (size_t w = 0; w < kWords; ++w) {
        uint64_t word;
        std::memcpy(&word, &data[w * sizeof(word)], sizeof(word));
        words[w] = word;
      }
      if (sender.Send(data.size()) != SendResult::kOk) std::abort();
    }
  };
  options.check = [&](void* region) {
    return CheckAfterSenderDeath(region, config, Tagged("p", 1),
                                 {payload(0), payload(1)}, 0);
  };
  ExpectSurvivesEveryDeath(
      "sender dies mid zero-copy send of two 1 KiB messages", options,
      /*min_writes=*/2 * kWords);
}

// Writes `bytes` bytes past `sender`'s max_size(), each the complement of
// the guard byte it replaces, one traced store per byte (volatile).
void OverrunGuard(const LocklessQueue& queue, Sender& sender, size_t bytes) {
  const uint64_t message = queue.region()
                               .sender(sender.slot())
                               ->scratch_index.Load()
                               .message_index();
  volatile unsigned char* const past =
      static_cast<volatile unsigned char*>(sender.data()) + sender.max_size();
  for (size_t i = 0; i < bytes; ++i) {
    past[i] = static_cast<unsigned char>(~internal::GuardByte(message, i));
  }
}

// Guards (ipc/internal/queue_layout.h, Message): a dead sender left its
// scratch guard broken; the child's MakeSender repairs it (guard padding,
// then the guard word), then the child overruns again, Send reports it and
// restores the guard, and the child sends two messages. A death at any of
// those writes (the overrun's own included) leaves a channel whose next
// MakeSender repairs whatever guard is still broken: afterwards the usual
// sender checks hold and CheckGuards finds every guard intact.
TEST(QueueDeathTest, SenderDiesRepairingAGuard) {
  const QueueConfig config = DeathConfig();
  DeathTestOptions options = QueueDeathOptions(config);
  options.prepare = [&](void* region) {
    const LocklessQueue queue = AttachOrDie(region, config);
    SendMessages(queue, "p", 1);
    testing::SenderThread dead(queue);
    if (!dead.status().ok() || dead.slot() != 0) std::abort();
    dead.Run([&](Sender& sender) { OverrunGuard(queue, sender, 5); });
    dead.Die();
  };
  options.run = [&](void* region) {
    const LocklessQueue queue = AttachOrDie(region, config);
    Sender sender = MakeSenderOrDie(queue);  // Claims and repairs slot 0.
    if (sender.inherited_guard_damage().ok()) std::abort();
    OverrunGuard(queue, sender, 9);
    if (sender.Send(0) != SendResult::kGuardOverwritten) std::abort();
    for (int i = 0; i < 2; ++i) {
      const std::string payload = Payload("c", i);
      std::memcpy(sender.data(), payload.data(), payload.size());
      if (sender.Send(payload.size()) != SendResult::kOk) std::abort();
    }
  };
  options.check = [&](void* region) {
    // Includes CheckGuards with every slot claimed.
    return CheckAfterSenderDeath(region, config, Tagged("p", 1),
                                 Tagged("c", 2), 0);
  };
  ExpectSurvivesEveryDeath("sender dies repairing or restoring a guard",
                           options, /*min_writes=*/9 + 2);
}

// One process with two senders (both die with it), interleaving sends of
// large payloads: recovery must handle two dead senders at once, and the
// payload copies add many die points inside the message data.
TEST(QueueDeathTest, TwoSendersInOneProcessDie) {
  QueueConfig config = DeathConfig();
  config.message_data_size_bytes = 200;
  const auto payload = [](const std::string& tag) {
    return tag + std::string(150, tag[0]);
  };
  DeathTestOptions options = QueueDeathOptions(config);
  options.prepare = [&](void* region) {
    SendMessages(AttachOrDie(region, config), "p", 1);
  };
  options.run = [&](void* region) {
    const LocklessQueue queue = AttachOrDie(region, config);
    Sender a = MakeSenderOrDie(queue);
    Sender b = MakeSenderOrDie(queue);
    for (const std::string tag : {"a0", "b0", "a1", "b1"}) {
      const std::string data = payload(tag);
      SendOrDie(tag[0] == 'a' ? a : b, data.data(), data.size());
    }
  };
  options.check = [&](void* region) {
    return CheckAfterSenderDeath(
        region, config, Tagged("p", 1),
        {payload("a0"), payload("b0"), payload("a1"), payload("b1")}, 0);
  };
  ExpectSurvivesEveryDeath("two senders in one process die", options);
}

// A watcher dies anywhere in its registration: its slot is reusable and it is
// never counted by Wakeup.
TEST(QueueDeathTest, WatcherDiesMidRegistration) {
  const QueueConfig config = DeathConfig();
  DeathTestOptions options = QueueDeathOptions(config);
  options.prepare = [&](void* region) { AttachOrDie(region, config); };
  options.run = [&](void* region) {
    const LocklessQueue queue = AttachOrDie(region, config);
    absl::StatusOr<Watcher> watcher = queue.MakeWatcher(0);
    if (!watcher.ok()) std::abort();
  };
  options.check = [&](void* region) -> absl::Status {
    const LocklessQueue queue = AttachOrDie(region, config);
    WakeUpper wake_upper(queue);
    if (int woken = wake_upper.Wakeup(0); woken != 0) {
      return absl::DataLossError(
          absl::StrCat("a dead watcher was woken (", woken, ")"));
    }
    // Every slot can be registered again. Block the signal so the wake-up
    // below stays pending instead of killing the test.
    sigset_t block, previous;
    sigemptyset(&block);
    sigaddset(&block, WakeupSignal());
    pthread_sigmask(SIG_BLOCK, &block, &previous);
    std::vector<Watcher> watchers;
    for (uint32_t w = 0; w < config.num_watchers; ++w) {
      absl::StatusOr<Watcher> watcher = queue.MakeWatcher(0);
      if (!watcher.ok()) return watcher.status();
      watchers.push_back(*std::move(watcher));
    }
    const int woken = wake_upper.Wakeup(0);
    watchers.clear();
    // Drain the pending signals before unblocking.
    const timespec zero{0, 0};
    while (sigtimedwait(&block, nullptr, &zero) > 0) {
    }
    pthread_sigmask(SIG_SETMASK, &previous, nullptr);
    if (woken != static_cast<int>(config.num_watchers)) {
      return absl::DataLossError(absl::StrCat("woke ", woken, " watchers"));
    }
    return absl::OkStatus();
  };
  ExpectSurvivesEveryDeath("watcher dies mid-registration", options);
}

// A waiter dies anywhere in MakeWaiter + a Wait (past deadline, so it sets
// its bit, looks, times out and clears it) + its unregistration: a bit left
// set is cleared by the next registration, and every slot is usable again.
TEST(QueueDeathTest, WaiterDiesMidWait) {
  const QueueConfig config = DeathConfig();
  DeathTestOptions options = QueueDeathOptions(config);
  options.prepare = [&](void* region) { AttachOrDie(region, config); };
  options.run = [&](void* region) {
    const LocklessQueue queue = AttachOrDie(region, config);
    absl::StatusOr<Waiter> waiter = queue.MakeWaiter();
    if (!waiter.ok()) std::abort();
    if (waiter->Wait(queue.MakeQueueIndex(0), /*deadline_ns=*/0) !=
        WaitResult::kTimedOut) {
      std::abort();
    }
  };
  options.check = [&](void* region) -> absl::Status {
    const LocklessQueue queue = AttachOrDie(region, config);
    std::vector<Waiter> waiters;
    for (uint32_t w = 0; w < config.num_watchers; ++w) {
      absl::StatusOr<Waiter> waiter = queue.MakeWaiter();
      if (!waiter.ok()) return waiter.status();
      waiters.push_back(*std::move(waiter));
    }
    if (const uint64_t bits = queue.region().header()->waiter_bits.load();
        bits != 0) {
      return absl::DataLossError(
          absl::StrCat("waiter bits left set: ", bits));
    }
    return absl::OkStatus();
  };
  ExpectSurvivesEveryDeath("waiter dies mid-wait", options);
}

// A waker dies anywhere in Wakeup (after claiming a watcher's pending flag,
// before or after signalling): once the watcher acknowledges, the next
// Wakeup signals it again.
TEST(QueueDeathTest, WakerDiesMidWakeup) {
  const QueueConfig config = DeathConfig();
  // This thread is the watcher; its wake-ups stay pending (blocked) and are
  // drained in `check`.
  sigset_t block, previous;
  sigemptyset(&block);
  sigaddset(&block, WakeupSignal());
  pthread_sigmask(SIG_BLOCK, &block, &previous);
  auto drain = [&] {
    int drained = 0;
    const timespec zero{0, 0};
    while (sigtimedwait(&block, nullptr, &zero) > 0) ++drained;
    return drained;
  };
  std::optional<Watcher> watcher;
  DeathTestOptions options = QueueDeathOptions(config);
  options.prepare = [&](void* region) {
    const LocklessQueue queue = AttachOrDie(region, config);
    absl::StatusOr<Watcher> made = queue.MakeWatcher(0);
    if (!made.ok()) std::abort();
    watcher.emplace(*std::move(made));
  };
  options.cleanup = [&](void*) {
    watcher.reset();
    drain();
  };
  options.run = [&](void* region) {
    const LocklessQueue queue = AttachOrDie(region, config);
    WakeUpper wake_upper(queue);
    if (wake_upper.Wakeup(0) != 1) std::abort();
  };
  options.check = [&](void* region) -> absl::Status {
    const LocklessQueue queue = AttachOrDie(region, config);
    drain();
    watcher->Acknowledge();
    WakeupReport report;
    WakeUpper wake_upper(queue);
    wake_upper.Wakeup(0, &report);
    if (report.signalled != 1) {
      return absl::DataLossError(
          absl::StrCat("after acknowledging, Wakeup signalled ",
                       report.signalled, " (pending ", report.already_pending,
                       ")"));
    }
    if (drain() != 1) return absl::DataLossError("no wake-up queued");
    return absl::OkStatus();
  };
  ExpectSurvivesEveryDeath("waker dies mid-wakeup", options);
  pthread_sigmask(SIG_SETMASK, &previous, nullptr);
}

// The creator dies anywhere while initialising the region: the next opener
// finishes the job and the queue works.
TEST(QueueDeathTest, CreatorDiesMidInitialisation) {
  QueueConfig config = DeathConfig();
  config.queue_size = 3;
  config.num_senders = 2;
  config.num_watchers = 1;
  config.message_data_size_bytes = 8;
  DeathTestOptions options = QueueDeathOptions(config);
  options.prepare = [](void*) {};
  options.run = [&](void* region) { AttachOrDie(region, config); };
  options.check = [&](void* region) {
    return CheckAfterSenderDeath(region, config, {}, {}, 0);
  };
  ExpectSurvivesEveryDeath("creator dies mid-initialisation", options);
}

// Recovery itself dies anywhere while it repairs three dead senders of
// different kinds: one whose publish went in and was lapped since (decided by
// accounting), one that died between f and g (state 2), and one whose publish
// is still in its slot and never advanced next_queue_index (3a, then the
// index is advanced). The next MakeSender finishes the repair: each dead slot
// owns what the protocol says, LatestQueueIndex is exact, nothing leaked.
// (First written by the adversarial review of the recovery.)
TEST(QueueDeathTest, RecovererDiesMidRecovery) {
  QueueConfig config = DeathConfig();
  config.num_senders = 5;
  config.queue_size = 4;
  // Per dead slot, the message it owns.
  std::vector<std::pair<uint32_t, uint32_t>> truth;
  DeathTestOptions options = QueueDeathOptions(config);
  options.prepare = [&](void* region) {
    truth.clear();
    const LocklessQueue queue = AttachOrDie(region, config);
    const internal::RegionView& view = queue.region();
    // Threads, joined before the harness forks.
    testing::SenderThread lapper(queue), d1(queue), d2(queue), d3(queue);
    lapper.SendNumbered(5);
    const testing::Intent i1 =
        testing::RecordIntent(view, d1.slot(), testing::NextQueueIndex(queue));
    if (!testing::PublishIntent(view, i1)) std::abort();
    d1.Die();
    truth.emplace_back(i1.slot, i1.to_replace.message_index());
    lapper.SendNumbered(4);  // Laps d1's slot.
    const testing::Intent i2 =
        testing::RecordIntent(view, d2.slot(), testing::NextQueueIndex(queue));
    if (!testing::PublishIntent(view, i2)) std::abort();
    QueueIndex expected = i2.queue_index;
    view.header()->next_queue_index.CompareAndExchangeStrong(
        &expected, i2.queue_index.Increment());
    view.sender(i2.slot)->scratch_index.Store(i2.to_replace);  // f, not g.
    d2.Die();
    truth.emplace_back(i2.slot, i2.to_replace.message_index());
    const testing::Intent i3 =
        testing::RecordIntent(view, d3.slot(), testing::NextQueueIndex(queue));
    if (!testing::PublishIntent(view, i3)) std::abort();
    d3.Die();  // Published; next_queue_index not advanced.
    truth.emplace_back(i3.slot, i3.to_replace.message_index());
  };
  options.run = [&](void* region) {
    Sender sender = MakeSenderOrDie(AttachOrDie(region, config));
    SendOrDie(sender, "run", 3);
  };
  options.check = [&](void* region) -> absl::Status {
    const LocklessQueue queue = AttachOrDie(region, config);
    // The first MakeSender recovers; its slot is released again before the
    // final check claims every slot.
    MakeSenderOrDie(queue);
    if (absl::Status status = testing::CheckEveryMessageOwnedOnce(queue);
        !status.ok()) {
      return status;
    }
    for (const auto& [slot, message] : truth) {
      const uint32_t owned =
          queue.region().sender(slot)->scratch_index.Load().message_index();
      if (owned != message) {
        return absl::DataLossError(absl::StrCat("dead slot ", slot, " owns ",
                                                owned, ", truth ", message));
      }
    }
    const QueueIndex next = queue.LatestQueueIndex().Increment();
    if (!queue.region().ring(next.Wrapped())->Load().IsPlausible(
            next.DecrementBy(config.queue_size))) {
      return absl::DataLossError("LatestQueueIndex is not exact");
    }
    return ClaimEverySlotSendAndCheckOwnership(queue, config, /*rounds=*/1);
  };
  ExpectSurvivesEveryDeath("recoverer dies mid-recovery", options,
                           /*min_writes=*/6);
}

// A sender died mid-send without the kernel marking it (its robust list was
// lost): its word still names its tid, which no longer exists. MakeSender
// proves it dead from the slot's owner record and marks it as the kernel
// would have, then recovers and claims; a death at any of those writes (the
// mark included) leaves the next MakeSender to finish the repair.
TEST(QueueDeathTest, RecovererDiesWhileTakingOverAnUnmarkedDeadSender) {
  QueueConfig config = DeathConfig();
  config.num_senders = 2;
  config.queue_size = 4;
  DeathTestOptions options = QueueDeathOptions(config);
  options.prepare = [&](void* region) {
    const LocklessQueue queue = AttachOrDie(region, config);
    const internal::RegionView& view = queue.region();
    testing::SenderThread lapper(queue), dead(queue);
    lapper.SendNumbered(3);
    const testing::Intent intent = testing::RecordIntent(
        view, dead.slot(), testing::NextQueueIndex(queue));
    if (!testing::PublishIntent(view, intent)) std::abort();
    dead.Die();
    // Undo the kernel's mark: the word names the exited (joined) thread
    // again, whose own record is still in the slot.
    internal::SenderSlot* const slot = view.sender(intent.slot);
    const int32_t tid = slot->owner.tid.load();
    if (tid == 0 || !OwnerDied(slot->ownership.futex.load())) std::abort();
    slot->ownership.futex.store(static_cast<uint32_t>(tid));
  };
  options.run = [&](void* region) {
    Sender sender = MakeSenderOrDie(AttachOrDie(region, config));
    SendOrDie(sender, "run", 3);
  };
  options.check = [&](void* region) -> absl::Status {
    const LocklessQueue queue = AttachOrDie(region, config);
    // Both slots are claimed (the dead one recovered), every message is
    // owned once, and every sender can send.
    return ClaimEverySlotSendAndCheckOwnership(queue, config, /*rounds=*/1);
  };
  ExpectSurvivesEveryDeath("recoverer takes over an unmarked dead sender",
                           options, /*min_writes=*/4);
}

// With 16-bit ring entries: a stale publish left a message whose header
// names an aliased lap, which wedges every Send of its slot
// (ipc/internal/alias_repair.h; the real sequence is built in
// ipc/index_alias_repair_test.cc, emulated here by writing the header the
// stale sender would have left). MakeSender repairs it with one CAS; a
// death at any write leaves the next MakeSender to finish.
TEST(QueueDeathTest, RecovererDiesWhileRepairingAnAliasedPublish) {
  if (Index::kQueueIndexMask == 0xffffffffu) {
    GTEST_SKIP() << "needs 16-bit queue-index bits (--config=index32)";
  }
  QueueConfig config = DeathConfig();
  config.num_senders = 2;
  config.queue_size = 4;
  DeathTestOptions options = QueueDeathOptions(config);
  options.prepare = [&](void* region) {
    // Far enough from 0 that "65536 earlier" needs no wrap.
    absl::StatusOr<LocklessQueue> queue = internal::AttachStartingAtForTest(
        region, RegionSize(config), config, /*first_queue_index=*/70000);
    if (!queue.ok()) std::abort();
    testing::SenderThread sender(*queue);
    sender.SendNumbered(6);
    const QueueIndex latest = queue->LatestQueueIndex();
    const internal::RegionView& view = queue->region();
    const Index entry = view.ring(latest.Wrapped())->Load();
    view.message(entry.message_index())
        ->header.queue_index.Store(latest.DecrementBy(65536));
  };
  options.run = [&](void* region) {
    Sender sender = MakeSenderOrDie(AttachOrDie(region, config));
    SendOrDie(sender, "run", 3);
  };
  options.check = [&](void* region) -> absl::Status {
    const LocklessQueue queue = AttachOrDie(region, config);
    // Two laps: sends resume across the repaired slot.
    return ClaimEverySlotSendAndCheckOwnership(queue, config,
                                               /*rounds=*/2 * config.queue_size);
  };
  ExpectSurvivesEveryDeath("recoverer repairs an aliased publish", options,
                           /*min_writes=*/2);
}

// ---------------------------------------------------------------- Pinning

QueueConfig PinDeathConfig() {
  QueueConfig config = DeathConfig();
  config.num_pinners = 2;
  return config;
}

// Pins `q` with a new Pinner of this thread; aborts unless kGood (prepare).
std::string PinOrDie(const LocklessQueue& queue, uint32_t q,
                     std::optional<Pinner>* pinner, PinnedMessage* view) {
  absl::StatusOr<Pinner> made = queue.MakePinner();
  if (!made.ok()) std::abort();
  pinner->emplace(*std::move(made));
  if ((*pinner)->Pin(queue.MakeQueueIndex(q), view) != PinResult::kGood) {
    std::abort();
  }
  return std::string(static_cast<const char*>(view->data), view->info.length);
}



// A sender dies anywhere in sends that take pinned messages out of the ring
// and park them (swap intent, parked entry, scratch, intent cleared): the
// pinned bytes never change, the next claimer of its slot never gets a
// pinned scratch, and every message is owned once.
TEST(QueueDeathTest, SenderDiesWhileParkingPinnedScratch) {
  const QueueConfig config = PinDeathConfig();
  std::optional<Pinner> pinner0, pinner1;
  PinnedMessage view0, view1;
  std::string bytes0, bytes1;
  DeathTestOptions options = QueueDeathOptions(config);
  options.prepare = [&](void* region) {
    const LocklessQueue queue = AttachOrDie(region, config);
    SendMessages(queue, "p", 6);  // A full ring: the child replaces 0, 1, 2.
    bytes0 = PinOrDie(queue, 0, &pinner0, &view0);
    bytes1 = PinOrDie(queue, 1, &pinner1, &view1);
  };
  options.cleanup = [&](void*) {
    pinner0.reset();
    pinner1.reset();
  };
  options.run = [&](void* region) {
    SendMessages(AttachOrDie(region, config), "c", 3);
  };
  options.check = [&](void* region) -> absl::Status {
    for (const auto& [view, bytes] :
         {std::make_pair(&view0, bytes0), std::make_pair(&view1, bytes1)}) {
      if (absl::Status status = CheckPinnedBytes(*view, bytes, "at death");
          !status.ok()) {
        return status;
      }
    }
    const LocklessQueue queue = AttachOrDie(region, config);
    {
      // Recovery, then the ring: the last queue_size of p0..p5, c0..c(k-1).
      absl::StatusOr<Sender> sender = queue.MakeSender();
      if (!sender.ok()) return sender.status();
      if (sender->data() == view0.data || sender->data() == view1.data) {
        return absl::DataLossError("claimer was handed a pinned scratch");
      }
      const uint32_t sent = queue.LatestQueueIndex().index() + 1;
      if (sent < 6 || sent > 9) {
        return absl::DataLossError(absl::StrCat(sent, " messages sent"));
      }
      absl::StatusOr<std::vector<std::string>> read =
          ReadAll(queue, sent - config.queue_size);
      if (!read.ok()) return read.status();
      std::vector<std::string> all = Tagged("p", 6);
      for (uint32_t i = 0; i + 6 < sent; ++i) all.push_back(Payload("c", i));
      const std::vector<std::string> expected(all.end() - config.queue_size,
                                              all.end());
      if (*read != expected) return DescribeMismatch(*read, expected);
    }
    return ClaimEverySlotSendAndCheckOwnership(
        queue, config, /*rounds=*/2 * config.queue_size,
        {{&view0, bytes0}, {&view1, bytes1}});
  };
  ExpectSurvivesEveryDeath("sender dies while parking a pinned scratch",
                           options, /*min_writes=*/20);
}

// A pinner dies anywhere in MakePinner, Pin, Unpin, Pin and its
// destruction (which unpins and releases the slot): the next MakePinner
// releases whatever it left pinned and every pinner slot is claimable again.
TEST(QueueDeathTest, PinnerDiesMidPinAndUnpin) {
  const QueueConfig config = PinDeathConfig();
  DeathTestOptions options = QueueDeathOptions(config);
  options.prepare = [&](void* region) {
    SendMessages(AttachOrDie(region, config), "p", 4);
  };
  options.run = [&](void* region) {
    const LocklessQueue queue = AttachOrDie(region, config);
    absl::StatusOr<Pinner> pinner = queue.MakePinner();
    if (!pinner.ok()) std::abort();
    PinnedMessage view;
    if (pinner->Pin(queue.LatestQueueIndex(), &view) != PinResult::kGood) {
      std::abort();
    }
    pinner->Unpin();
    if (pinner->Pin(queue.MakeQueueIndex(0), &view) != PinResult::kGood) {
      std::abort();
    }
  };
  options.check = [&](void* region) -> absl::Status {
    const LocklessQueue queue = AttachOrDie(region, config);
    std::vector<Pinner> pinners;
    while (pinners.size() < config.num_pinners) {
      absl::StatusOr<Pinner> pinner = queue.MakePinner();
      if (!pinner.ok()) {
        return absl::Status(
            pinner.status().code(),
            absl::StrCat("pinner slot leaked: ", pinner.status().message()));
      }
      pinners.push_back(*std::move(pinner));
    }
    for (uint32_t p = 0; p < config.num_pinners; ++p) {
      if (queue.region().pinner(p)->pinned.Load().valid()) {
        return absl::DataLossError(
            absl::StrCat("pinner slot ", p, " claimed with a pin left in it"));
      }
    }
    return ClaimEverySlotSendAndCheckOwnership(
        queue, config, /*rounds=*/2 * config.queue_size);
  };
  ExpectSurvivesEveryDeath("pinner dies mid pin/unpin", options,
                           /*min_writes=*/4);
}

// Recovery dies anywhere while it finishes a dead sender's swap (it died
// after parking its pinned scratch, before taking the parked message) and
// releases a dead pinner's pin, then claims: the next MakeSender finishes.
// The pinned message (pinned by a live pinner here) never changes and is
// never handed out.
TEST(QueueDeathTest, RecovererDiesResolvingASwapAndADeadPinner) {
  QueueConfig config = PinDeathConfig();
  config.num_senders = 2;
  config.queue_size = 4;
  std::optional<Pinner> pinner;
  PinnedMessage view;
  std::string bytes;
  DeathTestOptions options = QueueDeathOptions(config);
  options.prepare = [&](void* region) {
    const LocklessQueue queue = AttachOrDie(region, config);
    const internal::RegionView& regions = queue.region();
    testing::SenderThread dead(queue);
    dead.SendNumbered(4);  // A full ring.
    bytes = PinOrDie(queue, 0, &pinner, &view);
    // A pinner that dies holding a pin on index 1.
    std::thread([&] {
      std::optional<Pinner> doomed;
      PinnedMessage doomed_view;
      PinOrDie(queue, 1, &doomed, &doomed_view);
      testing::AbandonLikeADeadThread(*std::move(doomed));
    }).join();
    // `dead` publishes index 4 (steps a-g), taking index 0's pinned
    // message, then parks it and dies before taking the parked one: swap
    // intent recorded, parked[0] == scratch.
    const testing::Intent intent = testing::RecordIntent(
        regions, dead.slot(), testing::NextQueueIndex(queue));
    if (!testing::PublishIntent(regions, intent)) std::abort();
    testing::ResumeIntent(regions, intent, /*published=*/true);
    regions.message(intent.to_replace.message_index())
        ->header.queue_index.Invalidate();
    internal::SenderSlot* const slot = regions.sender(dead.slot());
    slot->swap_parked_entry.store(0);
    slot->swap_take.Store(regions.parked(dead.slot(), 0)->Load());
    regions.parked(dead.slot(), 0)->Store(slot->scratch_index.Load());
    dead.Die();
  };
  options.cleanup = [&](void*) { pinner.reset(); };
  options.run = [&](void* region) {
    Sender sender = MakeSenderOrDie(AttachOrDie(region, config));
    SendOrDie(sender, "run", 3);
  };
  options.check = [&](void* region) -> absl::Status {
    if (absl::Status status = CheckPinnedBytes(view, bytes, "at death");
        !status.ok()) {
      return status;
    }
    const LocklessQueue queue = AttachOrDie(region, config);
    {
      // The dead pinner's slot is claimable (our pinner holds the other).
      absl::StatusOr<Pinner> other = queue.MakePinner();
      if (!other.ok()) return other.status();
    }
    return ClaimEverySlotSendAndCheckOwnership(
        queue, config, /*rounds=*/2 * config.queue_size, {{&view, bytes}});
  };
  ExpectSurvivesEveryDeath("recoverer resolves a swap and a dead pinner",
                           options, /*min_writes=*/3);
}

}  // namespace
}  // namespace lockless
