// TOO_OLD versus OVERWROTE, and OldestQueueIndex.
//
// A message replaced while a reader copies it is built deterministically,
// without threads: the reader copies into a page it may not write yet, and
// the fault handler, which runs in the middle of that copy, sends the message
// that replaces it and then opens the page, so the copy resumes and the
// reader's final check finds its message gone.
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>

#include "absl/status/statusor.h"
#include "gtest/gtest.h"
#include "ipc/lockless_queue.h"
#include "ipc/queue_config.h"
#include "testing/queue_memory.h"

namespace lockless {
namespace {

using ::lockless::testing::QueueMemory;

QueueConfig TinyConfig() {
  QueueConfig config;
  config.num_watchers = 0;
  config.num_senders = 1;
  config.queue_size = 2;
  config.message_data_size_bytes = 64;
  return config;
}

// What the fault handler needs (set up before the copy faults).
Sender* g_sender = nullptr;
void* g_page = nullptr;
size_t g_page_bytes = 0;
int g_faults = 0;
SendResult g_handler_send = SendResult::kCorrupted;

void OnFault(int, siginfo_t* info, void*) {
  const char* address = static_cast<const char*>(info->si_addr);
  const char* page = static_cast<const char*>(g_page);
  if (address < page || address >= page + g_page_bytes || g_faults > 0) {
    // Not the fault this test arranged: die as the fault would have.
    signal(SIGSEGV, SIG_DFL);
    return;
  }
  ++g_faults;
  // Lock-free, allocates nothing, no syscall (no waiters): fine here.
  const uint64_t payload = 0xfeed;
  g_handler_send = g_sender->Send(&payload, sizeof(payload));
  mprotect(g_page, g_page_bytes, PROT_READ | PROT_WRITE);
}

// A destination page that faults on the first write, and the handler that
// lets the sender lap the message then.
class FaultingDestination {
 public:
  explicit FaultingDestination(Sender* sender) {
    g_page_bytes = static_cast<size_t>(sysconf(_SC_PAGESIZE));
    g_page = mmap(nullptr, g_page_bytes, PROT_NONE,
                  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    g_sender = sender;
    g_faults = 0;
    g_handler_send = SendResult::kCorrupted;
    struct sigaction action;
    std::memset(&action, 0, sizeof(action));
    action.sa_sigaction = OnFault;
    action.sa_flags = SA_SIGINFO;
    sigemptyset(&action.sa_mask);
    sigaction(SIGSEGV, &action, &previous_);
  }
  ~FaultingDestination() {
    sigaction(SIGSEGV, &previous_, nullptr);
    munmap(g_page, g_page_bytes);
    g_page = nullptr;
    g_sender = nullptr;
  }
  void* data() const { return g_page; }

 private:
  struct sigaction previous_;
};

struct TinyQueue {
  QueueMemory memory{TinyConfig()};
  LocklessQueue queue = *LocklessQueue::Attach(
      memory.data(), memory.size_bytes(), TinyConfig());
};

void SendValue(Sender& sender, uint64_t value) {
  ASSERT_EQ(sender.Send(&value, sizeof(value)), SendResult::kOk);
}

TEST(OverwroteTest, ReplacedDuringTheCopyIsOverwrote) {
  TinyQueue tiny;
  absl::StatusOr<Sender> sender = tiny.queue.MakeSender();
  ASSERT_TRUE(sender.ok()) << sender.status();
  SendValue(*sender, 0);
  SendValue(*sender, 1);  // The ring (2) is full: the next send replaces 0.
  FaultingDestination destination(&*sender);
  ASSERT_NE(destination.data(), MAP_FAILED);
  MessageInfo info;
  const ReadResult result =
      tiny.queue.Read(tiny.queue.MakeQueueIndex(0), &info, destination.data(),
                      sizeof(uint64_t));
  ASSERT_EQ(g_faults, 1) << "the copy never wrote the destination";
  ASSERT_EQ(g_handler_send, SendResult::kOk);
  EXPECT_EQ(ReadResultName(result), ReadResultName(ReadResult::kOverwrote));
  // Read again, it is gone before the read begins: TOO_OLD.
  uint64_t value = 0;
  EXPECT_EQ(ReadResultName(tiny.queue.Read(tiny.queue.MakeQueueIndex(0),
                                           &info, &value, sizeof(value))),
            ReadResultName(ReadResult::kTooOld));
  EXPECT_EQ(tiny.queue.Read(tiny.queue.MakeQueueIndex(2), &info, &value,
                            sizeof(value)),
            ReadResult::kGood);
  EXPECT_EQ(value, 0xfeedu);
}

TEST(OverwroteTest, ReadManyStopsWithOverwroteLikeRead) {
  TinyQueue tiny;
  absl::StatusOr<Sender> sender = tiny.queue.MakeSender();
  ASSERT_TRUE(sender.ok()) << sender.status();
  SendValue(*sender, 0);
  SendValue(*sender, 1);
  FaultingDestination destination(&*sender);
  ASSERT_NE(destination.data(), MAP_FAILED);
  MessageInfo infos[LocklessQueue::kMaxReadBatch];
  ReadResult stopped_at = ReadResult::kGood;
  const size_t good = tiny.queue.ReadMany(
      tiny.queue.MakeQueueIndex(0), 2, infos, destination.data(),
      sizeof(uint64_t), sizeof(uint64_t), &stopped_at);
  ASSERT_EQ(g_faults, 1);
  EXPECT_EQ(good, 0u);
  EXPECT_EQ(ReadResultName(stopped_at), ReadResultName(ReadResult::kOverwrote));
}

TEST(OverwroteTest, FallenBehindIsTooOldNotOverwrote) {
  TinyQueue tiny;
  absl::StatusOr<Sender> sender = tiny.queue.MakeSender();
  ASSERT_TRUE(sender.ok()) << sender.status();
  for (uint64_t i = 0; i < 5; ++i) SendValue(*sender, i);
  uint64_t value = 0;
  MessageInfo info;
  for (uint32_t q = 0; q < 3; ++q) {
    EXPECT_EQ(ReadResultName(tiny.queue.Read(tiny.queue.MakeQueueIndex(q),
                                             &info, &value, sizeof(value))),
              ReadResultName(ReadResult::kTooOld))
        << q;
  }
}

TEST(OldestQueueIndexTest, FollowsTheRingFromEmptyToFullAndBeyond) {
  QueueConfig config = TinyConfig();
  config.queue_size = 4;
  QueueMemory memory(config);
  LocklessQueue queue =
      *LocklessQueue::Attach(memory.data(), memory.size_bytes(), config);
  EXPECT_FALSE(queue.OldestQueueIndex().valid());
  absl::StatusOr<Sender> sender = queue.MakeSender();
  ASSERT_TRUE(sender.ok()) << sender.status();
  for (uint64_t sent = 1; sent <= 11; ++sent) {
    SendValue(*sender, sent - 1);
    const uint32_t expected = sent <= 4 ? 0 : static_cast<uint32_t>(sent - 4);
    const QueueIndex oldest = queue.OldestQueueIndex();
    ASSERT_EQ(oldest, queue.MakeQueueIndex(expected)) << "after " << sent;
    uint64_t value = ~uint64_t{0};
    MessageInfo info;
    EXPECT_EQ(queue.Read(oldest, &info, &value, sizeof(value)),
              ReadResult::kGood);
    EXPECT_EQ(value, expected);
    if (expected > 0) {
      EXPECT_EQ(queue.Read(oldest.DecrementBy(1), &info, &value,
                           sizeof(value)),
                ReadResult::kTooOld);
    }
  }
}

TEST(OldestQueueIndexTest, AcrossTheIndexWrap) {
  QueueConfig config = TinyConfig();
  config.queue_size = 4;
  QueueMemory memory(config);
  const uint32_t wrap =
      QueueIndex::MaxIndex(QueueIndex::kMaxValue, config.queue_size);
  const uint32_t first = wrap - 2;
  absl::StatusOr<LocklessQueue> queue = internal::AttachStartingAtForTest(
      memory.data(), memory.size_bytes(), config, first);
  ASSERT_TRUE(queue.ok()) << queue.status();
  absl::StatusOr<Sender> sender = queue->MakeSender();
  ASSERT_TRUE(sender.ok()) << sender.status();
  for (uint64_t sent = 1; sent <= 9; ++sent) {
    SendValue(*sender, sent - 1);
    const uint32_t offset = sent <= 4 ? 0 : static_cast<uint32_t>(sent - 4);
    const QueueIndex expected =
        queue->MakeQueueIndex(first).IncrementBy(offset);
    const QueueIndex oldest = queue->OldestQueueIndex();
    ASSERT_EQ(oldest, expected) << "after " << sent;
    uint64_t value = ~uint64_t{0};
    MessageInfo info;
    EXPECT_EQ(queue->Read(oldest, &info, &value, sizeof(value)),
              ReadResult::kGood);
    EXPECT_EQ(value, offset);
  }
}

}  // namespace
}  // namespace lockless
