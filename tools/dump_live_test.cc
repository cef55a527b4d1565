// dump on live channels: memory bounded by what it prints (RSS of the real
// binary on a 264 MB channel), torn messages reported "changed while
// reading", a healthy busy channel reported healthy, listing, and garbage
// collection that never removes a channel in use.
#include <fcntl.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "ipc/shm_channel.h"
#include "sync/futex.h"
#include "testing/shared_object.h"
#include "tools/dump_lib.h"

namespace lockless {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

std::string UniqueName(const std::string& what) {
  std::random_device random;
  return "lockless_dumplive_" + what + "_" + std::to_string(getpid()) + "_" +
         std::to_string(random());
}

std::string DumpPath() {
  const char* srcdir = std::getenv("TEST_SRCDIR");
  if (srcdir == nullptr) return "tools/dump";
  return std::string(srcdir) + "/lockless/tools/dump";
}

// Runs the dump binary with `args`, output to /dev/null; returns its peak
// RSS in KiB (ru_maxrss of that child alone), -1 if it did not exit 0.
long DumpPeakRssKiB(const std::vector<std::string>& args) {
  const pid_t child = fork();
  if (child == 0) {
    const int null = open("/dev/null", O_WRONLY);
    dup2(null, STDOUT_FILENO);
    std::vector<char*> argv;
    std::string path = DumpPath();
    argv.push_back(&path[0]);
    std::vector<std::string> copy = args;
    for (std::string& arg : copy) argv.push_back(&arg[0]);
    argv.push_back(nullptr);
    execv(path.c_str(), argv.data());
    _exit(127);
  }
  int status = 0;
  struct rusage usage;
  if (wait4(child, &status, 0, &usage) != child || !WIFEXITED(status) ||
      WEXITSTATUS(status) != 0) {
    return -1;
  }
  return usage.ru_maxrss;
}

TEST(DumpLiveTest, MemoryIsBoundedByWhatItPrints) {
  QueueConfig config;  // 65536 slots of 4000 bytes: ~264 MB.
  config.num_senders = 2;
  config.num_watchers = 1;
  config.queue_size = 65536;
  config.message_data_size_bytes = 4000;
  const std::string name = UniqueName("big");
  absl::StatusOr<Channel> channel = Channel::OpenOrCreate(name, config);
  if (!channel.ok() && absl::IsResourceExhausted(channel.status())) {
    GTEST_SKIP() << channel.status();
  }
  ASSERT_TRUE(channel.ok()) << channel.status();
  {
    Sender sender = *channel->queue().MakeSender();
    const std::string payload(4000, 'p');
    for (uint32_t i = 0; i < config.queue_size; ++i) {
      ASSERT_EQ(sender.Send(payload.data(), payload.size()), SendResult::kOk);
    }
  }
  const long region_kib = static_cast<long>(*QueueMemorySize(config) / 1024);
  const long summary_kib = DumpPeakRssKiB({"--channel=" + name, "--summary"});
  const long full_kib = DumpPeakRssKiB({"--channel=" + name});
  RecordProperty("region_kib", region_kib);
  RecordProperty("summary_rss_kib", summary_kib);
  RecordProperty("full_rss_kib", full_kib);
  printf("region %ld KiB; dump --summary peak RSS %ld KiB; full dump %ld KiB\n",
         region_kib, summary_kib, full_kib);
  ASSERT_GT(summary_kib, 0);
  ASSERT_GT(full_kib, 0);
  // The slots are 512 KiB; the binary itself a few MiB. The old dump copied
  // the region (> 264 MB) and touched all of the mapping (another 264 MB).
  EXPECT_LT(summary_kib, 32 * 1024);
  EXPECT_LT(full_kib, 48 * 1024);
  EXPECT_TRUE(RemoveChannel(name).ok());
}

QueueConfig SmallConfig() {
  QueueConfig config;
  config.num_senders = 2;
  config.num_watchers = 1;
  config.queue_size = 8;
  config.message_data_size_bytes = 2048;
  return config;
}

// The hook overwrites the whole ring between a message's copy and its
// re-check: every message printed must say so, and show no contents.
TEST(DumpLiveTest, MessageOverwrittenWhileCopiedIsReported) {
  const std::string name = UniqueName("torn");
  absl::StatusOr<Channel> channel = Channel::OpenOrCreate(name, SmallConfig());
  ASSERT_TRUE(channel.ok()) << channel.status();
  Sender sender = *channel->queue().MakeSender();
  for (int i = 0; i < 8; ++i) ASSERT_EQ(sender.Send("old", 3), SendResult::kOk);
  DumpOptions options;
  options.channel = name;
  options.after_message_copy_for_test = [&] {
    for (int i = 0; i < 8; ++i) {
      ASSERT_EQ(sender.Send("new", 3), SendResult::kOk);
    }
  };
  std::string out, err;
  ASSERT_EQ(RunDump(options, &out, &err), kDumpOk) << err;
  EXPECT_THAT(out, HasSubstr("changed while reading"));
  EXPECT_THAT(out, Not(HasSubstr("data: \"old\"")));
  EXPECT_TRUE(RemoveChannel(name).ok());
}

// A sender rewrites messages (each filled with one repeated letter) as fast
// as it can while dumps run: every message shown is whole (one letter), and
// the ownership check says the busy, healthy channel is healthy.
TEST(DumpLiveTest, BusyHealthyChannelIsShownConsistentAndHealthy) {
  const std::string name = UniqueName("busy");
  absl::StatusOr<Channel> channel = Channel::OpenOrCreate(name, SmallConfig());
  ASSERT_TRUE(channel.ok()) << channel.status();
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> sent{0};
  std::thread writer([&] {
    Sender sender = *channel->queue().MakeSender();
    std::string payload(2048, 'a');
    for (uint64_t i = 0; !stop.load(std::memory_order_relaxed); ++i) {
      std::fill(payload.begin(), payload.end(), static_cast<char>('a' + i % 26));
      if (sender.Send(payload.data(), payload.size()) != SendResult::kOk) return;
      sent.fetch_add(1, std::memory_order_relaxed);
    }
  });
  int changed = 0;
  for (int round = 0; round < 200; ++round) {
    DumpOptions options;
    options.channel = name;
    options.max_data_bytes = 2048;
    options.summary = round % 2 == 1;
    std::string out, err;
    ASSERT_EQ(RunDump(options, &out, &err), kDumpOk) << err;
    EXPECT_THAT(out, HasSubstr("ownership: ok")) << out;
    size_t at = 0;
    while ((at = out.find("data: \"", at)) != std::string::npos) {
      at += 7;
      const size_t end = out.find('"', at);
      ASSERT_NE(end, std::string::npos);
      const std::string data = out.substr(at, end - at);
      ASSERT_EQ(data.find_first_not_of(data[0]), std::string::npos)
          << "torn message printed as consistent: " << data;
    }
    for (at = 0; (at = out.find("changed while reading", at)) !=
                 std::string::npos;
         ++at) {
      ++changed;
    }
  }
  stop = true;
  writer.join();
  printf("%lu sends during the dumps, %d messages reported changed\n",
         static_cast<unsigned long>(sent.load()), changed);
  EXPECT_TRUE(RemoveChannel(name).ok());
}

// A dead sender with a send in flight is "recovery pending", not corruption.
TEST(DumpLiveTest, DeadSenderMidSendIsRecoveryPending) {
  const std::string name = UniqueName("pending");
  absl::StatusOr<Channel> channel = Channel::OpenOrCreate(name, SmallConfig());
  ASSERT_TRUE(channel.ok()) << channel.status();
  const internal::RegionView& region = channel->queue().region();
  // The state a sender leaves when it dies right after recording its
  // intent: to_replace names ring slot 0's message, and its thread is gone.
  internal::SenderSlot* const slot = region.sender(0);
  slot->to_replace.RelaxedStore(region.ring(0)->Load());
  slot->ownership.futex.store(FUTEX_OWNER_DIED | 0x3fff0000);
  DumpOptions options;
  options.channel = name;
  options.summary = true;
  options.is_alive = [](pid_t) { return false; };
  std::string out, err;
  ASSERT_EQ(RunDump(options, &out, &err), kDumpOk) << err;
  EXPECT_THAT(out, HasSubstr("recovery pending: sender 0"));
  EXPECT_THAT(out, HasSubstr("ownership: ok"));
  EXPECT_TRUE(RemoveChannel(name).ok());
}

class DumpListTest : public ::testing::Test {
 protected:
  DumpListTest() {
    const char* base = std::getenv("TEST_TMPDIR");
    directory_ = std::string(base != nullptr ? base : "/tmp") +
                 "/lockless_list_XXXXXX";
    if (mkdtemp(&directory_[0]) == nullptr) directory_.clear();
    options_.directory = directory_;
  }
  ~DumpListTest() override {
    (void)system(("rm -rf '" + directory_ + "'").c_str());
  }
  std::string Run(bool list, bool gc) {
    DumpOptions options;
    options.list = list;
    options.gc = gc;
    options.directory = directory_;
    std::string out, err;
    EXPECT_EQ(RunDump(options, &out, &err), kDumpOk) << err;
    return out;
  }
  std::string directory_;
  ChannelOptions options_;
};

TEST_F(DumpListTest, ListsChannelsAndCollectsOnlyUnusedOnes) {
  absl::StatusOr<Channel> open_one =
      Channel::OpenOrCreate("in_use", SmallConfig(), options_);
  ASSERT_TRUE(open_one.ok()) << open_one.status();
  Sender sender = *open_one->queue().MakeSender();
  ASSERT_EQ(sender.Send("x", 1), SendResult::kOk);
  ASSERT_TRUE(Channel::OpenOrCreate("stale", SmallConfig(), options_).ok());
  {
    const int fd = open((directory_ + "/foreign").c_str(), O_CREAT | O_WRONLY,
                        0600);
    ASSERT_EQ(write(fd, "not a channel", 13), 13);
    close(fd);
  }
  const std::string list = Run(true, false);
  EXPECT_THAT(list, HasSubstr("in_use: {"));
  EXPECT_THAT(list, HasSubstr("senders 1 alive 0 dead"));
  EXPECT_THAT(list, HasSubstr("latest 0 at "));
  EXPECT_THAT(list, HasSubstr("stale: {"));
  EXPECT_THAT(list, HasSubstr("nothing sent, not open"));
  EXPECT_THAT(list, HasSubstr("foreign: 13 bytes, not a channel"));
  const std::string gc = Run(false, true);
  EXPECT_THAT(gc, HasSubstr("removed stale"));
  EXPECT_THAT(gc, HasSubstr("1 removed"));
  EXPECT_EQ(access((directory_ + "/in_use").c_str(), F_OK), 0);
  EXPECT_EQ(access((directory_ + "/foreign").c_str(), F_OK), 0);
  EXPECT_NE(access((directory_ + "/stale").c_str(), F_OK), 0);
}

// Processes open, use and close a channel in a loop while dump --gc runs
// over and over: no process ever finds its open channel removed or replaced.
// The children keep going until gc has removed the channel in a gap a few
// times, so the race is really run whatever the scheduling.
TEST_F(DumpListTest, GcRacingWithOpenersNeverRemovesAChannelInUse) {
  constexpr int kProcesses = 2;
  constexpr int kMinRounds = 200;
  constexpr int kMaxRounds = 100 * kMinRounds;  // a bound if removal never works
  constexpr int kWantedRemovals = 5;
  const std::string path = directory_ + "/raced";
  testing::SharedObject<Event> stop;  // Set: children may stop.
  std::vector<pid_t> children;
  for (int p = 0; p < kProcesses; ++p) {
    const pid_t child = fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      for (int round = 0;
           round < kMinRounds || (!stop->IsSet() && round < kMaxRounds);
           ++round) {
        {
          absl::StatusOr<Channel> channel =
              Channel::OpenOrCreate("raced", SmallConfig(), options_);
          if (!channel.ok()) _exit(10);
          struct stat first, last;
          if (stat(path.c_str(), &first) != 0) _exit(11);
          absl::StatusOr<Sender> sender = channel->queue().MakeSender();
          if (sender.ok() && sender->Send("x", 1) != SendResult::kOk) {
            _exit(12);
          }
          if (stat(path.c_str(), &last) != 0) _exit(13);
          if (last.st_ino != first.st_ino) _exit(14);
        }
        sched_yield();  // leave a gap with the channel closed
      }
      _exit(0);
    }
    children.push_back(child);
  }
  int removed = 0;
  int running = kProcesses;
  while (running > 0) {
    if (Run(false, true).find("removed raced") != std::string::npos &&
        ++removed >= kWantedRemovals) {
      stop->Set();
    }
    int status = 0;
    if (waitpid(-1, &status, WNOHANG) > 0) {
      --running;
      EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
          << "status " << status
          << " (exit 11/13: file gone while open, 14: replaced while open)";
    }
  }
  EXPECT_GE(removed, kWantedRemovals);
}

}  // namespace
}  // namespace lockless
