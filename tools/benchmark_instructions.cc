#include "tools/benchmark_instructions.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace lockless {
namespace benchmark_tool {
namespace {

// callgrind's names of the functions whose instructions count (demangled;
// '*' matches the argument lists, so both Send overloads count).
const char* ToggleFunction(CountedCall call) {
  return call == CountedCall::kRead ? "lockless::LocklessQueue::Read*"
                                    : "lockless::Sender::Send*";
}

// The "totals:" (or, in older formats, "summary:") line of a callgrind
// output file: the first event is Ir, instructions executed.
absl::StatusOr<uint64_t> TotalInstructions(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::InternalError("no callgrind output at " + path);
  std::string line;
  std::optional<uint64_t> summary;
  while (std::getline(in, line)) {
    absl::string_view rest = line;
    if (absl::ConsumePrefix(&rest, "totals:") ||
        absl::ConsumePrefix(&rest, "summary:")) {
      std::vector<absl::string_view> fields =
          absl::StrSplit(absl::StripLeadingAsciiWhitespace(rest), ' ');
      uint64_t value = 0;
      if (!fields.empty() && absl::SimpleAtoi(fields[0], &value)) {
        summary = value;
      }
    }
  }
  if (!summary) return absl::InternalError("no totals in " + path);
  return *summary;
}

}  // namespace

const char* CountedCallName(CountedCall call) {
  switch (call) {
    case CountedCall::kSend:
      return "send";
    case CountedCall::kZeroCopySend:
      return "send_zero_copy";
    case CountedCall::kRateLimitedSend:
      return "send_rate_limited";
    case CountedCall::kRead:
      return "read";
  }
  return "read";
}

std::string FindValgrind() {
  const char* path = std::getenv("PATH");
  if (path == nullptr) return "";
  for (absl::string_view dir : absl::StrSplit(path, ':', absl::SkipEmpty())) {
    const std::string candidate = absl::StrCat(dir, "/valgrind");
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return "";
}

absl::StatusOr<double> CountInstructionsPerCall(
    const std::string& valgrind_path, CountedCall call, size_t message_bytes,
    int calls, uint32_t queue_size, CountedPinning pinning) {
  char self[4096];
  const ssize_t self_length =
      readlink("/proc/self/exe", self, sizeof(self) - 1);
  if (self_length <= 0) return absl::InternalError("readlink /proc/self/exe");
  self[self_length] = '\0';
  char out_path[] = "/tmp/lockless_callgrind.XXXXXX";
  const int out_fd = mkstemp(out_path);
  if (out_fd < 0) return absl::InternalError("mkstemp for callgrind output");
  close(out_fd);

  std::vector<std::string> args = {
      valgrind_path,
      "--tool=callgrind",
      absl::StrCat("--callgrind-out-file=", out_path),
      absl::StrCat("--toggle-collect=", ToggleFunction(call)),
      self,
      absl::StrCat("--counted_call=", CountedCallName(call)),
      absl::StrCat("--counted_bytes=", message_bytes),
      absl::StrCat("--counted_calls=", calls),
      absl::StrCat("--counted_queue_size=", queue_size),
      absl::StrCat("--counted_pinning=", static_cast<int>(pinning))};
  std::vector<char*> argv;
  for (std::string& arg : args) argv.push_back(arg.data());
  argv.push_back(nullptr);

  const pid_t pid = fork();
  if (pid < 0) return absl::InternalError("fork for valgrind");
  if (pid == 0) {
    // valgrind's own chatter goes to /dev/null; the counts go to the file.
    const int null_fd = open("/dev/null", O_WRONLY);
    if (null_fd >= 0) {
      dup2(null_fd, STDOUT_FILENO);
      dup2(null_fd, STDERR_FILENO);
    }
    execv(argv[0], argv.data());
    _exit(127);
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  absl::StatusOr<uint64_t> total = TotalInstructions(out_path);
  unlink(out_path);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    return absl::InternalError(absl::StrFormat(
        "valgrind on the %s workload failed (status %d)",
        CountedCallName(call), status));
  }
  if (!total.ok()) return total.status();
  return static_cast<double>(*total) / calls;
}

}  // namespace benchmark_tool
}  // namespace lockless
