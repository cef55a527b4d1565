#include "tools/demo/channel_files.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <random>

#include "absl/status/statusor.h"
#include "absl/strings/str_format.h"
#include "ipc/shm_channel.h"

namespace lockless {
namespace demo {

std::string NewRunChannelName() {
  return absl::StrFormat("lockless_demo_%d_%06x", getpid(),
                         std::random_device()() & 0xffffff);
}

int LockChannelFile(const std::string& name, const ChannelOptions& options) {
  const absl::StatusOr<std::string> path =
      ChannelPath(name, options.directory);
  if (!path.ok()) return -1;
  const int fd = open(path->c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd >= 0) flock(fd, LOCK_SH);
  return fd;  // kept open until exit
}

int RemoveDeadRunsChannels(const ChannelOptions& options) {
  const std::string directory = options.directory.empty()
                                    ? DefaultChannelDirectory()
                                    : options.directory;
  DIR* dir = opendir(directory.c_str());
  if (dir == nullptr) return 0;
  int removed = 0;
  const std::string prefix = "lockless_demo_";
  while (const dirent* entry = readdir(dir)) {
    const std::string name = entry->d_name;
    if (name.compare(0, prefix.size(), prefix) != 0) continue;
    const absl::StatusOr<std::string> path = ChannelPath(name, directory);
    if (!path.ok()) continue;
    struct stat st;
    if (lstat(path->c_str(), &st) != 0 || !S_ISREG(st.st_mode) ||
        st.st_uid != getuid() || time(nullptr) - st.st_mtime < 10) {
      continue;
    }
    const int fd = open(path->c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) continue;
    if (flock(fd, LOCK_EX | LOCK_NB) == 0 && RemoveChannel(name, options).ok()) {
      ++removed;
    }
    close(fd);
  }
  closedir(dir);
  return removed;
}

}  // namespace demo
}  // namespace lockless
