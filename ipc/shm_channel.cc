#include "ipc/shm_channel.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "ipc/internal/errno_status.h"
#include "ipc/internal/queue_layout.h"
#include "ipc/internal/scoped_fd.h"
#include "ipc/internal/shm_file.h"

// Opening vs. removal (why a channel in use is never removed).
//
// Every opener, read-write or read-only, does:
//   O1. open(path)                       (or create it, O_EXCL)
//   O2. flock(fd, LOCK_SH)               (blocks while a remover holds EX)
//   O3. fstat(fd).st_nlink == 0 ? close, go to O1 : keep the lock until
//       the channel is closed (the kernel drops it if the process dies).
// A remover (RemoveStaleChannel, dump --gc) does:
//   R1. open(path)
//   R2. flock(fd, LOCK_EX | LOCK_NB)      fails -> in use, stop
//   R3. path still names this inode       else stop (someone replaced it)
//   R4. unlink(path), then close (drops EX)
// States an opener can be in when R2 succeeds:
//   1. past O2: it holds SH, so R2 cannot succeed. Not possible.
//   2. before O2 (between O1 and O2, or earlier): its O2 waits until R4 is
//      done, then O3 sees the file unlinked and it opens the name again.
// So a file is unlinked only while nobody holds SH, and nobody uses a file
// that was unlinked by a remover. (RemoveChannel is the unconditional
// variant, for tools and tests.)
//
// Writes to shared memory here: none besides the magic (pwrite before any
// mapping) and what LocklessQueue::Attach does (see lockless_queue.cc). A
// creator dying at any step leaves: an empty file or a file with reserved
// space and no magic (reported DeadlineExceeded to openers, removed by gc:
// nobody holds its lock), or a stamped file that the next opener
// initialises. Space is reserved before the magic, so no stamped file made
// by this code can have holes.

namespace lockless {
namespace {

constexpr char kDefaultDirectory[] = "/dev/shm";
constexpr char kDirectoryEnvironmentVariable[] = "LOCKLESS_SHM_DIR";
constexpr size_t kMaxNameLength = 200;

enum class Access { kReadWrite, kReadOnly };

std::string DirectoryOf(const ChannelOptions& options) {
  return options.directory.empty() ? DefaultChannelDirectory()
                                   : options.directory;
}

absl::Status CheckExistingFile(const std::string& path, const struct stat& st,
                               const ChannelOptions& options, Access access) {
  if (!S_ISREG(st.st_mode)) {
    return absl::FailedPreconditionError(
        absl::StrCat(path, " is not a regular file"));
  }
  // A read-only reader may read another user's channel: the kernel already
  // checked its read permission, and nothing it reads is trusted.
  if (access == Access::kReadOnly) return absl::OkStatus();
  if (st.st_uid != geteuid()) {
    return absl::PermissionDeniedError(absl::StrFormat(
        "%s is owned by uid %d, not by this user (uid %d); refusing to use "
        "another user's channel read-write (ReadOnlyChannel can read it)",
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

// Writes the region magic into a freshly reserved (all-zero) file. False
// with errno set on failure.
bool StampMagic(int fd) {
  const uint64_t magic = internal::kRegionMagic;
  const ssize_t written = pwrite(fd, &magic, sizeof(magic), kMagicOffset);
  if (written == static_cast<ssize_t>(sizeof(magic))) return true;
  if (written >= 0) errno = EIO;
  return false;
}

// What WaitForCreator found.
enum class Wait { kStamped, kUnlinked };

// Checks an existing file and waits (up to options.creation_timeout) for its
// creator to reserve it and stamp the magic. Only then may it be mapped and
// attached, which may take its setup lock or initialise it: a foreign file
// of the right size is left untouched, as its first word could name any
// thread, and locking it would block on that thread or make the kernel write
// to the file. kUnlinked: the file was removed meanwhile (its creator failed
// and cleaned up, or a remover took it); open the name again.
absl::StatusOr<Wait> WaitForCreator(int fd, const std::string& path,
                                    uint64_t expected_size,
                                    const QueueConfig& config,
                                    const ChannelOptions& options,
                                    Access access) {
  const absl::Time deadline = absl::Now() + options.creation_timeout;
  while (true) {
    struct stat st;
    if (fstat(fd, &st) != 0) return internal::ErrnoStatus(errno, path);
    if (st.st_nlink == 0) return Wait::kUnlinked;
    if (absl::Status status = CheckExistingFile(path, st, options, access);
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
      if (magic == internal::kRegionMagic) return Wait::kStamped;
      if (magic != 0) {
        return absl::FailedPreconditionError(absl::StrFormat(
            "%s does not hold a lockless queue (bad magic 0x%016x); left "
            "untouched",
            path, magic));
      }
    }
    // The creator has not reserved the file yet, or not stamped it.
    if (absl::Now() > deadline) {
      return absl::DeadlineExceededError(absl::StrCat(
          path,
          st.st_size == 0
              ? " stayed empty: its creator probably died before reserving "
                "it; remove the file (dump --gc)"
              : " has no lockless queue magic: a foreign file, or its creator "
                "died right after reserving it; left untouched, remove it"));
    }
    absl::SleepFor(absl::Milliseconds(1));
  }
}

absl::Status WithPath(const std::string& path, const absl::Status& status) {
  return absl::Status(status.code(),
                      absl::StrCat(path, ": ", status.message()));
}

// Steps common to both access modes: validate the name and directory, open
// (creating for read-write), lock, and check or reserve and stamp the file.
// On success the returned fd is open, holds the shared lock, and names a
// stamped file of exactly `size` bytes with every byte allocated.
struct OpenedFile {
  std::string path;
  int fd;
  bool created;
};

absl::StatusOr<OpenedFile> OpenLockedFile(std::string_view name,
                                          const QueueConfig& config,
                                          uint64_t size,
                                          const ChannelOptions& options,
                                          Access access) {
  const std::string directory = DirectoryOf(options);
  if (absl::Status status = internal::CheckChannelDirectory(directory);
      !status.ok()) {
    return status;
  }
  absl::StatusOr<std::string> path = ChannelPath(name, directory);
  if (!path.ok()) return path.status();
  while (true) {
    // O1. Create exclusively, or open what exists (never through a
    // symlink; O_NONBLOCK so a FIFO planted there cannot block us).
    int fd = -1;
    bool created = false;
    if (access == Access::kReadWrite) {
      fd = open(path->c_str(),
                O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                options.mode);
      if (fd >= 0) {
        created = true;
      } else if (errno != EEXIST) {
        return internal::ErrnoStatus(errno, "create " + *path);
      }
    }
    if (fd < 0) {
      fd = open(path->c_str(),
                (access == Access::kReadWrite ? O_RDWR : O_RDONLY) |
                    O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
      if (fd < 0) {
        if (errno == ENOENT && access == Access::kReadWrite) continue;
        if (errno == ELOOP) {
          return absl::FailedPreconditionError(absl::StrCat(
              *path, " is a symbolic link; refusing to follow it"));
        }
        if (errno == ENOENT) {
          return absl::NotFoundError(absl::StrCat(
              "no channel ", *path, " (a read-only reader never creates one)"));
        }
        return internal::ErrnoStatus(errno, "open " + *path);
      }
    }
    internal::ScopedFd closer(fd);
    // O2, O3: the opener's lock, then make sure no remover unlinked the file
    // before we got it.
    absl::StatusOr<bool> linked = internal::LockSharedAndCheckLinked(fd, *path);
    if (!linked.ok()) return linked.status();
    if (!*linked) continue;

    if (created) {
      // Exactly the requested mode: open(2) applied the umask. Then reserve
      // every byte, and only then stamp the magic that lets others map it:
      // a stamped file never has holes, so no mapping of it can fault for
      // lack of space. On failure, remove our own half-made file (we hold
      // the lock, and nobody maps a file without magic, so nobody uses it;
      // UnlinkIfSameFile leaves a file someone put in its place).
      absl::Status status;
      if (fchmod(fd, options.mode) != 0) {
        status = internal::ErrnoStatus(errno, "chmod " + *path);
      } else {
        status = internal::ReserveFileSpace(fd, size, /*fresh=*/true,
                                            directory, *path);
      }
      if (status.ok() && !StampMagic(fd)) {
        status = internal::ErrnoStatus(errno, "stamp " + *path);
      }
      if (!status.ok()) {
        (void)internal::UnlinkIfSameFile(fd, *path);
        return status;
      }
    } else {
      absl::StatusOr<Wait> waited =
          WaitForCreator(fd, *path, size, config, options, access);
      if (!waited.ok()) return waited.status();
      if (*waited == Wait::kUnlinked) continue;
      struct stat st;
      if (fstat(fd, &st) != 0) return internal::ErrnoStatus(errno, *path);
      if (internal::AllocatedBytes(st) < size) {
        // Holes: a file made before space was reserved (or sized by hand).
        // Touching a hole through a mapping on a full file system raises
        // SIGBUS, so complete it first, or refuse.
        if (access == Access::kReadOnly) {
          return absl::FailedPreconditionError(absl::StrFormat(
              "%s has holes (%u of %u bytes allocated): reading it could "
              "fault on a full file system; open it read-write once to "
              "complete it, or remove it",
              *path, internal::AllocatedBytes(st), size));
        }
        if (absl::Status status = internal::ReserveFileSpace(
                fd, size, /*fresh=*/false, directory, *path);
            !status.ok()) {
          return status;
        }
      }
    }
    OpenedFile opened{*std::move(path), fd, created};
    closer.release();
    return opened;
  }
}

}  // namespace

std::string DefaultChannelDirectory() {
  const char* from_environment = std::getenv(kDirectoryEnvironmentVariable);
  if (from_environment != nullptr && from_environment[0] != '\0') {
    return from_environment;
  }
  return kDefaultDirectory;
}

absl::Status ValidateChannelName(std::string_view name) {
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
  return absl::OkStatus();
}

absl::StatusOr<std::string> ChannelPath(std::string_view name,
                                        std::string_view directory) {
  if (absl::Status status = ValidateChannelName(name); !status.ok()) {
    return status;
  }
  std::string dir =
      directory.empty() ? DefaultChannelDirectory() : std::string(directory);
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  return absl::StrCat(dir, dir == "/" ? "" : "/", std::string(name));
}

absl::StatusOr<Channel> Channel::OpenOrCreate(std::string_view name,
                                              const QueueConfig& config,
                                              const ChannelOptions& options) {
  if (absl::Status status = ValidateChannelName(name); !status.ok()) {
    return status;
  }
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

  absl::StatusOr<OpenedFile> opened =
      OpenLockedFile(name, config, *size, options, Access::kReadWrite);
  if (!opened.ok()) return opened.status();
  internal::ScopedFd closer(opened->fd);

  // Map (pre-faulted: every page is allocated, so this cannot fail for lack
  // of space) and attach, which initialises or validates.
  void* memory = mmap(nullptr, *size, PROT_READ | PROT_WRITE,
                      MAP_SHARED | MAP_POPULATE, opened->fd, 0);
  if (memory == MAP_FAILED) {
    return internal::ErrnoStatus(errno, "mmap " + opened->path);
  }
  internal::ChannelFile file(opened->path, closer.release(), memory, *size);
  absl::StatusOr<LocklessQueue> queue =
      LocklessQueue::Attach(memory, *size, config, options.setup_deadline);
  if (!queue.ok()) return WithPath(opened->path, queue.status());
  return Channel(std::move(file), *queue, opened->created);
}

absl::StatusOr<ReadOnlyChannel> ReadOnlyChannel::Open(
    std::string_view name, const QueueConfig& config,
    const ChannelOptions& options) {
  if (absl::Status status = ValidateChannelName(name); !status.ok()) {
    return status;
  }
  absl::StatusOr<uint64_t> size = QueueMemorySize(config);
  if (!size.ok()) return size.status();
  const absl::Time deadline = absl::Now() + options.creation_timeout;
  absl::StatusOr<OpenedFile> opened =
      OpenLockedFile(name, config, *size, options, Access::kReadOnly);
  if (!opened.ok()) return opened.status();
  internal::ScopedFd closer(opened->fd);

  // PROT_READ from an O_RDONLY descriptor: the kernel refuses any write.
  void* memory =
      mmap(nullptr, *size, PROT_READ, MAP_SHARED | MAP_POPULATE, opened->fd, 0);
  if (memory == MAP_FAILED) {
    return internal::ErrnoStatus(errno, "mmap " + opened->path);
  }
  internal::ChannelFile file(opened->path, closer.release(), memory, *size);
  while (true) {
    absl::StatusOr<LocklessQueue> queue =
        LocklessQueue::AttachReadOnly(memory, *size, config);
    if (queue.ok()) return ReadOnlyChannel(std::move(file), *queue);
    // Unavailable: stamped, but its creator has not initialised it yet.
    if (!absl::IsUnavailable(queue.status()) || absl::Now() > deadline) {
      return WithPath(opened->path, queue.status());
    }
    absl::SleepFor(absl::Milliseconds(1));
  }
}

namespace internal {

ChannelFile::ChannelFile(ChannelFile&& other) noexcept
    : path_(std::move(other.path_)),
      fd_(std::exchange(other.fd_, -1)),
      memory_(std::exchange(other.memory_, nullptr)),
      size_bytes_(other.size_bytes_) {}

ChannelFile::~ChannelFile() {
  if (memory_ != nullptr) munmap(memory_, size_bytes_);
  if (fd_ >= 0) close(fd_);  // Drops the shared flock.
}

}  // namespace internal

absl::Status RemoveChannel(std::string_view name,
                           const ChannelOptions& options) {
  absl::StatusOr<std::string> path = ChannelPath(name, DirectoryOf(options));
  if (!path.ok()) return path.status();
  if (unlink(path->c_str()) != 0) {
    return internal::ErrnoStatus(errno, "remove " + *path);
  }
  return absl::OkStatus();
}

absl::Status RemoveStaleChannel(std::string_view name,
                                const ChannelOptions& options) {
  absl::StatusOr<std::string> path = ChannelPath(name, DirectoryOf(options));
  if (!path.ok()) return path.status();
  // R1.
  const int fd =
      open(path->c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return internal::ErrnoStatus(errno, "open " + *path);
  internal::ScopedFd closer(fd);
  // R2.
  absl::StatusOr<bool> exclusive = internal::TryLockExclusive(fd, *path);
  if (!exclusive.ok()) return exclusive.status();
  if (!*exclusive) {
    return absl::FailedPreconditionError(
        absl::StrCat(*path, " is in use (a process has it open); kept"));
  }
  // R3, R4; closing the fd drops the lock.
  return internal::UnlinkIfSameFile(fd, *path);
}

}  // namespace lockless
