// Runs the demo binary (3 s) as a user would and checks its verdict: exit
// code 0, the summary and the recovery line in the output, and the channel
// file removed afterwards from the channel directory (DefaultChannelDirectory:
// $LOCKLESS_SHM_DIR, else /dev/shm; the demo inherits the test's environment).
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "gtest/gtest.h"
#include "ipc/shm_channel.h"

namespace {

std::string DemoPath() {
  const char* srcdir = std::getenv("TEST_SRCDIR");
  if (srcdir == nullptr) return "tools/demo/demo";
  return std::string(srcdir) + "/lockless/tools/demo/demo";
}

TEST(DemoTest, RunsKillsRecoversAndPasses) {
  const std::string path = DemoPath();
  ASSERT_EQ(access(path.c_str(), X_OK), 0) << "no demo binary at " << path;
  const std::string command = path + " --duration_s=3 2>&1";
  FILE* pipe = popen(command.c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  std::string output;
  char buffer[4096];
  size_t n;
  while ((n = fread(buffer, 1, sizeof(buffer), pipe)) > 0) {
    output.append(buffer, n);
  }
  const int status = pclose(pipe);
  ASSERT_TRUE(WIFEXITED(status)) << output;
  EXPECT_EQ(WEXITSTATUS(status), 0) << output;

  EXPECT_NE(output.find("\nsummary\n"), std::string::npos) << output;
  EXPECT_NE(output.find("consumer checks: PASS"), std::string::npos) << output;
  EXPECT_NE(output.find("replacement producer reclaimed a sender slot after "
                        "recovery"),
            std::string::npos)
      << output;
  EXPECT_NE(output.find("recoveries 1"), std::string::npos) << output;
  EXPECT_NE(output.find("RESULT: PASS"), std::string::npos) << output;

  // The channel named in the banner is gone.
  const std::string marker = "-> channel ";
  const size_t at = output.find(marker);
  ASSERT_NE(at, std::string::npos) << output;
  const size_t start = at + marker.size();
  const std::string name =
      output.substr(start, output.find(' ', start) - start);
  const std::string file = lockless::DefaultChannelDirectory() + "/" + name;
  EXPECT_NE(access(file.c_str(), F_OK), 0)
      << "channel file left behind: " << name;
}

}  // namespace
