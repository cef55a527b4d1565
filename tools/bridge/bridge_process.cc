#include "tools/bridge/bridge_process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <ctime>
#include <fstream>

#include "absl/strings/str_cat.h"

namespace lockless::bridge {

std::string RunfilePath(const std::string& relative) {
  for (const char* variable : {"TEST_SRCDIR", "RUNFILES_DIR"}) {
    if (const char* dir = getenv(variable)) {
      return absl::StrCat(dir, "/lockless/", relative);
    }
  }
  // `bazel run`: runfiles next to the binary.
  char self[4096];
  const ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
  if (n > 0) {
    self[n] = '\0';
    return absl::StrCat(self, ".runfiles/lockless/", relative);
  }
  return relative;
}

BridgeProcess::BridgeProcess(std::string binary, std::string channel_dir,
                             std::string state_dir, uint32_t domain,
                             std::string identity, std::string config_text)
    : binary_(std::move(binary)),
      channel_dir_(std::move(channel_dir)),
      state_dir_(std::move(state_dir)),
      identity_(std::move(identity)),
      config_text_(std::move(config_text)),
      domain_(domain) {
  uint64_t random = 0;
  if (getrandom(&random, sizeof(random), 0) != sizeof(random)) {
    random = static_cast<uint64_t>(time(nullptr)) ^ getpid();
  }
  partition_ = absl::StrCat("run-", random);
}

BridgeProcess::~BridgeProcess() { Kill(); }

absl::Status BridgeProcess::Start() {
  const std::string config_path = state_dir_ + "/bridge.conf";
  mkdir(state_dir_.c_str(), 0700);
  std::ofstream(config_path) << config_text_;
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return absl::InternalError("pipe");
  const std::vector<std::string> args = {
      binary_, "--config=" + config_path, "--dir=" + channel_dir_,
      "--state_dir=" + state_dir_, "--network=loopback",
      absl::StrCat("--domain=", domain_), "--identity=" + identity_,
      // A partition of this object's own: concurrent runs of a test share
      // domain ids (and, in Bazel's sandbox, pids) but never match.
      "--partition=" + partition_, "--stats_period_s=0"};
  pid_ = fork();
  if (pid_ < 0) return absl::InternalError("fork");
  if (pid_ == 0) {
    dup2(fds[1], 1);
    std::vector<char*> argv;
    for (const std::string& arg : args)
      argv.push_back(const_cast<char*>(arg.c_str()));
    argv.push_back(nullptr);
    execv(binary_.c_str(), argv.data());
    _exit(127);
  }
  close(fds[1]);
  stdout_fd_ = fds[0];
  std::string seen;
  const int64_t deadline_ms = 30'000;
  for (int64_t waited = 0; waited < deadline_ms;) {
    pollfd pfd{stdout_fd_, POLLIN, 0};
    const int ready = poll(&pfd, 1, 1000);
    waited += 1000;
    if (ready <= 0) continue;
    char buffer[512];
    const ssize_t n = read(stdout_fd_, buffer, sizeof(buffer));
    if (n <= 0) break;
    seen.append(buffer, static_cast<size_t>(n));
    if (seen.find(": running") != std::string::npos) return absl::OkStatus();
  }
  Kill();
  return absl::InternalError("bridge did not start; output: " + seen);
}

std::string BridgeProcess::Stop() {
  if (pid_ <= 0) return "";
  kill(pid_, SIGTERM);
  std::string text;
  char buffer[512];
  ssize_t n;
  while ((n = read(stdout_fd_, buffer, sizeof(buffer))) > 0) {
    text.append(buffer, static_cast<size_t>(n));
  }
  int status = 0;
  waitpid(pid_, &status, 0);
  pid_ = -1;
  close(stdout_fd_);
  stdout_fd_ = -1;
  return text;
}

absl::Status BridgeProcess::Pause() {
  if (pid_ <= 0 || kill(pid_, SIGSTOP) != 0) {
    return absl::FailedPreconditionError("no bridge child to stop");
  }
  int status = 0;
  // kill() returns before the child's threads have stopped; the stop report
  // comes once the whole group has.
  if (waitpid(pid_, &status, WUNTRACED) != pid_ || !WIFSTOPPED(status)) {
    return absl::InternalError("bridge child did not stop");
  }
  return absl::OkStatus();
}

void BridgeProcess::Resume() {
  if (pid_ > 0) kill(pid_, SIGCONT);
}

void BridgeProcess::Kill() {
  if (pid_ > 0) {
    kill(pid_, SIGKILL);
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
  }
  if (stdout_fd_ >= 0) {
    close(stdout_fd_);
    stdout_fd_ = -1;
  }
}

}  // namespace lockless::bridge
