#include "tools/bridge/state_file.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace lockless::bridge {
namespace {
absl::Status ErrnoError(const std::string& what, const std::string& path) {
  return absl::ErrnoToStatus(errno, absl::StrCat(what, " ", path));
}
}  // namespace

absl::StatusOr<StateFile> StateFile::Open(const std::string& path,
                                          size_t num_words) {
  const int fd =
      open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return ErrnoError("open", path);
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int error = errno;
    close(fd);
    if (error == EWOULDBLOCK) {
      return absl::FailedPreconditionError(absl::StrCat(
          path,
          " is held by another process (a second bridge for the same "
          "channel and state directory?)"));
    }
    errno = error;
    return ErrnoError("flock", path);
  }
  const size_t size = num_words * sizeof(uint64_t);
  struct stat st;
  if (fstat(fd, &st) != 0) {
    const absl::Status status = ErrnoError("fstat", path);
    close(fd);
    return status;
  }
  if (static_cast<size_t>(st.st_size) != size) {
    // Unknown contents: start from zero (ftruncate to 0 then to size).
    if (ftruncate(fd, 0) != 0 || ftruncate(fd, static_cast<off_t>(size)) != 0) {
      const absl::Status status = ErrnoError("ftruncate", path);
      close(fd);
      return status;
    }
  }
  void* memory = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (memory == MAP_FAILED) {
    const absl::Status status = ErrnoError("mmap", path);
    close(fd);
    return status;
  }
  return StateFile(fd, static_cast<uint64_t*>(memory), num_words);
}

StateFile::StateFile(StateFile&& other) noexcept
    : fd_(other.fd_), words_(other.words_), num_words_(other.num_words_) {
  other.fd_ = -1;
  other.words_ = nullptr;
  other.num_words_ = 0;
}

StateFile::~StateFile() {
  if (words_ != nullptr) munmap(words_, num_words_ * sizeof(uint64_t));
  if (fd_ >= 0) close(fd_);
}

uint64_t StateFile::Load(size_t word) const {
  // Relaxed: the only writer of a word is this thread, or a process that
  // has exited (its stores reached the page cache before we mapped it).
  return __atomic_load_n(&words_[word], __ATOMIC_RELAXED);
}

void StateFile::Store(size_t word, uint64_t value) {
  // Relaxed: single-copy atomicity is all that is needed (no tearing if the
  // process dies here); no other thread reads the word while we live.
  __atomic_store_n(&words_[word], value, __ATOMIC_RELAXED);
}

}  // namespace lockless::bridge
