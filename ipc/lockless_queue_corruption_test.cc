// Seeded corruption fuzzing of a live queue: another process scribbles on the
// channel (ring entries, message headers, sender slots, next_queue_index),
// then this process attaches, makes a sender, sends and reads. Every call
// must return (an error value is fine): no crash, no sanitizer report, no
// endless loop. Each case runs in a forked child under alarm(), so a crash or
// a hang fails the test with the seed that reproduces it.
//
// Not corrupted: the robust futex words (setup lock, slot owners). A lock
// word naming a live thread is a lock held by that thread, and waiting for
// it is the defined behaviour (see sync/robust_mutex.h).
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "gtest/gtest.h"
#include "ipc/internal/queue_layout.h"
#include "ipc/lockless_queue.h"
#include "testing/queue_memory.h"

namespace lockless {
namespace {

constexpr int kCases = 1500;
constexpr unsigned kChildTimeoutSeconds = 10;

QueueConfig FuzzConfig() {
  QueueConfig config;
  config.num_watchers = 1;
  config.num_senders = 3;
  config.queue_size = 8;
  config.message_data_size_bytes = 40;
  return config;
}

// One scribble: where and what.
struct Scribble {
  std::string what;
  void* address = nullptr;
  uint64_t value = 0;
  size_t bytes = 0;
};

// A random Index that a confused or hostile writer might leave: often
// plausible-looking (a queue index near the real ones, a message number just
// in or just out of range), sometimes random bits.
uint64_t NastyIndexWord(std::mt19937_64& random, const LocklessQueue& queue) {
  const uint32_t num_messages =
      static_cast<uint32_t>(queue.region().layout().num_messages);
  const uint32_t max_index = queue.MakeQueueIndex(0).max_index();
  const uint32_t near = static_cast<uint32_t>(random() % 40);
  const uint32_t queue_index =
      random() % 2 ? near : (max_index - 1 - near % 16);
  const uint32_t message = static_cast<uint32_t>(random() % (num_messages + 3));
  switch (random() % 4) {
    case 0:
      return random();
    case 1:
      return Index::Invalid().raw();
    default:
      return Index(queue_index, message % Index::MaxMessages()).raw();
  }
}

std::vector<Scribble> PickScribbles(std::mt19937_64& random,
                                    const LocklessQueue& queue) {
  const internal::RegionView& region = queue.region();
  const QueueConfig& config = region.config();
  std::vector<Scribble> scribbles;
  const int count = 1 + static_cast<int>(random() % 4);
  for (int i = 0; i < count; ++i) {
    Scribble s;
    const uint64_t nasty = NastyIndexWord(random, queue);
    switch (random() % 6) {
      case 0: {
        const uint32_t slot = random() % config.queue_size;
        s = {absl::StrFormat("ring[%u]", slot), region.ring(slot), nasty,
             sizeof(Index)};
        break;
      }
      case 1: {
        const uint32_t m = random() % region.layout().num_messages;
        s = {absl::StrFormat("message %u queue_index", m),
             &region.message(m)->header.queue_index,
             static_cast<uint32_t>(random() % 2 ? random() % 40 : random()),
             sizeof(uint32_t)};
        break;
      }
      case 2: {
        const uint32_t m = random() % region.layout().num_messages;
        s = {absl::StrFormat("message %u length", m),
             &region.message(m)->header.length,
             random() % 2 ? random() % 100 : random(), sizeof(uint64_t)};
        break;
      }
      case 3: {
        const uint32_t sender = random() % config.num_senders;
        s = {absl::StrFormat("sender %u scratch_index", sender),
             &region.sender(sender)->scratch_index, nasty, sizeof(Index)};
        break;
      }
      case 4: {
        const uint32_t sender = random() % config.num_senders;
        s = {absl::StrFormat("sender %u to_replace", sender),
             &region.sender(sender)->to_replace, nasty, sizeof(Index)};
        break;
      }
      default:
        s = {"next_queue_index", &region.header()->next_queue_index,
             static_cast<uint32_t>(random() % 2 ? random() % 40 : random()),
             sizeof(uint32_t)};
        break;
    }
    scribbles.push_back(s);
  }
  return scribbles;
}

// The child's work: everything a user process does with a channel.
void UseQueue(const LocklessQueue& queue, uint64_t seed) {
  std::mt19937_64 random(seed);
  std::vector<char> buffer(queue.config().message_data_size_bytes);
  absl::StatusOr<Sender> sender = queue.MakeSender();
  if (sender.ok()) {
    for (int i = 0; i < 30; ++i) {
      const size_t length = random() % (buffer.size() + 1);
      std::memset(buffer.data(), 'a' + i % 26, length);
      if (sender->Send(buffer.data(), length) == SendResult::kCorrupted) break;
    }
  }
  const QueueIndex latest = queue.LatestQueueIndex();
  QueueIndex index = latest.valid()
                         ? latest.DecrementBy(queue.config().queue_size + 2)
                         : queue.MakeQueueIndex(0);
  for (uint32_t i = 0; i < 2 * queue.config().queue_size; ++i) {
    MessageInfo info;
    const ReadResult result =
        queue.Read(index, &info, buffer.data(), buffer.size());
    if (result == ReadResult::kGood &&
        info.length > queue.config().message_data_size_bytes) {
      std::fprintf(stderr, "GOOD read with length %zu\n", info.length);
      _exit(3);
    }
    index = index.Increment();
  }
}

TEST(LocklessQueueCorruptionTest, ScribbledChannelNeverCrashesOrHangs) {
  const QueueConfig config = FuzzConfig();
  std::mt19937_64 random(20261122);
  int child_failures = 0;
  for (int c = 0; c < kCases && child_failures < 3; ++c) {
    const uint64_t seed = random();
    std::mt19937_64 case_random(seed);
    ::lockless::testing::QueueMemory memory(config);
    const LocklessQueue queue =
        *LocklessQueue::Attach(memory.data(), memory.size_bytes(), config);
    {
      // A healthy history first: some laps of sends.
      Sender sender = *queue.MakeSender();
      const int sends = static_cast<int>(case_random() % 40);
      for (int i = 0; i < sends; ++i) {
        ASSERT_EQ(sender.Send("history", 7), SendResult::kOk);
      }
    }
    const std::vector<Scribble> scribbles = PickScribbles(case_random, queue);
    for (const Scribble& s : scribbles)
      std::memcpy(s.address, &s.value, s.bytes);

    std::fflush(nullptr);
    const pid_t child = fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      alarm(kChildTimeoutSeconds);
      UseQueue(queue, case_random());
      _exit(0);
    }
    int status = 0;
    ASSERT_EQ(waitpid(child, &status, 0), child);
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) continue;
    ++child_failures;
    std::string what;
    for (const Scribble& s : scribbles) {
      what += absl::StrFormat(" %s=0x%x;", s.what, s.value);
    }
    ADD_FAILURE() << "case " << c << " (seed " << seed << "): child "
                  << (WIFSIGNALED(status)
                          ? absl::StrFormat(
                                "killed by signal %d%s", WTERMSIG(status),
                                WTERMSIG(status) == SIGALRM ? " (hung)" : "")
                          : absl::StrFormat("exited %d", WEXITSTATUS(status)))
                  << " after scribbling" << what;
  }
}

}  // namespace
}  // namespace lockless
