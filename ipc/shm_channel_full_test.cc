// A full /dev/shm (Docker gives containers 64 MB): a channel that does not
// fit is refused with ResourceExhausted and leaves no file; one that fits
// works; an opener after a failed create works; a file with holes is refused
// cleanly. No process dies of SIGBUS.
//
// The outer test re-executes this binary in a private mount namespace
// (unshare(CLONE_NEWNS)) with a 1 MiB tmpfs mounted over /dev/shm, which only
// that process tree sees; the FullTmpfsInside cases run there and skip
// anywhere else. Where namespaces are not allowed the outer test skips and
// says why.
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include "gtest/gtest.h"
#include "ipc/internal/queue_layout.h"
#include "ipc/shm_channel.h"

namespace lockless {
namespace {

constexpr char kInsideVariable[] = "LOCKLESS_INSIDE_FULL_TMPFS";
constexpr int kSkipExitCode = 77;

bool Inside() { return std::getenv(kInsideVariable) != nullptr; }

QueueConfig BigConfig() {  // ~4.3 MB: does not fit in 1 MiB.
  QueueConfig config;
  config.num_watchers = 1;
  config.num_senders = 2;
  config.queue_size = 1024;
  config.message_data_size_bytes = 4096;
  return config;
}

QueueConfig SmallConfig() {  // ~20 KB.
  QueueConfig config;
  config.num_watchers = 1;
  config.num_senders = 2;
  config.queue_size = 64;
  config.message_data_size_bytes = 200;
  return config;
}

TEST(FullTmpfsTest, InsideAPrivateOneMebibyteShm) {
  if (Inside()) GTEST_SKIP() << "this is the inner run";
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    if (unshare(CLONE_NEWNS) != 0) {
      fprintf(stderr, "unshare(CLONE_NEWNS): %s\n", strerror(errno));
      _exit(kSkipExitCode);
    }
    // Private: our mount never propagates back to the host.
    if (mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0 ||
        mount("lockless_full", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV,
              "size=1m,mode=1777") != 0) {
      fprintf(stderr, "mount: %s\n", strerror(errno));
      _exit(kSkipExitCode);
    }
    setenv(kInsideVariable, "1", 1);
    unsetenv("LOCKLESS_SHM_DIR");
    char self[] = "/proc/self/exe";
    char filter[] = "--gtest_filter=FullTmpfsInside.*";
    char* argv[] = {self, filter, nullptr};
    execv(self, argv);
    _exit(126);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  if (WIFEXITED(status) && WEXITSTATUS(status) == kSkipExitCode) {
    GTEST_SKIP() << "mount namespaces are not allowed here (needs root or "
                    "CAP_SYS_ADMIN, outside Bazel's sandbox)";
  }
  ASSERT_FALSE(WIFSIGNALED(status))
      << "the inner run died of signal " << WTERMSIG(status)
      << (WTERMSIG(status) == SIGBUS ? " (SIGBUS: a full /dev/shm crashed it)"
                                     : "");
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "an inner case failed (output above)";
}

class FullTmpfsInside : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!Inside()) GTEST_SKIP() << "runs only inside the private namespace";
    struct stat st;
    ASSERT_EQ(stat("/dev/shm", &st), 0);
  }
};

TEST_F(FullTmpfsInside, TooBigIsResourceExhaustedAndLeavesNoFile) {
  const uint64_t needed = *QueueMemorySize(BigConfig());
  absl::StatusOr<Channel> channel = Channel::OpenOrCreate("big", BigConfig());
  ASSERT_FALSE(channel.ok());
  EXPECT_EQ(channel.status().code(), absl::StatusCode::kResourceExhausted)
      << channel.status();
  const std::string message(channel.status().message());
  EXPECT_NE(message.find("/dev/shm"), std::string::npos) << message;
  EXPECT_NE(message.find("needs " + std::to_string(needed) + " bytes"),
            std::string::npos)
      << message;
  EXPECT_NE(message.find("bytes free"), std::string::npos) << message;
  EXPECT_NE(access("/dev/shm/big", F_OK), 0) << "half-made file left behind";
  // Every later opener gets the same clean error, not a crash.
  EXPECT_EQ(Channel::OpenOrCreate("big", BigConfig()).status().code(),
            absl::StatusCode::kResourceExhausted);
  EXPECT_NE(access("/dev/shm/big", F_OK), 0);
}

TEST_F(FullTmpfsInside, AChannelThatFitsWorks) {
  absl::StatusOr<Channel> channel =
      Channel::OpenOrCreate("small", SmallConfig());
  ASSERT_TRUE(channel.ok()) << channel.status();
  Sender sender = *channel->queue().MakeSender();
  for (int i = 0; i < 200; ++i) {  // Every message and slot is used.
    ASSERT_EQ(sender.Send("fits", 4), SendResult::kOk);
  }
  char buffer[8];
  MessageInfo info;
  EXPECT_EQ(channel->queue().Read(channel->queue().LatestQueueIndex(), &info,
                                  buffer, sizeof(buffer)),
            ReadResult::kGood);
  ASSERT_TRUE(RemoveChannel("small").ok());
}

TEST_F(FullTmpfsInside, SecondOpenerAfterAFailedCreateWorks) {
  ASSERT_EQ(Channel::OpenOrCreate("name", BigConfig()).status().code(),
            absl::StatusCode::kResourceExhausted);
  absl::StatusOr<Channel> channel =
      Channel::OpenOrCreate("name", SmallConfig());
  ASSERT_TRUE(channel.ok()) << channel.status();
  EXPECT_TRUE(channel->created());
  absl::StatusOr<Channel> again = Channel::OpenOrCreate("name", SmallConfig());
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_FALSE(again->created());
  ASSERT_TRUE(RemoveChannel("name").ok());
}

// A stamped file with holes bigger than the free space (what ftruncate-only
// creation made): refused with ResourceExhausted, never mapped and faulted.
TEST_F(FullTmpfsInside, FileWithHolesIsRefusedNotFaulted) {
  const uint64_t size = *QueueMemorySize(BigConfig());
  const int fd = open("/dev/shm/holes", O_RDWR | O_CREAT | O_EXCL, 0600);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(ftruncate(fd, size), 0);
  const uint64_t magic = internal::kRegionMagic;
  ASSERT_EQ(pwrite(fd, &magic, sizeof(magic),
                   offsetof(internal::RegionHeader, magic)),
            8);
  close(fd);
  absl::StatusOr<Channel> channel = Channel::OpenOrCreate("holes", BigConfig());
  ASSERT_FALSE(channel.ok());
  EXPECT_EQ(channel.status().code(), absl::StatusCode::kResourceExhausted)
      << channel.status();
  absl::StatusOr<ReadOnlyChannel> reader =
      ReadOnlyChannel::Open("holes", BigConfig());
  ASSERT_FALSE(reader.ok());
  EXPECT_EQ(reader.status().code(), absl::StatusCode::kFailedPrecondition)
      << reader.status();
  EXPECT_EQ(access("/dev/shm/holes", F_OK), 0) << "not ours to remove";
  ASSERT_TRUE(RemoveChannel("holes").ok());
}

}  // namespace
}  // namespace lockless
