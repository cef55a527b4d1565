// Fuzz-style test of the dump tool: thousands of seeded variants of a valid
// channel region (byte flips anywhere and in the structured parts, wild field
// values, truncation, garbage, extension with junk). For every variant the
// dump core must return 0 or 1 (never crash or hang), an error must be one
// line, and the image must be unchanged (it is also mapped read-only, so a
// write would fault). A sample goes through files and through the real
// `dump` binary (fork/exec), which must exit 0 or 1, never by a signal.
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "ipc/internal/queue_layout.h"
#include "ipc/lockless_queue.h"
#include "ipc/queue_config.h"
#include "ipc/queue_printer.h"
#include "tools/dump_lib.h"

namespace lockless {
namespace {

using ::testing::HasSubstr;
using Bytes = std::vector<unsigned char>;

constexpr uint64_t kSeed = 0x5eed2024d0d0ull;
constexpr int kVariants = 5000;
constexpr int kFileEvery = 50;     // Every 50th variant also via a file.
constexpr int kBinaryEvery = 100;  // Every 100th through the binary (~50).

QueueConfig FuzzConfig() {
  QueueConfig config;
  config.num_watchers = 3;
  config.num_senders = 3;
  config.queue_size = 8;
  config.message_data_size_bytes = 40;
  return config;
}

std::string TempDir() {
  const char* dir = std::getenv("TEST_TMPDIR");
  return dir != nullptr ? dir : "/tmp";
}

std::string DumpBinary() {
  const char* srcdir = std::getenv("TEST_SRCDIR");
  return std::string(srcdir != nullptr ? srcdir : ".") + "/lockless/tools/dump";
}

void WriteFile(const std::string& path, const Bytes& bytes) {
  std::ofstream file(path, std::ios::binary | std::ios::trunc);
  file.write(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  ASSERT_TRUE(file.good()) << path;
}

Bytes ReadFile(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  return Bytes(std::istreambuf_iterator<char>(file), {});
}

// A valid region with messages (the ring has wrapped), one live sender and
// one watcher owned by this thread, captured as bytes.
class BaseImage {
 public:
  BaseImage() {
    const uint64_t size = *QueueMemorySize(FuzzConfig());
    void* memory = mmap(nullptr, size, PROT_READ | PROT_WRITE,
                        MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    memory_ = memory;
    absl::StatusOr<LocklessQueue> queue =
        LocklessQueue::Attach(memory, size, FuzzConfig());
    EXPECT_TRUE(queue.ok()) << queue.status();
    layout_ = queue->region().layout();
    absl::StatusOr<Sender> sender = queue->MakeSender();
    EXPECT_TRUE(sender.ok()) << sender.status();
    absl::StatusOr<Watcher> watcher = queue->MakeWatcher(0);
    EXPECT_TRUE(watcher.ok()) << watcher.status();
    for (int i = 0; i < 11; ++i) {
      std::string payload = "message " + std::to_string(i) + " \x01\xff\n";
      if (i % 3 == 0) payload.append(std::string(30 - payload.size(), 'x'));
      EXPECT_EQ(sender->Send(payload.data(), payload.size()), SendResult::kOk);
    }
    const unsigned char* begin = static_cast<unsigned char*>(memory);
    bytes_.assign(begin, begin + size);
    // Watcher and Sender release their slots on destruction, on this thread;
    // the copy keeps them owned by this (live) thread.
    sender_ = std::make_unique<Sender>(*std::move(sender));
    watcher_ = std::make_unique<Watcher>(*std::move(watcher));
  }

  ~BaseImage() {
    sender_.reset();  // They write to the region: unmap it after them.
    watcher_.reset();
    munmap(memory_, bytes_.size());
  }

  const Bytes& bytes() const { return bytes_; }
  const internal::Layout& layout() const { return layout_; }

 private:
  void* memory_ = nullptr;
  Bytes bytes_;
  internal::Layout layout_;
  std::unique_ptr<Sender> sender_;
  std::unique_ptr<Watcher> watcher_;
};

// Places an image read-only at the end of a mapping, right before a
// PROT_NONE guard page, so that writes and gross over-reads fault.
class ReadOnlyImage {
 public:
  explicit ReadOnlyImage(size_t capacity_bytes) {
    page_ = static_cast<size_t>(sysconf(_SC_PAGESIZE));
    data_bytes_ = (capacity_bytes + page_ - 1) / page_ * page_ + page_;
    base_ = static_cast<unsigned char*>(mmap(nullptr, data_bytes_ + page_,
                                             PROT_NONE,
                                             MAP_PRIVATE | MAP_ANONYMOUS, -1,
                                             0));
  }
  ~ReadOnlyImage() { munmap(base_, data_bytes_ + page_); }

  // Copies `bytes` in (64-byte aligned start, as close to the guard page as
  // alignment allows) and makes them read-only.
  const unsigned char* Load(const Bytes& bytes) {
    mprotect(base_, data_bytes_, PROT_READ | PROT_WRITE);
    const size_t rounded = (bytes.size() + 63) / 64 * 64;
    unsigned char* start = base_ + data_bytes_ - rounded;
    std::memset(base_, 0, data_bytes_);
    if (!bytes.empty()) std::memcpy(start, bytes.data(), bytes.size());
    mprotect(base_, data_bytes_, PROT_READ);
    return start;
  }

 private:
  size_t page_;
  size_t data_bytes_;
  unsigned char* base_;
};

// One line, starting "dump: ", ending in exactly one newline.
void ExpectOneErrorLine(const std::string& err, const std::string& context) {
  ASSERT_FALSE(err.empty()) << context;
  EXPECT_EQ(err.rfind("dump: ", 0), 0u) << context << ": " << err;
  EXPECT_EQ(std::count(err.begin(), err.end(), '\n'), 1) << context << ": "
                                                         << err;
  EXPECT_EQ(err.back(), '\n') << context;
}

class Mutator {
 public:
  Mutator(const BaseImage& base, uint64_t seed)
      : base_(base), random_(seed) {}

  // Returns a variant and a short description of what was done.
  Bytes Next(std::string* what) {
    Bytes bytes = base_.bytes();
    const uint64_t kind = Uniform(0, 9);
    switch (kind) {
      case 0:
        *what = "flips anywhere";
        Flip(&bytes, 0, bytes.size(), Uniform(1, 20));
        break;
      case 1:
        *what = "flips in the header";
        Flip(&bytes, 0, sizeof(internal::RegionHeader), Uniform(1, 20));
        break;
      case 2:
        *what = "flips in the ring";
        Flip(&bytes, base_.layout().ring_offset,
             base_.layout().messages_offset, Uniform(1, 20));
        break;
      case 3:
        *what = "flips in senders and watchers";
        Flip(&bytes, base_.layout().watchers_offset, bytes.size(),
             Uniform(1, 20));
        break;
      case 4:
        *what = "wild structured values";
        WildValues(&bytes);
        break;
      case 5: {
        *what = "truncation";
        const uint64_t choice = Uniform(0, 3);
        size_t length = choice == 0   ? 0
                        : choice == 1 ? Uniform(0, sizeof(internal::RegionHeader))
                                      : Uniform(0, bytes.size());
        bytes.resize(length);
        break;
      }
      case 6: {
        *what = "garbage";
        bytes.resize(Uniform(0, 2 * base_.bytes().size()));
        for (auto& b : bytes) b = static_cast<unsigned char>(random_());
        // Sometimes with a valid-looking header prefix, to get deeper.
        if (Uniform(0, 1) == 1 && bytes.size() >= 192) {
          std::memcpy(bytes.data(), base_.bytes().data(),
                      Uniform(8, sizeof(internal::RegionHeader)));
        }
        break;
      }
      case 7:
        *what = "extension with junk";
        for (uint64_t n = Uniform(1, 5000); n > 0; --n) {
          bytes.push_back(static_cast<unsigned char>(random_()));
        }
        if (Uniform(0, 1) == 1) Flip(&bytes, 0, bytes.size(), Uniform(1, 5));
        break;
      case 8:
        *what = "wild values and truncation";
        WildValues(&bytes);
        bytes.resize(Uniform(0, bytes.size()));
        break;
      default:
        *what = "wild values and flips";
        WildValues(&bytes);
        Flip(&bytes, 0, bytes.size(), Uniform(1, 20));
        break;
    }
    return bytes;
  }

  PrintOptions RandomPrintOptions() {
    PrintOptions options;
    options.summary_only = Uniform(0, 5) == 0;
    options.hex_data = Uniform(0, 2) == 0;
    options.max_data_bytes = Uniform(0, 3) == 0 ? Uniform(0, 100) : 64;
    if (Uniform(0, 4) == 0) {
      options.queue_index = Uniform(0, 2) == 0
                                ? static_cast<uint32_t>(random_())
                                : static_cast<uint32_t>(Uniform(0, 20));
    }
    return options;
  }

  // Uniform in [low, high].
  uint64_t Uniform(uint64_t low, uint64_t high) {
    return std::uniform_int_distribution<uint64_t>(low, high)(random_);
  }

 private:
  void Flip(Bytes* bytes, size_t begin, size_t end, uint64_t count) {
    end = std::min(end, bytes->size());
    if (begin >= end) return;
    for (uint64_t i = 0; i < count; ++i) {
      const size_t at = Uniform(begin, end - 1);
      (*bytes)[at] ^= static_cast<unsigned char>(Uniform(1, 255));
    }
  }

  // A value that is likely to be an edge: 0, all ones, small, huge, random.
  uint64_t Wild() {
    switch (Uniform(0, 6)) {
      case 0: return 0;
      case 1: return ~uint64_t{0};
      case 2: return Uniform(0, 20);
      case 3: return uint64_t{1} << Uniform(0, 63);
      case 4: return 0x7fffffffffffffffull;
      case 5: return 0x8000000000000000ull;
      default: return random_();
    }
  }

  void Put(Bytes* bytes, uint64_t offset, size_t width, uint64_t value) {
    if (offset + width > bytes->size()) return;
    std::memcpy(bytes->data() + offset, &value, width);  // Little-endian.
  }

  // Rewrites a few whole fields the printer interprets: ring entries,
  // message headers, sender and watcher words, and sometimes the header's
  // next_queue_index or configuration.
  void WildValues(Bytes* bytes) {
    const internal::Layout& layout = base_.layout();
    for (uint64_t n = Uniform(1, 6); n > 0; --n) {
      switch (Uniform(0, 5)) {
        case 0:
          Put(bytes,
              layout.ring_offset +
                  sizeof(Index) * Uniform(0, layout.config.queue_size - 1),
              sizeof(Index), Wild());
          break;
        case 1: {
          const uint64_t message =
              layout.messages_offset +
              layout.message_stride_bytes *
                  Uniform(0, layout.num_messages - 1);
          // queue_index (4), length (8 @8), monotonic (8 @16), realtime (8 @24).
          const uint64_t field = Uniform(0, 3);
          Put(bytes, message + (field == 0 ? 0 : 8 * field),
              field == 0 ? 4 : 8, Wild());
          break;
        }
        case 2: {
          const uint64_t slot =
              layout.senders_offset +
              sizeof(internal::SenderSlot) *
                  Uniform(0, layout.config.num_senders - 1);
          const uint64_t field = Uniform(0, 2);
          Put(bytes,
              slot + (field == 0 ? 0
                                 : offsetof(internal::SenderSlot,
                                            scratch_index) +
                                       sizeof(Index) * (field - 1)),
              field == 0 ? 4 : sizeof(Index), Wild());
          break;
        }
        case 3: {
          const uint64_t slot =
              layout.watchers_offset +
              sizeof(internal::WatcherSlot) *
                  Uniform(0, layout.config.num_watchers - 1);
          const uint64_t field = Uniform(0, 2);
          Put(bytes,
              slot + (field == 0 ? 0
                                 : offsetof(internal::WatcherSlot, pid) +
                                       4 * (field - 1)),
              4, Wild());
          break;
        }
        case 4:
          Put(bytes, offsetof(internal::RegionHeader, next_queue_index), 4,
              Wild());
          break;
        default:
          Put(bytes,
              offsetof(internal::RegionHeader, config) + 4 * Uniform(0, 3), 4,
              Wild());
          break;
      }
    }
  }

  const BaseImage& base_;
  std::mt19937_64 random_;
};

struct ExecResult {
  bool exited = false;  // Normally, not by a signal or timeout.
  int code = -1;
  std::string description;
  std::string out;
  std::string err;
};

// Runs the dump binary with `args`, stdout/stderr to files, killing it if it
// runs longer than `timeout`.
ExecResult RunBinary(const std::vector<std::string>& args,
                     std::chrono::seconds timeout = std::chrono::seconds(20)) {
  ExecResult result;
  const std::string out_path = TempDir() + "/dump_stdout";
  const std::string err_path = TempDir() + "/dump_stderr";
  const std::string binary = DumpBinary();
  std::vector<char*> argv;
  argv.push_back(const_cast<char*>(binary.c_str()));
  for (const std::string& arg : args) argv.push_back(const_cast<char*>(arg.c_str()));
  argv.push_back(nullptr);
  const pid_t pid = fork();
  if (pid == 0) {
    const int out = open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    const int err = open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (out < 0 || err < 0) _exit(120);
    dup2(out, STDOUT_FILENO);
    dup2(err, STDERR_FILENO);
    execv(binary.c_str(), argv.data());
    _exit(121);
  }
  if (pid < 0) {
    result.description = "fork failed";
    return result;
  }
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  int status = 0;
  while (true) {
    const pid_t done = waitpid(pid, &status, WNOHANG);
    if (done == pid) break;
    if (std::chrono::steady_clock::now() > deadline) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      result.description = "timed out (hung)";
      return result;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  if (WIFSIGNALED(status)) {
    result.description = std::string("killed by signal ") +
                         strsignal(WTERMSIG(status));
    return result;
  }
  result.exited = true;
  result.code = WEXITSTATUS(status);
  result.description = "exit " + std::to_string(result.code);
  const Bytes out = ReadFile(out_path);
  const Bytes err = ReadFile(err_path);
  result.out.assign(out.begin(), out.end());
  result.err.assign(err.begin(), err.end());
  return result;
}

TEST(DumpCorruptionTest, SeededVariantsNeverCrashAndNeverWrite) {
  const BaseImage base;
  Mutator mutator(base, kSeed);
  ReadOnlyImage image(3 * base.bytes().size() + 8192);
  const std::string file_path = TempDir() + "/variant";
  int exit_zero = 0;
  int exit_one = 0;
  int binary_runs = 0;
  for (int i = 0; i < kVariants; ++i) {
    std::string what;
    const Bytes variant = mutator.Next(&what);
    const PrintOptions options = mutator.RandomPrintOptions();
    const std::string context = "variant " + std::to_string(i) + " (" + what +
                                ", " + std::to_string(variant.size()) +
                                " bytes)";

    // In memory, read-only.
    const unsigned char* memory = image.Load(variant);
    std::string out;
    std::string err;
    const int code = DumpImage(variant.empty() ? nullptr : memory,
                               variant.size(), "<memory>", options, &out, &err);
    ASSERT_TRUE(code == kDumpOk || code == kDumpError) << context;
    if (code == kDumpError) {
      ExpectOneErrorLine(err, context);
      EXPECT_TRUE(out.empty()) << context;
      ++exit_one;
    } else {
      EXPECT_TRUE(err.empty()) << context << ": " << err;
      EXPECT_FALSE(out.empty()) << context;
      ++exit_zero;
    }
    ASSERT_EQ(std::memcmp(memory, variant.data(), variant.size()), 0)
        << context << ": the image changed";

    // Through a file, in-process.
    if (i % kFileEvery == 0) {
      WriteFile(file_path, variant);
      DumpOptions dump;
      dump.path = file_path;
      dump.summary = options.summary_only;
      dump.hex = options.hex_data;
      dump.max_data_bytes = static_cast<int64_t>(options.max_data_bytes);
      if (options.queue_index.has_value() &&
          *options.queue_index != 0xffffffffu) {
        dump.queue_index = *options.queue_index;
      }
      std::string file_out;
      std::string file_err;
      const int file_code = RunDump(dump, &file_out, &file_err);
      ASSERT_TRUE(file_code == kDumpOk || file_code == kDumpError)
          << context << ": " << file_err;
      if (file_code == kDumpError) ExpectOneErrorLine(file_err, context);
      if (!options.queue_index.has_value() ||
          *options.queue_index != 0xffffffffu) {
        // Same verdict as in memory (except for the invalid queue index,
        // which the file run replaced by "all" above).
        EXPECT_EQ(file_code, code) << context << ": " << file_err << err;
      }
      EXPECT_EQ(ReadFile(file_path), variant) << context << ": file changed";

      // Through the binary.
      if (i % kBinaryEvery == 0) {
        ++binary_runs;
        std::vector<std::string> args = {"--path=" + file_path};
        if (dump.summary) args.push_back("--summary");
        if (dump.hex) args.push_back("--hex");
        args.push_back("--queue_index=" + std::to_string(dump.queue_index));
        args.push_back("--max_data_bytes=" +
                       std::to_string(dump.max_data_bytes));
        const ExecResult run = RunBinary(args);
        ASSERT_TRUE(run.exited) << context << ": " << run.description;
        ASSERT_TRUE(run.code == 0 || run.code == 1)
            << context << ": " << run.description << ": " << run.err;
        EXPECT_EQ(run.code, file_code) << context << ": " << run.err;
        if (run.code == 1) ExpectOneErrorLine(run.err, context);
        EXPECT_EQ(ReadFile(file_path), variant) << context << ": file changed";
      }
    }
  }
  // The mix must exercise both outcomes substantially.
  EXPECT_GT(exit_zero, kVariants / 10);
  EXPECT_GT(exit_one, kVariants / 10);
  EXPECT_GE(binary_runs, 40);
  std::cout << "variants: " << kVariants << ", printed: " << exit_zero
            << ", rejected: " << exit_one << ", binary runs: " << binary_runs
            << "\n";
}

TEST(DumpCorruptionTest, BinaryPrintsAValidFile) {
  const BaseImage base;
  const std::string path = TempDir() + "/valid";
  WriteFile(path, base.bytes());
  const ExecResult run = RunBinary({"--path=" + path});
  ASSERT_TRUE(run.exited) << run.description;
  EXPECT_EQ(run.code, 0) << run.err;
  EXPECT_THAT(run.out, HasSubstr("queue_size: 8"));
  EXPECT_THAT(run.out, HasSubstr("data: \"message 10 \\x01\\xff\\n\""));
  EXPECT_TRUE(run.err.empty()) << run.err;

  const ExecResult summary = RunBinary({"--path", path, "--summary"});
  ASSERT_TRUE(summary.exited) << summary.description;
  EXPECT_EQ(summary.code, 0) << summary.err;
  EXPECT_THAT(summary.out, ::testing::Not(HasSubstr("message 10")));
}

TEST(DumpCorruptionTest, BinaryUsageErrorsExitTwo) {
  const std::vector<std::vector<std::string>> cases = {
      {},
      {"--path=/x", "--channel=y"},
      {"--channel=../etc"},
      {"--path=/x", "--queue_index=-2"},
      {"--path=/x", "--queue_index=abc"},
      {"--path=/x", "--max_data_bytes=-1"},
      {"--path=/x", "--no_such_flag"},
      {"--path=/x", "stray"},
  };
  for (const auto& args : cases) {
    const ExecResult run = RunBinary(args);
    std::string joined;
    for (const auto& arg : args) joined += arg + " ";
    ASSERT_TRUE(run.exited) << joined << run.description;
    EXPECT_EQ(run.code, 2) << joined << run.err;
    ExpectOneErrorLine(run.err, joined);
    EXPECT_TRUE(run.out.empty()) << joined;
  }
}

TEST(DumpCorruptionTest, RejectsSpecialFiles) {
  const std::string dir = TempDir();
  const std::string fifo = dir + "/fifo";
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  const std::string valid = dir + "/valid_for_link";
  WriteFile(valid, BaseImage().bytes());
  const std::string link = dir + "/link";
  ASSERT_EQ(symlink(valid.c_str(), link.c_str()), 0);
  const std::string empty = dir + "/empty";
  WriteFile(empty, Bytes());

  const std::vector<std::pair<std::string, std::string>> cases = {
      {dir, "not a regular file"},
      {fifo, "not a regular file"},  // Must not block waiting for a writer.
      {"/dev/null", "not a regular file"},
      {link, "symbolic link"},
      {dir + "/missing", "No such file"},
      {empty, "0 bytes"},
  };
  for (const auto& [path, expected] : cases) {
    DumpOptions options;
    options.path = path;
    std::string out;
    std::string err;
    EXPECT_EQ(RunDump(options, &out, &err), kDumpError) << path;
    ExpectOneErrorLine(err, path);
    EXPECT_THAT(err, HasSubstr("dump: " + path + ": ")) << path;
    EXPECT_THAT(err, HasSubstr(expected)) << path;
  }
}

// The file shrinks after it was mapped: the SIGBUS guard must turn the fault
// into an error, both in the header read and in the snapshot copy.
TEST(DumpCorruptionTest, FileTruncatedWhileMapped) {
  QueueConfig config = FuzzConfig();
  config.queue_size = 64;
  config.message_data_size_bytes = 200;  // Several pages.
  const uint64_t size = *QueueMemorySize(config);
  ASSERT_GT(size, 3u * 4096);
  void* memory = mmap(nullptr, size, PROT_READ | PROT_WRITE,
                      MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  ASSERT_TRUE(LocklessQueue::Attach(memory, size, config).ok());
  const unsigned char* begin = static_cast<unsigned char*>(memory);
  const Bytes bytes(begin, begin + size);
  munmap(memory, size);
  const std::string path = TempDir() + "/shrinking";

  for (const off_t new_size : {off_t{0}, off_t{4096}}) {
    WriteFile(path, bytes);
    DumpOptions options;
    options.path = path;
    options.after_map_for_test = [&] {
      ASSERT_EQ(truncate(path.c_str(), new_size), 0);
    };
    std::string out;
    std::string err;
    EXPECT_EQ(RunDump(options, &out, &err), kDumpError) << new_size;
    ExpectOneErrorLine(err, path);
    EXPECT_THAT(err, HasSubstr("file was truncated while reading"));
    EXPECT_TRUE(out.empty());
  }

  // And the guard is transparent once disarmed: a normal dump still works.
  WriteFile(path, bytes);
  DumpOptions options;
  options.path = path;
  std::string out;
  std::string err;
  EXPECT_EQ(RunDump(options, &out, &err), kDumpOk) << err;
}

}  // namespace
}  // namespace lockless
