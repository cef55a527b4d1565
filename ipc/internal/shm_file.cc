#include "ipc/internal/shm_file.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "ipc/internal/errno_status.h"

namespace lockless {
namespace internal {
namespace {

bool IsOutOfSpace(int error_number) {
  return error_number == ENOSPC || error_number == EDQUOT ||
         error_number == ENOMEM || error_number == EFBIG;
}

absl::Status OutOfSpace(int fd, uint64_t size_bytes,
                        const std::string& directory, const std::string& path,
                        int error_number) {
  absl::StatusOr<uint64_t> free_bytes = FreeBytes(fd);
  char buffer[128];
  const char* reason = strerror_r(error_number, buffer, sizeof(buffer));
  return absl::ResourceExhaustedError(absl::StrFormat(
      "not enough space in %s for channel file %s: needs %u bytes, %s "
      "bytes free (%s). Enlarge the file system (Docker: --shm-size), "
      "remove stale channels (dump --gc), or use a smaller queue or another "
      "directory (ChannelOptions::directory, $LOCKLESS_SHM_DIR)",
      directory, path, size_bytes,
      free_bytes.ok() ? absl::StrCat(*free_bytes) : std::string("unknown"),
      reason));
}

// Fallback for file systems without fallocate(2), on a file this process
// just created (all zero): size it, then write zeros over every page so each
// is allocated now. pwrite reports ENOSPC as an error, never a signal.
int FillWithZeros(int fd, uint64_t size_bytes) {
  if (ftruncate(fd, static_cast<off_t>(size_bytes)) != 0) return errno;
  const std::vector<char> zeros(64 * 1024, 0);
  uint64_t offset = 0;
  while (offset < size_bytes) {
    const size_t chunk = static_cast<size_t>(
        std::min<uint64_t>(zeros.size(), size_bytes - offset));
    const ssize_t written =
        pwrite(fd, zeros.data(), chunk, static_cast<off_t>(offset));
    if (written < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    if (written == 0) return EIO;
    offset += static_cast<uint64_t>(written);
  }
  return 0;
}

}  // namespace

absl::StatusOr<uint64_t> FreeBytes(int fd) {
  struct statvfs vfs;
  if (fstatvfs(fd, &vfs) != 0) return ErrnoStatus(errno, "statvfs");
  return static_cast<uint64_t>(vfs.f_bavail) * vfs.f_frsize;
}

absl::Status ReserveFileSpace(int fd, uint64_t size_bytes, bool fresh,
                              const std::string& directory,
                              const std::string& path) {
  int error_number = 0;
  do {
    error_number = fallocate(fd, 0, 0, static_cast<off_t>(size_bytes)) == 0
                       ? 0
                       : errno;
  } while (error_number == EINTR);
  if (error_number == EOPNOTSUPP) {
    if (fresh) {
      error_number = FillWithZeros(fd, size_bytes);
    } else {
      struct stat st;
      if (fstat(fd, &st) != 0) return ErrnoStatus(errno, "fstat " + path);
      if (AllocatedBytes(st) < size_bytes) {
        return absl::FailedPreconditionError(absl::StrFormat(
            "%s has holes (%u of %u bytes allocated) and its file system "
            "cannot allocate them in place (no fallocate): remove the file",
            path, AllocatedBytes(st), size_bytes));
      }
      error_number = 0;
    }
  }
  if (error_number == 0) return absl::OkStatus();
  if (IsOutOfSpace(error_number)) {
    return OutOfSpace(fd, size_bytes, directory, path, error_number);
  }
  return ErrnoStatus(error_number, "reserve space for " + path);
}

absl::StatusOr<bool> LockSharedAndCheckLinked(int fd,
                                              const std::string& path) {
  while (flock(fd, LOCK_SH) != 0) {
    if (errno != EINTR) return ErrnoStatus(errno, "flock " + path);
  }
  struct stat st;
  if (fstat(fd, &st) != 0) return ErrnoStatus(errno, "fstat " + path);
  return st.st_nlink > 0;
}

absl::StatusOr<bool> TryLockExclusive(int fd, const std::string& path) {
  while (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    if (errno == EWOULDBLOCK) return false;
    if (errno != EINTR) return ErrnoStatus(errno, "flock " + path);
  }
  return true;
}

void Unlock(int fd) { (void)flock(fd, LOCK_UN); }

absl::Status UnlinkIfSameFile(int fd, const std::string& path) {
  struct stat open_file, named;
  if (fstat(fd, &open_file) != 0) return ErrnoStatus(errno, "fstat " + path);
  if (lstat(path.c_str(), &named) != 0) return ErrnoStatus(errno, path);
  if (open_file.st_dev != named.st_dev || open_file.st_ino != named.st_ino) {
    return absl::NotFoundError(
        absl::StrCat(path, " was replaced by another file; left alone"));
  }
  if (unlink(path.c_str()) != 0) return ErrnoStatus(errno, "remove " + path);
  return absl::OkStatus();
}

absl::Status CheckChannelDirectory(const std::string& directory) {
  if (directory.empty() || directory[0] != '/') {
    return absl::InvalidArgumentError(absl::StrCat(
        "channel directory \"", directory, "\" must be an absolute path"));
  }
  struct stat st;
  if (stat(directory.c_str(), &st) != 0) {
    return ErrnoStatus(errno, "channel directory " + directory);
  }
  if (!S_ISDIR(st.st_mode)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "channel directory ", directory, " is not a directory"));
  }
  if ((st.st_mode & S_IWOTH) != 0 && (st.st_mode & S_ISVTX) == 0) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "channel directory %s is writable by everyone (mode %04o) without "
        "the sticky bit: any user could replace a channel file; chmod +t it "
        "or use another directory",
        directory, st.st_mode & 07777));
  }
  return absl::OkStatus();
}

}  // namespace internal
}  // namespace lockless
