// Thin wrappers around the file system calls a channel file needs: space
// reservation, free-space query, the opener's lock, directory checks.
// Internal: only ipc/ (and tools/ for listing) include this.
//
// Nothing here touches a mapping, so nothing here can raise SIGBUS: every
// failure is an errno turned into an absl::Status.
//
// Thread-safety: every function may be called concurrently from any thread
// or process. None is RT-safe (all make system calls; ReserveFileSpace may
// take milliseconds per hundred MB on tmpfs).
#ifndef LOCKLESS_IPC_INTERNAL_SHM_FILE_H_
#define LOCKLESS_IPC_INTERNAL_SHM_FILE_H_

#include <sys/stat.h>

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace lockless {
namespace internal {

// Allocates every byte of [0, size_bytes) of the file behind `fd` (opened for
// writing), extending it to size_bytes if shorter. fallocate(2) (mode 0):
// on tmpfs and hugetlbfs the pages are taken from the file system now, so a
// later store through a mapping can never fault for lack of space (SIGBUS).
// Allocating an already allocated range changes nothing, so this also
// completes a file with holes without touching its data. Where fallocate is
// not supported, the size is set with ftruncate and every page is written
// with pwrite at the size it already has (zeros into holes only is not
// possible to tell portably, so this fallback is used only on a file this
// process just created, `fresh`); fails FailedPrecondition otherwise.
// Errors: ResourceExhausted naming `directory`, the bytes needed and the
// bytes free (ENOSPC, EDQUOT, ENOMEM), or the errno as a status.
absl::Status ReserveFileSpace(int fd, uint64_t size_bytes, bool fresh,
                              const std::string& directory,
                              const std::string& path);

// Bytes an unprivileged user may still allocate in the file system holding
// `fd` (statvfs f_bavail * f_frsize), or the errno as a status.
absl::StatusOr<uint64_t> FreeBytes(int fd);

// Bytes of the file actually backed by storage (st_blocks * 512). Less than
// st_size means the file has holes: on tmpfs even reading a hole through a
// mapping allocates a page, which raises SIGBUS when the file system is full.
inline uint64_t AllocatedBytes(const struct stat& st) {
  return static_cast<uint64_t>(st.st_blocks) * 512;
}

// The opener's lock. Every process that has a channel open holds a shared
// flock(2) on it for as long as it does (the kernel drops it however the
// process ends). A remover takes it exclusively (never blocking), so it can
// tell a file nobody has open.
//
// Takes the shared lock on `fd` (blocks only while a remover holds it
// exclusively, which it does for a few system calls), then reports whether
// the file is still linked: false means a remover unlinked it before we got
// the lock, and the caller must close `fd` and open the path again.
absl::StatusOr<bool> LockSharedAndCheckLinked(int fd, const std::string& path);

// Tries to take the exclusive lock without blocking. True: taken (nobody
// holds the shared lock: nobody has the channel open). False: in use.
absl::StatusOr<bool> TryLockExclusive(int fd, const std::string& path);

// Releases whatever flock `fd` holds.
void Unlock(int fd);

// Unlinks `path` only if it still names the file open as `fd` (same device
// and inode), so a file another process put there meanwhile is left alone.
// NotFound if it is gone or replaced.
absl::Status UnlinkIfSameFile(int fd, const std::string& path);

// Checks a channel directory: exists, is a directory (symlinks followed),
// and is not writable by everyone unless the sticky bit is set (otherwise
// any user could replace a channel file with their own). FailedPrecondition
// or NotFound with a message naming `directory`.
absl::Status CheckChannelDirectory(const std::string& directory);

}  // namespace internal
}  // namespace lockless

#endif  // LOCKLESS_IPC_INTERNAL_SHM_FILE_H_
