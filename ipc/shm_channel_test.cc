#include "ipc/shm_channel.h"

#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <fstream>
#include <future>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include "gtest/gtest.h"
#include "ipc/internal/owner_liveness.h"
#include "ipc/internal/queue_layout.h"
#include "sync/futex.h"
#include "testing/shared_object.h"
#include "testing/thread_state.h"

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

// ---- Reserved space ----

// A stamped file with holes (what ftruncate-only creation made) is completed
// before it is mapped: afterwards every byte is allocated, so no store can
// fault for lack of space. A read-only reader refuses it instead.
TEST_F(ChannelNameTest, FileWithHolesIsCompletedOrRefused) {
  QueueConfig config = TestConfig();  // Many pages, so holes remain.
  config.queue_size = 256;
  config.message_data_size_bytes = 1000;
  const uint64_t size = *QueueMemorySize(config);
  {
    const int fd = open(path_.c_str(), O_RDWR | O_CREAT | O_EXCL, 0600);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(ftruncate(fd, size), 0);
    const uint64_t magic = internal::kRegionMagic;
    ASSERT_EQ(pwrite(fd, &magic, sizeof(magic),
                     offsetof(internal::RegionHeader, magic)),
              8);
    close(fd);
  }
  struct stat st;
  ASSERT_EQ(stat(path_.c_str(), &st), 0);
  ASSERT_LT(static_cast<uint64_t>(st.st_blocks) * 512, size);
  absl::StatusOr<ReadOnlyChannel> reader =
      ReadOnlyChannel::Open(name_, config);
  ASSERT_FALSE(reader.ok());
  EXPECT_NE(reader.status().message().find("holes"), std::string::npos)
      << reader.status();

  absl::StatusOr<Channel> channel = Channel::OpenOrCreate(name_, config);
  ASSERT_TRUE(channel.ok()) << channel.status();
  ASSERT_EQ(stat(path_.c_str(), &st), 0);
  EXPECT_GE(static_cast<uint64_t>(st.st_blocks) * 512, size);
  EXPECT_TRUE(ReadOnlyChannel::Open(name_, config).ok());
}

TEST_F(ChannelNameTest, CreatedFileIsFullyAllocated) {
  ASSERT_TRUE(Channel::OpenOrCreate(name_, TestConfig()).ok());
  struct stat st;
  ASSERT_EQ(stat(path_.c_str(), &st), 0);
  EXPECT_GE(static_cast<uint64_t>(st.st_blocks) * 512,
            *QueueMemorySize(TestConfig()));
}

// ---- Directory option ----

// A fresh directory under the test's temporary directory, removed with its
// files afterwards.
class ChannelDirectoryTest : public ::testing::Test {
 protected:
  std::string MakeDirectory(mode_t mode = 0700) {
    const char* base = std::getenv("TEST_TMPDIR");
    std::string templ = std::string(base != nullptr ? base : "/tmp") +
                        "/lockless_dir_XXXXXX";
    if (mkdtemp(&templ[0]) == nullptr) return "";
    chmod(templ.c_str(), mode);
    directories_.push_back(templ);
    return templ;
  }
  ~ChannelDirectoryTest() override {
    for (const std::string& dir : directories_) {
      const std::string command = "rm -rf '" + dir + "'";
      (void)system(command.c_str());
    }
  }
  std::vector<std::string> directories_;
};

TEST_F(ChannelDirectoryTest, SameNameInTwoDirectoriesIsTwoChannels) {
  ChannelOptions a, b;
  a.directory = MakeDirectory();
  b.directory = MakeDirectory();
  ASSERT_FALSE(a.directory.empty() || b.directory.empty());
  absl::StatusOr<Channel> in_a = Channel::OpenOrCreate("same", TestConfig(), a);
  absl::StatusOr<Channel> in_b = Channel::OpenOrCreate("same", TestConfig(), b);
  ASSERT_TRUE(in_a.ok()) << in_a.status();
  ASSERT_TRUE(in_b.ok()) << in_b.status();
  EXPECT_TRUE(in_a->created());
  EXPECT_TRUE(in_b->created());
  EXPECT_EQ(in_a->path(), a.directory + "/same");
  EXPECT_EQ(in_b->path(), b.directory + "/same");
  Sender sender = *in_a->queue().MakeSender();
  ASSERT_EQ(sender.Send("only in a", 9), SendResult::kOk);
  EXPECT_TRUE(in_a->queue().LatestQueueIndex().valid());
  EXPECT_FALSE(in_b->queue().LatestQueueIndex().valid());
  EXPECT_TRUE(RemoveStaleChannel("same", b).code() ==
              absl::StatusCode::kFailedPrecondition);  // b is open
}

TEST_F(ChannelDirectoryTest, EnvironmentVariableSetsTheDefault) {
  const std::string dir = MakeDirectory();
  ASSERT_EQ(setenv("LOCKLESS_SHM_DIR", dir.c_str(), 1), 0);
  EXPECT_EQ(DefaultChannelDirectory(), dir);
  absl::StatusOr<Channel> channel =
      Channel::OpenOrCreate("from_env", TestConfig());
  unsetenv("LOCKLESS_SHM_DIR");
  ASSERT_TRUE(channel.ok()) << channel.status();
  EXPECT_EQ(channel->path(), dir + "/from_env");
  EXPECT_EQ(DefaultChannelDirectory(), "/dev/shm");
}

TEST_F(ChannelDirectoryTest, BadDirectoriesRejected) {
  auto open_in = [](const std::string& directory) {
    ChannelOptions options;
    options.directory = directory;
    return Channel::OpenOrCreate("x", TestConfig(), options).status();
  };
  absl::Status status = open_in(MakeDirectory() + "/does_not_exist");
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound) << status;

  status = open_in("relative/dir");
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;

  const std::string plain_file = MakeDirectory() + "/plain_file";
  close(open(plain_file.c_str(), O_CREAT | O_WRONLY, 0600));
  status = open_in(plain_file);
  EXPECT_NE(status.message().find("not a directory"), std::string::npos)
      << status;

  const std::string world_writable = MakeDirectory(0777);  // Not sticky.
  status = open_in(world_writable);
  EXPECT_NE(status.message().find("writable by everyone"), std::string::npos)
      << status;
  EXPECT_NE(access((world_writable + "/x").c_str(), F_OK), 0);
  ChannelOptions options;
  options.directory = world_writable;
  EXPECT_FALSE(ReadOnlyChannel::Open("x", TestConfig(), options).ok());

  EXPECT_TRUE(open_in(MakeDirectory(01777)).ok());  // Sticky: like /dev/shm.
}

// ---- Read-only readers ----

// The type offers no way to send or register a watcher.
template <typename T, typename = void>
struct HasMakeSender : std::false_type {};
template <typename T>
struct HasMakeSender<T, std::void_t<decltype(std::declval<T&>().MakeSender())>>
    : std::true_type {};
template <typename T, typename = void>
struct HasQueue : std::false_type {};
template <typename T>
struct HasQueue<T, std::void_t<decltype(std::declval<T&>().queue())>>
    : std::true_type {};
static_assert(!HasMakeSender<const ReadOnlyChannel>::value);
static_assert(!HasQueue<const ReadOnlyChannel>::value);
static_assert(HasQueue<const Channel>::value);

TEST_F(ChannelNameTest, ReadOnlyReaderReads) {
  absl::StatusOr<Channel> channel = Channel::OpenOrCreate(name_, TestConfig());
  ASSERT_TRUE(channel.ok()) << channel.status();
  absl::StatusOr<ReadOnlyChannel> reader =
      ReadOnlyChannel::Open(name_, TestConfig());
  ASSERT_TRUE(reader.ok()) << reader.status();
  EXPECT_FALSE(reader->LatestQueueIndex().valid());
  Sender sender = *channel->queue().MakeSender();
  ASSERT_EQ(sender.Send("hello", 5), SendResult::kOk);
  ASSERT_EQ(reader->LatestQueueIndex(), reader->MakeQueueIndex(0));
  char buffer[100];
  MessageInfo info;
  ASSERT_EQ(reader->Read(reader->MakeQueueIndex(0), &info, buffer,
                         sizeof(buffer)),
            ReadResult::kGood);
  EXPECT_EQ(std::string(buffer, info.length), "hello");

  QueueConfig other = TestConfig();
  other.queue_size = 32;
  EXPECT_FALSE(ReadOnlyChannel::Open(name_, other).ok());
  EXPECT_EQ(ReadOnlyChannel::Open(name_ + "_none", TestConfig()).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_NE(access((path_ + "_none").c_str(), F_OK), 0);
}

// The read-only reader's blocking wait: ready once a message is published
// (woken by the registered Waiter's FUTEX_WAKE, or by its poll otherwise),
// timed out when nothing comes; it writes nothing (the mapping is PROT_READ:
// any write would kill the test with SIGSEGV).
TEST_F(ChannelNameTest, ReadOnlyReaderWaits) {
  absl::StatusOr<Channel> channel = Channel::OpenOrCreate(name_, TestConfig());
  ASSERT_TRUE(channel.ok()) << channel.status();
  absl::StatusOr<ReadOnlyChannel> reader =
      ReadOnlyChannel::Open(name_, TestConfig());
  ASSERT_TRUE(reader.ok()) << reader.status();
  const QueueIndex first = reader->MakeQueueIndex(0);
  EXPECT_EQ(reader->Wait(first, MonotonicNowNs() + 20'000'000),
            WaitResult::kTimedOut);
  for (const bool with_waiter : {false, true}) {
    const QueueIndex next = reader->LatestQueueIndex().valid()
                                ? reader->LatestQueueIndex().Increment()
                                : first;
    const int64_t deadline_ns = MonotonicNowNs() + int64_t{60} * 1000000000;
    std::atomic<int> result{-1};
    std::atomic<pid_t> reader_tid{0};
    std::thread waiting([&] {
      reader_tid.store(static_cast<pid_t>(syscall(SYS_gettid)));
      // With a registered Waiter, poll only at the deadline: the wake-up
      // must come from the senders' FUTEX_WAKE on the shared word.
      result.store(static_cast<int>(reader->Wait(
          next, deadline_ns,
          with_waiter ? deadline_ns - MonotonicNowNs() : 1'000'000)));
    });
    std::thread registered;
    if (with_waiter) {
      registered = std::thread([&] {
        absl::StatusOr<Waiter> waiter = channel->queue().MakeWaiter();
        ASSERT_TRUE(waiter.ok()) << waiter.status();
        (void)waiter->Wait(next, deadline_ns);
      });
      // Until the Waiter is registered (its bit makes senders wake the
      // word) and the read-only reader sleeps on that word.
      while (channel->queue().region().header()->waiter_bits.load() == 0 ||
             reader_tid.load() == 0 ||
             !testing::ThreadIsSleeping(reader_tid.load())) {
        std::this_thread::yield();
      }
    }
    std::thread([&] {
      Sender sender = *channel->queue().MakeSender();
      ASSERT_EQ(sender.Send("wake", 4), SendResult::kOk);
    }).join();
    waiting.join();
    EXPECT_EQ(result.load(), static_cast<int>(WaitResult::kReady))
        << (with_waiter ? "with" : "without") << " a registered Waiter";
    if (registered.joinable()) registered.join();
  }
}

// A write through the read-only mapping faults; the channel is unchanged.
// A bug scribbling on the channel, uninstrumented so that the store itself
// reaches the MMU even under AddressSanitizer or ThreadSanitizer.
__attribute__((noinline, no_sanitize("address", "thread"))) void Scribble(
    volatile unsigned char* byte) {
  *byte = 0x5a;
}

constexpr int kFaulted = 42;

void ExitFaulted(int) { _exit(kFaulted); }

TEST_F(ChannelNameTest, WriteThroughReadOnlyReaderFaults) {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  // Their runtimes interpose on this fault (ASan stops the store from its
  // shadow, TSan's child never sees it); the MMU's refusal is a property of
  // the mapping, checked in the plain build.
  GTEST_SKIP() << "checked without sanitizers";
#endif
  ASSERT_TRUE(Channel::OpenOrCreate(name_, TestConfig()).ok());
  absl::StatusOr<ReadOnlyChannel> reader =
      ReadOnlyChannel::Open(name_, TestConfig());
  ASSERT_TRUE(reader.ok()) << reader.status();
  const std::string before = FileBytes();
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    // Our own handler (sanitizers keep theirs otherwise): a fault is exit 42.
    struct sigaction action;
    memset(&action, 0, sizeof(action));
    action.sa_handler = ExitFaulted;
    sigaction(SIGSEGV, &action, nullptr);
    sigaction(SIGBUS, &action, nullptr);
    Scribble(static_cast<volatile unsigned char*>(
                 const_cast<void*>(reader->memory())) +
             4096);
    _exit(0);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == kFaulted)
      << "the write did not fault (wait status " << status << ")";
  EXPECT_EQ(FileBytes(), before);
}

// Another user in the channel's group reads it read-only (mode 0640), and
// cannot open it read-write.
TEST_F(ChannelNameTest, AnotherUserWithGroupReadCanRead) {
  if (geteuid() != 0) {
    GTEST_SKIP() << "needs root to run a child as another uid";
  }
  constexpr uid_t kOtherUid = 54321;
  constexpr gid_t kGroup = 54321;
  ChannelOptions group_read;
  group_read.mode = 0640;
  absl::StatusOr<Channel> channel =
      Channel::OpenOrCreate(name_, TestConfig(), group_read);
  ASSERT_TRUE(channel.ok()) << channel.status();
  ASSERT_EQ(chown(path_.c_str(), geteuid(), kGroup), 0);
  Sender sender = *channel->queue().MakeSender();
  ASSERT_EQ(sender.Send("for the group", 13), SendResult::kOk);
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    if (setgroups(0, nullptr) != 0 || setgid(kGroup) != 0 ||
        setuid(kOtherUid) != 0) {
      _exit(20);
    }
    absl::StatusOr<Channel> writer =
        Channel::OpenOrCreate(name_, TestConfig(), group_read);
    if (writer.ok() ||
        writer.status().code() != absl::StatusCode::kPermissionDenied) {
      _exit(21);
    }
    absl::StatusOr<ReadOnlyChannel> reader =
        ReadOnlyChannel::Open(name_, TestConfig());
    if (!reader.ok()) _exit(22);
    char buffer[100];
    MessageInfo info;
    if (reader->Read(reader->MakeQueueIndex(0), &info, buffer,
                     sizeof(buffer)) != ReadResult::kGood ||
        std::string(buffer, info.length) != "for the group") {
      _exit(23);
    }
    _exit(0);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0)
      << "20 setuid, 21 read-write open not refused, 22 read-only open "
         "failed, 23 wrong message";
}

// ---- Removal of stale channels ----

TEST_F(ChannelNameTest, RemoveStaleChannelKeepsOpenChannels) {
  {
    absl::StatusOr<Channel> channel =
        Channel::OpenOrCreate(name_, TestConfig());
    ASSERT_TRUE(channel.ok());
    EXPECT_EQ(RemoveStaleChannel(name_).code(),
              absl::StatusCode::kFailedPrecondition);
    absl::StatusOr<ReadOnlyChannel> reader =
        ReadOnlyChannel::Open(name_, TestConfig());
    ASSERT_TRUE(reader.ok());
  }
  {
    absl::StatusOr<ReadOnlyChannel> reader =
        ReadOnlyChannel::Open(name_, TestConfig());
    ASSERT_TRUE(reader.ok());
    EXPECT_EQ(RemoveStaleChannel(name_).code(),
              absl::StatusCode::kFailedPrecondition);
  }
  EXPECT_TRUE(RemoveStaleChannel(name_).ok());
  EXPECT_NE(access(path_.c_str(), F_OK), 0);
  EXPECT_EQ(RemoveStaleChannel(name_).code(), absl::StatusCode::kNotFound);
}

// Processes open, use and close the channel in a loop while the parent tries
// to remove it as fast as it can: a process holding the channel always finds
// its own file still at the path (never removed under it). The children keep
// going until the parent has seen removals happen in the gaps, so the race the
// test is about has really been run, however the machine schedules them.
TEST_F(ChannelNameTest, RemovalRacingWithOpenersNeverRemovesAChannelInUse) {
  constexpr int kProcesses = 3;
  constexpr int kMinRounds = 300;
  constexpr int kMaxRounds = 100 * kMinRounds;  // a bound if removal never works
  constexpr int kWantedRemovals = 20;
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
              Channel::OpenOrCreate(name_, TestConfig());
          if (!channel.ok()) _exit(10);
          // Ours now: nobody may remove it until we close it.
          struct stat first;
          if (stat(path_.c_str(), &first) != 0) _exit(11);
          absl::StatusOr<Sender> sender = channel->queue().MakeSender();
          if (sender.ok() && sender->Send("x", 1) != SendResult::kOk) {
            _exit(12);
          }
          struct stat last;
          if (stat(path_.c_str(), &last) != 0) _exit(13);  // removed under us
          if (last.st_ino != first.st_ino) _exit(14);      // replaced
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
    if (RemoveStaleChannel(name_).ok() && ++removed >= kWantedRemovals) {
      stop->Set();
    }
    int status = 0;
    const pid_t done = waitpid(-1, &status, WNOHANG);
    if (done > 0) {
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

namespace lockless {
namespace {

// The channel file's `initialized` word scribbled on a channel that was in
// use: OpenOrCreate reports corruption and leaves the file byte for byte as
// it was (never re-initialised: that would wipe a live ring).
TEST_F(ChannelNameTest, ScribbledInitializedWordIsReportedFileUntouched) {
  for (const uint32_t scribble : {0u, 0x12345678u}) {
    SCOPED_TRACE(scribble);
    unlink(path_.c_str());
    {
      absl::StatusOr<Channel> channel =
          Channel::OpenOrCreate(name_, TestConfig());
      ASSERT_TRUE(channel.ok()) << channel.status();
      absl::StatusOr<Sender> sender = channel->queue().MakeSender();
      ASSERT_TRUE(sender.ok());
      ASSERT_EQ(sender->Send("in use", 6), SendResult::kOk);
    }
    const int fd = open(path_.c_str(), O_RDWR);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(pwrite(fd, &scribble, sizeof(scribble),
                     offsetof(internal::RegionHeader, initialized)),
              static_cast<ssize_t>(sizeof(scribble)));
    close(fd);
    const std::string before = FileBytes();

    absl::StatusOr<Channel> again = Channel::OpenOrCreate(name_, TestConfig());
    EXPECT_EQ(again.status().code(), absl::StatusCode::kDataLoss)
        << again.status();
    EXPECT_TRUE(FileBytes() == before) << "the file was modified";
  }
}

// A file whose setup lock is held, mid-initialisation, by a live thread that
// never releases it: OpenOrCreate with a deadline reports the holder (pid,
// tid, alive) instead of blocking forever, and does not touch the file.
TEST_F(ChannelNameTest, SetupLockHeldForeverIsReportedFileUntouched) {
  absl::StatusOr<Channel> creator = Channel::OpenOrCreate(name_, TestConfig());
  ASSERT_TRUE(creator.ok()) << creator.status();
  internal::RegionHeader* const header = creator->queue().region().header();
  // Back to "stamped, not initialised": a creator that is still at it.
  header->initialized.store(0);
  header->layout_version = 0;
  std::promise<pid_t> held;
  std::promise<void> release;
  std::thread holder([&] {
    ASSERT_EQ(header->setup_lock.Lock(), LockResult::kAcquired);
    internal::StoreOwnerRecord(header->setup_lock_owner,
                               internal::CurrentOwnerIdentity());
    held.set_value(static_cast<pid_t>(syscall(SYS_gettid)));
    release.get_future().wait();
    header->setup_lock.Unlock();
  });
  const pid_t holder_tid = held.get_future().get();
  const std::string before = FileBytes();

  ChannelOptions options;
  options.setup_deadline =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(50);
  absl::StatusOr<Channel> opener =
      Channel::OpenOrCreate(name_, TestConfig(), options);
  EXPECT_EQ(opener.status().code(), absl::StatusCode::kDeadlineExceeded)
      << opener.status();
  const std::string names_holder = "pid " + std::to_string(getpid()) + " tid " +
                                   std::to_string(holder_tid) + " (alive)";
  EXPECT_NE(std::string(opener.status().message()).find(names_holder),
            std::string::npos)
      << opener.status();
  EXPECT_TRUE(FileBytes() == before) << "the file was modified";

  release.set_value();
  holder.join();
}

}  // namespace
}  // namespace lockless
