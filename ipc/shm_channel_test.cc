#include "ipc/shm_channel.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace lockless {
namespace {

QueueConfig TestConfig() {
  QueueConfig config;
  config.num_watchers = 2;
  config.num_senders = 2;
  config.queue_size = 16;
  config.message_data_size_bytes = 100;
  return config;
}

// A channel name unique to this test run, removed afterwards. Not just the
// pid: every Bazel sandbox has its own pid namespace, so concurrent runs of
// this test share pids.
std::string UniqueSuffix() {
  std::random_device random;
  return std::to_string(getpid()) + "_" + std::to_string(random()) +
         std::to_string(random());
}

class ChannelNameTest : public ::testing::Test {
 protected:
  ChannelNameTest()
      : name_("lockless_test_" + UniqueSuffix() + "_" +
              ::testing::UnitTest::GetInstance()->current_test_info()->name()),
        path_("/dev/shm/" + name_) {
    unlink(path_.c_str());
  }
  ~ChannelNameTest() override { unlink(path_.c_str()); }

  std::string FileBytes() const {
    std::ifstream file(path_, std::ios::binary);
    std::stringstream contents;
    contents << file.rdbuf();
    return contents.str();
  }

  void WriteFile(const std::string& bytes, mode_t mode = 0600) const {
    const int fd = open(path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, mode);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(write(fd, bytes.data(), bytes.size()),
              static_cast<ssize_t>(bytes.size()));
    ASSERT_EQ(fchmod(fd, mode), 0);
    close(fd);
  }

  // Asserts OpenOrCreate fails mentioning `needle` and leaves the file as it
  // was.
  void ExpectRejected(const QueueConfig& config, const std::string& needle,
                      const ChannelOptions& options = ChannelOptions()) {
    const std::string before = FileBytes();
    absl::StatusOr<Channel> channel =
        Channel::OpenOrCreate(name_, config, options);
    ASSERT_FALSE(channel.ok());
    EXPECT_NE(channel.status().message().find(needle), std::string::npos)
        << channel.status();
    EXPECT_EQ(FileBytes(), before) << "file changed by a rejected open";
  }

  const std::string name_;
  const std::string path_;
};

TEST_F(ChannelNameTest, CreateSendAndReopen) {
  {
    absl::StatusOr<Channel> channel =
        Channel::OpenOrCreate(name_, TestConfig());
    ASSERT_TRUE(channel.ok()) << channel.status();
    EXPECT_TRUE(channel->created());
    Sender sender = *channel->queue().MakeSender();
    ASSERT_EQ(sender.Send("persisted", 9), SendResult::kOk);
  }
  struct stat st;
  ASSERT_EQ(stat(path_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  absl::StatusOr<Channel> channel = Channel::OpenOrCreate(name_, TestConfig());
  ASSERT_TRUE(channel.ok()) << channel.status();
  EXPECT_FALSE(channel->created());
  char buffer[100];
  MessageInfo info;
  ASSERT_EQ(channel->queue().Read(channel->queue().MakeQueueIndex(0), &info,
                                  buffer, sizeof(buffer)),
            ReadResult::kGood);
  EXPECT_EQ(std::string(buffer, info.length), "persisted");
}

TEST_F(ChannelNameTest, UsedByAForkedSecondProcess) {
  absl::StatusOr<Channel> channel = Channel::OpenOrCreate(name_, TestConfig());
  ASSERT_TRUE(channel.ok()) << channel.status();
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    // The child opens the channel by name itself and sends three messages.
    absl::StatusOr<Channel> own = Channel::OpenOrCreate(name_, TestConfig());
    if (!own.ok()) _exit(10);
    absl::StatusOr<Sender> sender = own->queue().MakeSender();
    if (!sender.ok()) _exit(11);
    for (int i = 0; i < 3; ++i) {
      const std::string text = "from child " + std::to_string(i);
      if (sender->Send(text.data(), text.size()) != SendResult::kOk) _exit(12);
    }
    _exit(0);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  ASSERT_EQ(WEXITSTATUS(status), 0);
  for (uint32_t i = 0; i < 3; ++i) {
    char buffer[100];
    MessageInfo info;
    ASSERT_EQ(channel->queue().Read(channel->queue().MakeQueueIndex(i), &info,
                                    buffer, sizeof(buffer)),
              ReadResult::kGood);
    EXPECT_EQ(std::string(buffer, info.length),
              "from child " + std::to_string(i));
  }
  // The child's sender slot was released (it exited after destroying it),
  // so both slots are available.
  absl::StatusOr<Sender> a = channel->queue().MakeSender();
  absl::StatusOr<Sender> b = channel->queue().MakeSender();
  EXPECT_TRUE(a.ok() && b.ok());
}

TEST_F(ChannelNameTest, ConfigMismatchRejected) {
  ASSERT_TRUE(Channel::OpenOrCreate(name_, TestConfig()).ok());
  QueueConfig other = TestConfig();
  other.num_watchers = 3;  // Same size? No: watchers change the size.
  ExpectRejected(other, "another configuration");
  // Same total size, different field: caught by the header check.
  QueueConfig same_size = TestConfig();
  same_size.message_data_size_bytes = 99;  // Rounds to the same stride.
  ASSERT_EQ(*QueueMemorySize(same_size), *QueueMemorySize(TestConfig()));
  ExpectRejected(same_size, "created with configuration");
}

TEST_F(ChannelNameTest, TruncatedFileRejected) {
  ASSERT_TRUE(Channel::OpenOrCreate(name_, TestConfig()).ok());
  ASSERT_EQ(truncate(path_.c_str(), 4096), 0);
  ExpectRejected(TestConfig(), "truncated");
}

TEST_F(ChannelNameTest, ForeignFileRejected) {
  WriteFile(std::string(*QueueMemorySize(TestConfig()), 'Z'));
  ExpectRejected(TestConfig(), "bad magic");
}

// Foreign files of exactly the channel's size whose magic is still zero
// (what a creator leaves between sizing and stamping) are never locked or
// initialised: after the creation timeout they are rejected, untouched.
TEST_F(ChannelNameTest, ForeignFileWithZeroMagicRejectedUntouched) {
  ChannelOptions quick;
  quick.creation_timeout = absl::Milliseconds(20);
  // First word: garbage that is no live thread id (locking it would make
  // the kernel set FUTEX_WAITERS in the file).
  std::string garbage(*QueueMemorySize(TestConfig()), '\0');
  std::memcpy(&garbage[0], "FOREIGN", 7);
  WriteFile(garbage);
  ExpectRejected(TestConfig(), "no lockless queue magic", quick);
  // First word 1: "owned by pid 1", which would block a lock forever.
  std::string init_owned(*QueueMemorySize(TestConfig()), '\0');
  init_owned[0] = 1;
  WriteFile(init_owned);
  ExpectRejected(TestConfig(), "no lockless queue magic", quick);
  // A zero header on top of foreign data: not initialised over it.
  std::string zero_header(*QueueMemorySize(TestConfig()), 'Z');
  std::memset(&zero_header[0], 0, 256);
  WriteFile(zero_header);
  ExpectRejected(TestConfig(), "no lockless queue magic", quick);
}

// A creator that died before sizing its file: openers give up after the
// creation timeout and leave the (empty) file alone.
TEST_F(ChannelNameTest, EmptyFileRejectedAfterCreationTimeout) {
  ChannelOptions quick;
  quick.creation_timeout = absl::Milliseconds(20);
  WriteFile("");
  ExpectRejected(TestConfig(), "stayed empty", quick);
}

TEST_F(ChannelNameTest, SymlinkRejected) {
  const std::string target = path_ + "_target";
  ASSERT_TRUE(Channel::OpenOrCreate(name_ + "_target", TestConfig()).ok());
  ASSERT_EQ(symlink(target.c_str(), path_.c_str()), 0);
  absl::StatusOr<Channel> channel = Channel::OpenOrCreate(name_, TestConfig());
  ASSERT_FALSE(channel.ok());
  EXPECT_NE(channel.status().message().find("symbolic link"),
            std::string::npos)
      << channel.status();
  struct stat st;
  ASSERT_EQ(lstat(path_.c_str(), &st), 0);
  EXPECT_TRUE(S_ISLNK(st.st_mode));
  unlink(target.c_str());
}

TEST_F(ChannelNameTest, WrongModeRejected) {
  ChannelOptions wide;
  wide.mode = 0660;
  ASSERT_TRUE(Channel::OpenOrCreate(name_, TestConfig(), wide).ok());
  ExpectRejected(TestConfig(), "grants more than");  // Asks for 0600.
  ChannelOptions world_writable;
  world_writable.mode = 0666;
  absl::StatusOr<Channel> channel =
      Channel::OpenOrCreate(name_ + "_ww", TestConfig(), world_writable);
  ASSERT_FALSE(channel.ok());
  EXPECT_NE(channel.status().message().find("world-writable"),
            std::string::npos);
  EXPECT_NE(access((path_ + "_ww").c_str(), F_OK), 0);
}

TEST_F(ChannelNameTest, BadNamesRejected) {
  for (const char* name : {"", ".", "..", "a/b", "../etc", "sp ace"}) {
    absl::StatusOr<Channel> channel = Channel::OpenOrCreate(name, TestConfig());
    ASSERT_FALSE(channel.ok()) << name;
    EXPECT_EQ(channel.status().code(), absl::StatusCode::kInvalidArgument);
  }
}

// Several processes race to create the same channel; all end up attached to
// one valid region (each sends one message, all are readable).
TEST_F(ChannelNameTest, ConcurrentCreatorsShareOneRegion) {
  constexpr int kProcesses = 4;
  std::vector<pid_t> children;
  for (int p = 0; p < kProcesses; ++p) {
    const pid_t child = fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      absl::StatusOr<Channel> channel =
          Channel::OpenOrCreate(name_, TestConfig());
      if (!channel.ok()) _exit(10);
      absl::StatusOr<Sender> sender = channel->queue().MakeSender();
      // Two sender slots for four processes: retry until one frees up.
      while (!sender.ok()) sender = channel->queue().MakeSender();
      const char byte = static_cast<char>('A' + p);
      if (sender->Send(&byte, 1) != SendResult::kOk) _exit(12);
      _exit(channel->created() ? 100 : 0);
    }
    children.push_back(child);
  }
  int creators = 0;
  for (pid_t child : children) {
    int status = 0;
    ASSERT_EQ(waitpid(child, &status, 0), child);
    ASSERT_TRUE(WIFEXITED(status));
    const int code = WEXITSTATUS(status);
    ASSERT_TRUE(code == 0 || code == 100) << code;
    if (code == 100) ++creators;
  }
  EXPECT_EQ(creators, 1);
  absl::StatusOr<Channel> channel = Channel::OpenOrCreate(name_, TestConfig());
  ASSERT_TRUE(channel.ok()) << channel.status();
  std::string seen;
  for (uint32_t i = 0; i < kProcesses; ++i) {
    char byte;
    MessageInfo info;
    ASSERT_EQ(channel->queue().Read(channel->queue().MakeQueueIndex(i), &info,
                                    &byte, 1),
              ReadResult::kGood);
    seen += byte;
  }
  std::sort(seen.begin(), seen.end());
  EXPECT_EQ(seen, "ABCD");
}

TEST_F(ChannelNameTest, RemoveChannel) {
  ASSERT_TRUE(Channel::OpenOrCreate(name_, TestConfig()).ok());
  EXPECT_TRUE(RemoveChannel(name_).ok());
  EXPECT_EQ(RemoveChannel(name_).code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace lockless
