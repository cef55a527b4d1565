#include "ipc/queue_printer.h"

#include <linux/futex.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "ipc/internal/queue_layout.h"
#include "ipc/lockless_queue.h"
#include "ipc/queue_config.h"

namespace lockless {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// An anonymous shared mapping (page-aligned, zero-filled), unmapped on exit.
class Mapping {
 public:
  explicit Mapping(size_t size_bytes) : size_bytes_(size_bytes) {
    memory_ = mmap(nullptr, size_bytes, PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (memory_ == MAP_FAILED) memory_ = nullptr;
  }
  ~Mapping() {
    if (memory_ != nullptr) munmap(memory_, size_bytes_);
  }
  Mapping(const Mapping&) = delete;
  Mapping& operator=(const Mapping&) = delete;

  void* get() const { return memory_; }
  size_t size() const { return size_bytes_; }
  internal::RegionHeader* header() const {
    return static_cast<internal::RegionHeader*>(memory_);
  }

 private:
  void* memory_ = nullptr;
  size_t size_bytes_;
};

QueueConfig SmallConfig() {
  QueueConfig config;
  config.num_watchers = 2;
  config.num_senders = 2;
  config.queue_size = 4;
  config.message_data_size_bytes = 40;
  return config;
}

class QueuePrinterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const absl::StatusOr<uint64_t> size = QueueMemorySize(SmallConfig());
    ASSERT_TRUE(size.ok());
    region_ = std::make_unique<Mapping>(*size);
    ASSERT_NE(region_->get(), nullptr);
    absl::StatusOr<LocklessQueue> queue =
        LocklessQueue::Attach(region_->get(), region_->size(), SmallConfig());
    ASSERT_TRUE(queue.ok()) << queue.status();
    queue_ = std::make_unique<LocklessQueue>(*queue);
  }

  // Sends `payloads` from a fresh sender that stays registered.
  void SendAll(const std::vector<std::string>& payloads) {
    absl::StatusOr<Sender> sender = queue_->MakeSender();
    ASSERT_TRUE(sender.ok()) << sender.status();
    for (const std::string& payload : payloads) {
      ASSERT_EQ(sender->Send(payload.data(), payload.size()), SendResult::kOk);
    }
    sender_ = std::make_unique<Sender>(*std::move(sender));
  }

  std::string Print(const PrintOptions& options) {
    std::string out;
    const absl::Status status =
        PrintRegion(region_->get(), region_->size(), options, &out);
    EXPECT_TRUE(status.ok()) << status;
    return out;
  }

  // A private copy of the region to corrupt.
  std::unique_ptr<Mapping> Copy() {
    auto copy = std::make_unique<Mapping>(region_->size());
    std::memcpy(copy->get(), region_->get(), region_->size());
    return copy;
  }

  std::unique_ptr<Mapping> region_;
  std::unique_ptr<LocklessQueue> queue_;
  std::unique_ptr<Sender> sender_;
};

TEST_F(QueuePrinterTest, PrintsConfigPayloadsAndOwners) {
  SendAll({"alpha", "bravo\n", "charlie"});
  absl::StatusOr<Watcher> watcher = queue_->MakeWatcher(0);
  ASSERT_TRUE(watcher.ok()) << watcher.status();

  const std::string out = Print(PrintOptions());
  EXPECT_THAT(out, HasSubstr("num_watchers: 2, num_senders: 2, queue_size: 4, "
                             "message_data_size_bytes: 40"));
  EXPECT_THAT(out, HasSubstr(absl::StrCat("layout version ",
                                         internal::kLayoutVersion)));
  EXPECT_THAT(out, HasSubstr("next_queue_index: 3, latest: 2"));
  EXPECT_THAT(out, HasSubstr("data: \"alpha\""));
  EXPECT_THAT(out, HasSubstr("data: \"bravo\\n\""));  // Escaped newline.
  EXPECT_THAT(out, HasSubstr("data: \"charlie\""));
  EXPECT_THAT(out, HasSubstr("UTC"));
  const std::string me = std::to_string(gettid());
  EXPECT_THAT(out, HasSubstr("sender 0: owner tid " + me + " (alive)"));
  EXPECT_THAT(out, HasSubstr("watcher 0: owner tid " + me + " (alive), pid " +
                             std::to_string(getpid()) + ", priority 0"));
  EXPECT_THAT(out, HasSubstr("setup lock: free"));
  EXPECT_THAT(out, HasSubstr("ownership: ok"));
  // The fourth slot still holds its initial entry.
  EXPECT_THAT(out, HasSubstr("empty (never published)"));
}

// Pinning: the pinner slots, each sender's parked entries, and an
// ownership check that counts parked entries as owners.
TEST(QueuePrinterPinningTest, PrintsPinnersAndParkedEntries) {
  QueueConfig config = SmallConfig();
  config.num_pinners = 2;
  Mapping region(*QueueMemorySize(config));
  absl::StatusOr<LocklessQueue> queue =
      LocklessQueue::Attach(region.get(), region.size(), config);
  ASSERT_TRUE(queue.ok()) << queue.status();
  absl::StatusOr<Sender> sender = queue->MakeSender();
  ASSERT_TRUE(sender.ok()) << sender.status();
  ASSERT_EQ(sender->Send("first", 5), SendResult::kOk);
  absl::StatusOr<Pinner> pinner = queue->MakePinner();
  ASSERT_TRUE(pinner.ok()) << pinner.status();
  PinnedMessage view;
  ASSERT_EQ(pinner->Pin(queue->MakeQueueIndex(0), &view), PinResult::kGood);
  // Lap the ring: the pinned message is parked.
  for (int i = 0; i < 5; ++i) {
    ASSERT_EQ(sender->Send("more", 4), SendResult::kOk);
  }
  std::string out;
  ASSERT_TRUE(PrintRegion(region.get(), region.size(), PrintOptions(), &out)
                  .ok());
  EXPECT_THAT(out, HasSubstr("num_pinners: 2"));
  EXPECT_THAT(out, HasSubstr("pinners: 2 slots"));
  EXPECT_THAT(out, HasSubstr("pinner 0: owner tid " + std::to_string(gettid()) +
                             " (alive)"));
  // Pinner 0 names the pinned message (the entry's queue-index part is
  // printed whole or as low bits, by entry width).
  const uint32_t pinned =
      queue->region().pinner(0)->pinned.Load().message_index();
  EXPECT_THAT(out, HasSubstr("    pinned: queue index"));
  EXPECT_THAT(out, HasSubstr(absl::StrCat(", message ", pinned,
                                         "\n  pinner 1: free")));
  EXPECT_THAT(out, HasSubstr("parked[1]: "));
  EXPECT_THAT(out, HasSubstr("ownership: ok"));
  absl::StatusOr<RegionSummary> summary =
      SummarizeRegion(region.get(), region.size());
  ASSERT_TRUE(summary.ok()) << summary.status();
  EXPECT_EQ(summary->pinners_alive, 1);
  EXPECT_EQ(summary->pins_held, 1);
}

TEST_F(QueuePrinterTest, UsesTheLivenessCallback) {
  SendAll({"x"});
  PrintOptions options;
  options.is_alive = [](pid_t) { return false; };
  EXPECT_THAT(Print(options), HasSubstr("owner tid " + std::to_string(gettid()) + " (dead)"));
}

TEST_F(QueuePrinterTest, SummaryOmitsPayloads) {
  SendAll({"alpha", "bravo"});
  PrintOptions options;
  options.summary_only = true;
  const std::string out = Print(options);
  EXPECT_THAT(out, HasSubstr("queue_size: 4"));
  EXPECT_THAT(out, HasSubstr("senders: 1 alive"));
  EXPECT_THAT(out, Not(HasSubstr("alpha")));
  EXPECT_THAT(out, Not(HasSubstr("slot 0")));
}

TEST_F(QueuePrinterTest, HexMode) {
  SendAll({"AB\x01"});
  PrintOptions options;
  options.hex_data = true;
  const std::string out = Print(options);
  EXPECT_THAT(out, HasSubstr("data (hex):"));
  EXPECT_THAT(out, HasSubstr("0000  41 42 01 "));
  EXPECT_THAT(out, HasSubstr("|AB.|"));
}

TEST_F(QueuePrinterTest, TruncatesLongPayloads) {
  SendAll({std::string(30, 'z')});
  PrintOptions options;
  options.max_data_bytes = 10;
  const std::string out = Print(options);
  EXPECT_THAT(out, HasSubstr("data: \"zzzzzzzzzz\" ... 20 more bytes"));
}

TEST_F(QueuePrinterTest, OneQueueIndex) {
  SendAll({"m0", "m1", "m2", "m3", "m4", "m5"});  // 0 and 1 overwritten.
  PrintOptions options;
  options.queue_index = 4;
  const std::string out = Print(options);
  EXPECT_THAT(out, HasSubstr("queue index 4: ring slot 0 holds message"));
  EXPECT_THAT(out, HasSubstr("data: \"m4\""));
  EXPECT_THAT(out, Not(HasSubstr("m5")));
  EXPECT_THAT(out, Not(HasSubstr("config")));

  std::string ignored;
  options.queue_index = 1;
  absl::Status status =
      PrintRegion(region_->get(), region_->size(), options, &ignored);
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(status.message()),
              HasSubstr("not in the ring any more"));

  options.queue_index = 6;
  status = PrintRegion(region_->get(), region_->size(), options, &ignored);
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(status.message()), HasSubstr("not been sent yet"));

  options.queue_index = 0xffffffffu;
  status = PrintRegion(region_->get(), region_->size(), options, &ignored);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(ignored.empty());
}

TEST_F(QueuePrinterTest, ValidAcceptsTheRegion) {
  const absl::StatusOr<internal::Layout> layout =
      ValidateRegionImage(region_->get(), region_->size());
  ASSERT_TRUE(layout.ok()) << layout.status();
  EXPECT_EQ(layout->config, SmallConfig());
}

std::string ValidationError(const Mapping& mapping, size_t size_bytes) {
  const absl::StatusOr<internal::Layout> layout =
      ValidateRegionImage(mapping.get(), size_bytes);
  EXPECT_FALSE(layout.ok());
  if (layout.ok()) return "";
  EXPECT_THAT(std::string(layout.status().message()), Not(HasSubstr("\n")));
  return std::string(layout.status().message());
}

TEST_F(QueuePrinterTest, RejectsTruncated) {
  EXPECT_THAT(ValidationError(*region_, 0), HasSubstr("smaller than the"));
  EXPECT_THAT(ValidationError(*region_, sizeof(internal::RegionHeader) - 1),
              HasSubstr("smaller than the"));
  EXPECT_THAT(ValidationError(*region_, region_->size() - 1),
              HasSubstr("truncated"));
}

TEST_F(QueuePrinterTest, RejectsBadMagic) {
  auto copy = Copy();
  copy->header()->magic ^= 1;
  EXPECT_THAT(ValidationError(*copy, copy->size()), HasSubstr("bad magic"));
}

TEST_F(QueuePrinterTest, RejectsBadVersion) {
  auto copy = Copy();
  copy->header()->layout_version = internal::kLayoutVersion + 1;
  EXPECT_THAT(ValidationError(*copy, copy->size()),
              HasSubstr(absl::StrCat("layout version ",
                                     internal::kLayoutVersion + 1)));
}

TEST_F(QueuePrinterTest, RejectsBadConfig) {
  auto copy = Copy();
  copy->header()->config.queue_size = 0;
  EXPECT_THAT(ValidationError(*copy, copy->size()),
              HasSubstr("invalid configuration"));
  EXPECT_THAT(ValidationError(*copy, copy->size()),
              HasSubstr("queue_size must be at least 1"));
}

TEST_F(QueuePrinterTest, RejectsTotalSizeMismatch) {
  auto copy = Copy();
  copy->header()->total_size_bytes += 64;
  EXPECT_THAT(ValidationError(*copy, copy->size()),
              HasSubstr("header says the region is"));
}

TEST_F(QueuePrinterTest, RejectsUninitialised) {
  auto copy = Copy();
  copy->header()->initialized.store(0);
  EXPECT_THAT(ValidationError(*copy, copy->size()),
              HasSubstr("not initialised (creator still running or died)"));
  Mapping zeros(region_->size());
  EXPECT_THAT(ValidationError(zeros, zeros.size()),
              HasSubstr("not initialised (creator still running or died)"));
}

TEST_F(QueuePrinterTest, FlagsCorruptRingAndLengthWithoutFollowingThem) {
  SendAll({"hello"});
  auto copy = Copy();
  internal::RegionView view(copy->get(), queue_->region().layout());
  // Slot 1 names a message that does not exist; message 0 claims a huge
  // length.
  view.ring(1)->RelaxedStore(Index(uint32_t{1}, uint32_t{1000}));
  const uint32_t in_slot_0 = view.ring(0)->RelaxedLoad().message_index();
  view.message(in_slot_0)->header.length.store(uint64_t{1} << 40);
  std::string out;
  ASSERT_TRUE(PrintRegion(copy->get(), copy->size(), PrintOptions(), &out).ok());
  EXPECT_THAT(out, HasSubstr("message 1000 (out of range"));
  EXPECT_THAT(out, HasSubstr("exceeds message_data_size_bytes 40: corrupt"));
  EXPECT_THAT(out, HasSubstr("ownership: "));
  EXPECT_THAT(out, HasSubstr("problem"));
}

// Guards: nothing said on a healthy queue; a broken guard in the ring is
// shown under its message with how far the write reached, one in a sender's
// scratch under that sender.
TEST_F(QueuePrinterTest, ShowsBrokenGuards) {
  SendAll({"hello", "world"});
  EXPECT_THAT(Print(PrintOptions()), Not(HasSubstr("GUARD")));
  const internal::RegionView& view = queue_->region();
  const internal::Layout& layout = view.layout();
  const uint32_t in_slot_1 = view.ring(1)->Load().message_index();
  unsigned char* const guard =
      reinterpret_cast<unsigned char*>(view.message(in_slot_1)) +
      layout.guard_offset_bytes;
  guard[3] = static_cast<unsigned char>(~guard[3]);
  unsigned char* const scratch_past =
      static_cast<unsigned char*>(sender_->data()) + sender_->max_size();
  scratch_past[0] = static_cast<unsigned char>(~scratch_past[0]);
  const std::string out = Print(PrintOptions());
  EXPECT_THAT(out, HasSubstr("data: \"world\"\n      GUARD OVERWRITTEN: a "
                             "write reached 4 bytes past the payload "
                             "(max_size() 40)\n"));
  EXPECT_THAT(out, HasSubstr("scratch GUARD OVERWRITTEN: a write reached 1 "
                             "bytes past the payload"));
  // The sender's next Send reports and repairs its own; the ring one stays.
  EXPECT_EQ(sender_->Send(1), SendResult::kGuardOverwritten);
  const std::string after = Print(PrintOptions());
  EXPECT_THAT(after, Not(HasSubstr("scratch GUARD")));
  EXPECT_THAT(after, HasSubstr("4 bytes past the payload"));
}

// The printer reads memory that senders rewrite under it: it must never fail
// or misbehave on a live queue, whatever interleaving it sees.
TEST_F(QueuePrinterTest, PrintsWhileSendersRun) {
  std::atomic<bool> stop{false};
  std::thread sender_thread([&] {
    absl::StatusOr<Sender> sender = queue_->MakeSender();
    ASSERT_TRUE(sender.ok()) << sender.status();
    for (uint64_t i = 0; !stop.load(std::memory_order_relaxed); ++i) {
      const std::string payload = "live " + std::to_string(i);
      ASSERT_EQ(sender->Send(payload.data(), payload.size()), SendResult::kOk);
    }
  });
  PrintOptions options;
  for (int i = 0; i < 300; ++i) {
    options.hex_data = i % 2 == 0;
    options.queue_index.reset();
    if (i % 3 == 0) options.queue_index = static_cast<uint32_t>(i);
    std::string out;
    const absl::Status status =
        PrintRegion(region_->get(), region_->size(), options, &out);
    if (options.queue_index.has_value()) {
      EXPECT_TRUE(status.ok() || status.code() == absl::StatusCode::kNotFound)
          << status;
    } else {
      EXPECT_TRUE(status.ok()) << status;
      EXPECT_THAT(out, HasSubstr("ring: 4 slots"));
    }
  }
  stop = true;
  sender_thread.join();
}

TEST_F(QueuePrinterTest, ShowsDeadOwnersAndFlags) {
  auto copy = Copy();
  internal::RegionView view(copy->get(), queue_->region().layout());
  view.sender(1)->ownership.futex.store(FUTEX_OWNER_DIED);
  view.header()->setup_lock.futex.store(4321 | FUTEX_WAITERS);
  PrintOptions options;
  options.is_alive = [](pid_t tid) { return tid != 4321; };
  std::string out;
  ASSERT_TRUE(PrintRegion(copy->get(), copy->size(), options, &out).ok());
  EXPECT_THAT(out, HasSubstr("setup lock: owner tid 4321 (dead), WAITERS"));
  EXPECT_THAT(out, HasSubstr("sender 1: free, OWNER_DIED"));
  options.summary_only = true;
  out.clear();
  ASSERT_TRUE(PrintRegion(copy->get(), copy->size(), options, &out).ok());
  EXPECT_THAT(out, HasSubstr("1 marked OWNER_DIED"));
}

}  // namespace
}  // namespace lockless
