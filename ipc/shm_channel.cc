#include "ipc/shm_channel.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "ipc/internal/errno_status.h"
#include "ipc/internal/queue_layout.h"
#include "ipc/internal/scoped_fd.h"

namespace lockless {
namespace {

constexpr char kShmDirectory[] = "/dev/shm/";
constexpr size_t kMaxNameLength = 200;

absl::Status CheckExistingFile(const std::string& path, const struct stat& st,
                               const ChannelOptions& options) {
  if (!S_ISREG(st.st_mode)) {
    return absl::FailedPreconditionError(
        absl::StrCat(path, " is not a regular file"));
  }
  if (st.st_uid != geteuid()) {
    return absl::PermissionDeniedError(absl::StrFormat(
        "%s is owned by uid %d, not by this user (uid %d); refusing to use "
        "another user's channel",
        path, st.st_uid, geteuid()));
  }
  const mode_t extra = (st.st_mode & 0777) & ~options.mode;
  if (extra != 0) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "%s has mode %04o, which grants more than the requested %04o; fix "
        "its mode or remove it",
        path, st.st_mode & 0777, options.mode));
  }
  return absl::OkStatus();
}

constexpr off_t kMagicOffset = offsetof(internal::RegionHeader, magic);

// Writes the region magic into a freshly sized (all-zero) file. False with
// errno set on failure.
bool StampMagic(int fd) {
  const uint64_t magic = internal::kRegionMagic;
  const ssize_t written = pwrite(fd, &magic, sizeof(magic), kMagicOffset);
  if (written == static_cast<ssize_t>(sizeof(magic))) return true;
  if (written >= 0) errno = EIO;
  return false;
}

// Checks an existing file and waits (up to options.creation_timeout) for its
// creator to size it and stamp the magic. Only then may it be mapped and
// attached, which may take its setup lock or initialise it: a foreign file
// of the right size is left untouched, as its first word could name any
// thread, and locking it would block on that thread or make the kernel write
// to the file.
absl::Status WaitForCreator(int fd, const std::string& path,
                            uint64_t expected_size, const QueueConfig& config,
                            const ChannelOptions& options) {
  const absl::Time deadline = absl::Now() + options.creation_timeout;
  while (true) {
    struct stat st;
    if (fstat(fd, &st) != 0) return internal::ErrnoStatus(errno, path);
    if (absl::Status status = CheckExistingFile(path, st, options);
        !status.ok()) {
      return status;
    }
    uint64_t magic = 0;
    if (st.st_size != 0) {
      if (static_cast<uint64_t>(st.st_size) != expected_size) {
        return absl::FailedPreconditionError(absl::StrFormat(
            "%s is %d bytes, but configuration %s needs %u: it was created "
            "with another configuration, or is truncated or foreign",
            path, st.st_size, config.DebugString(), expected_size));
      }
      const ssize_t got = pread(fd, &magic, sizeof(magic), kMagicOffset);
      if (got < 0) return internal::ErrnoStatus(errno, "read " + path);
      if (got != static_cast<ssize_t>(sizeof(magic))) {
        return absl::FailedPreconditionError(
            absl::StrCat(path, " shrank while being opened"));
      }
      if (magic == internal::kRegionMagic) return absl::OkStatus();
      if (magic != 0) {
        return absl::FailedPreconditionError(absl::StrFormat(
            "%s does not hold a lockless queue (bad magic 0x%016x); left "
            "untouched",
            path, magic));
      }
    }
    // The creator has not sized the file yet, or sized it but not stamped it.
    if (absl::Now() > deadline) {
      return absl::DeadlineExceededError(absl::StrCat(
          path,
          st.st_size == 0
              ? " stayed empty: its creator probably died before sizing it; "
                "remove the file"
              : " has no lockless queue magic: a foreign file, or its creator "
                "died right after sizing it; left untouched, remove it"));
    }
    absl::SleepFor(absl::Milliseconds(1));
  }
}

}  // namespace

absl::StatusOr<std::string> ChannelPath(std::string_view name) {
  if (name.empty() || name.size() > kMaxNameLength || name == "." ||
      name == "..") {
    return absl::InvalidArgumentError(absl::StrCat(
        "channel name \"", std::string(name), "\" must be 1 to ", kMaxNameLength,
        " characters and not \".\" or \"..\""));
  }
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                    (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
    if (!ok) {
      return absl::InvalidArgumentError(absl::StrCat(
          "channel name \"", std::string(name),
          "\" may contain only letters, digits, '.', '_' and '-'"));
    }
  }
  return absl::StrCat(kShmDirectory, std::string(name));
}

absl::StatusOr<Channel> Channel::OpenOrCreate(std::string_view name,
                                              const QueueConfig& config,
                                              const ChannelOptions& options) {
  absl::StatusOr<std::string> path = ChannelPath(name);
  if (!path.ok()) return path.status();
  if ((options.mode & ~mode_t{0777}) != 0 || (options.mode & 0002) != 0) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "mode %04o is not allowed: only permission bits, never "
        "world-writable",
        options.mode));
  }
  if ((options.mode & 0600) != 0600) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "mode %04o must let the owner read and write", options.mode));
  }
  absl::StatusOr<uint64_t> size = QueueMemorySize(config);
  if (!size.ok()) return size.status();

  // 1. Create exclusively, or open what exists (never through a symlink).
  int fd = -1;
  bool created = false;
  while (true) {
    fd = open(path->c_str(), O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
              options.mode);
    if (fd >= 0) {
      created = true;
      break;
    }
    if (errno != EEXIST) return internal::ErrnoStatus(errno, "create " + *path);
    fd = open(path->c_str(), O_RDWR | O_NOFOLLOW | O_CLOEXEC);
    if (fd >= 0) break;
    if (errno == ENOENT) continue;  // Removed between our two opens: retry.
    if (errno == ELOOP) {
      return absl::FailedPreconditionError(
          absl::StrCat(*path, " is a symbolic link; refusing to follow it"));
    }
    return internal::ErrnoStatus(errno, "open " + *path);
  }
  internal::ScopedFd closer(fd);

  // 2. Size and stamp it (creator) or check it (everyone else).
  if (created) {
    // Exactly the requested mode: open(2) applied the umask. The magic
    // marks the file as ours before anyone maps it (see WaitForCreator).
    if (fchmod(fd, options.mode) != 0 || ftruncate(fd, *size) != 0 ||
        !StampMagic(fd)) {
      const absl::Status status = internal::ErrnoStatus(errno, "size " + *path);
      unlink(path->c_str());
      return status;
    }
  } else if (absl::Status status =
                 WaitForCreator(fd, *path, *size, config, options);
             !status.ok()) {
    return status;
  }

  // 3. Map (pre-faulted) and attach, which initialises or validates.
  void* memory = mmap(nullptr, *size, PROT_READ | PROT_WRITE,
                      MAP_SHARED | MAP_POPULATE, fd, 0);
  if (memory == MAP_FAILED) return internal::ErrnoStatus(errno, "mmap " + *path);
  absl::StatusOr<LocklessQueue> queue =
      LocklessQueue::Attach(memory, *size, config);
  if (!queue.ok()) {
    munmap(memory, *size);
    return absl::Status(queue.status().code(),
                        absl::StrCat(*path, ": ", queue.status().message()));
  }
  return Channel(*std::move(path), memory, *size, *queue, created);
}

Channel::Channel(Channel&& other) noexcept
    : path_(std::move(other.path_)),
      memory_(std::exchange(other.memory_, nullptr)),
      size_bytes_(other.size_bytes_),
      queue_(other.queue_),
      created_(other.created_) {}

Channel::~Channel() {
  if (memory_ != nullptr) munmap(memory_, size_bytes_);
}

absl::Status RemoveChannel(std::string_view name) {
  absl::StatusOr<std::string> path = ChannelPath(name);
  if (!path.ok()) return path.status();
  if (unlink(path->c_str()) != 0) {
    return internal::ErrnoStatus(errno, "remove " + *path);
  }
  return absl::OkStatus();
}

}  // namespace lockless
