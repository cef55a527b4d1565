// Named channels: a LocklessQueue in a file of a channel directory (default
// /dev/shm), shared by every process that opens the same name with the same
// configuration.
//
// Two ways in:
//   - Channel::OpenOrCreate: read-write. Sends, reads, registers watchers,
//     and creates the file if it does not exist.
//   - ReadOnlyChannel::Open: read-only. The file is opened O_RDONLY and
//     mapped PROT_READ, and the type offers only Read, LatestQueueIndex and
//     a blocking Wait that writes nothing:
//     there is no way to send or register through it, and a stray write
//     faults instead of scribbling on the channel. Works for another user
//     with read permission (create the channel with mode 0640 and a shared
//     group).
//
// OpenOrCreate handles every way two processes can meet at a name:
//   - first creator: exclusive create (O_EXCL), exact mode (fchmod, not
//     subject to umask), space reserved for every byte (fallocate) BEFORE
//     the magic is stamped, then map and initialise. A file system without
//     room gives ResourceExhausted (naming the directory, the bytes needed
//     and the bytes free) and the creator removes its half-made file: no
//     process ever maps a file that could fault for lack of space (SIGBUS);
//   - concurrent openers: wait (bounded) for the creator to reserve space
//     and stamp the magic, then attach, which waits on the region's setup
//     lock until initialised (a creator that died after stamping is finished
//     by the next opener; one that died before stamping leaves a file that
//     is reported, DeadlineExceeded, and is removed by `dump --gc`). An
//     opener whose creator failed and removed the file starts again (and may
//     become the creator itself);
//   - an existing file is checked before its contents are trusted: regular
//     file, not a symlink (O_NOFOLLOW), owned by this user, no permission bit
//     beyond the requested mode, exact size, our magic (before the file is
//     mapped or its lock touched: a foreign file's first word could name any
//     thread), then layout version and every configuration field. Any
//     mismatch is a clear error and the file is left untouched. A file with
//     holes (made before space was reserved, or sized by hand) is completed
//     with fallocate before it is mapped, or refused (ResourceExhausted),
//     never faulted on.
// The mapping is pre-faulted (MAP_POPULATE) so the first Send does not take a
// page fault.
//
// Open channels and removal: every Channel and ReadOnlyChannel holds a
// shared flock(2) on its file for its lifetime (released by the kernel
// however the process ends). RemoveStaleChannel takes it exclusively without
// blocking and removes the file only then; openers that find the file
// unlinked after getting their lock open the name again. So a channel in use
// is never removed, even by a removal racing with its opening
// (shm_channel.cc, "Opening vs. removal").
//
// Directory: ChannelOptions::directory, or DefaultChannelDirectory(): the
// environment variable LOCKLESS_SHM_DIR if set (one setting for a whole
// robot or test run), else /dev/shm. It must exist, be a directory and not
// be writable by everyone unless sticky (as /dev/shm and /tmp are). Any
// file system works; for tmpfs size it yourself (mount -t tmpfs -o
// size=256m), for hugetlbfs the channel's size is rounded by the kernel.
//
// Thread-safety: every function here may be called concurrently from any
// thread or process. None is RT-safe (file system calls, may wait up to
// creation_timeout). A Channel or ReadOnlyChannel object is immutable after
// opening; its queue's own contract (lockless_queue.h) applies to its use.
#ifndef LOCKLESS_IPC_SHM_CHANNEL_H_
#define LOCKLESS_IPC_SHM_CHANNEL_H_

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "index/queue_index.h"
#include "ipc/lockless_queue.h"
#include "ipc/queue_config.h"

namespace lockless {

// The directory channels live in when ChannelOptions::directory is empty:
// $LOCKLESS_SHM_DIR if set and not empty, else "/dev/shm". Reads the
// environment on every call (do not setenv concurrently).
std::string DefaultChannelDirectory();

struct ChannelOptions {
  // Permission bits for a newly created file (exactly these, umask is not
  // applied). World-writable modes are rejected. An existing file may not
  // grant more than this. 0640 (with a shared group) lets another user open
  // the channel read-only.
  mode_t mode = 0600;
  // How long to wait for a concurrent creator to reserve and stamp the file
  // (and, for a read-only reader, to initialise it).
  absl::Duration creation_timeout = absl::Seconds(5);
  // Absolute path of the channel directory; empty = DefaultChannelDirectory().
  std::string directory;
  // When OpenOrCreate stops waiting for the region's setup lock (taken only
  // while the region is not yet initialised): DeadlineExceeded then names
  // the holder (pid, tid, alive). Unset: now + 10 s (LocklessQueue::Attach).
  // A holder that died without the kernel marking it is taken over.
  std::optional<std::chrono::steady_clock::time_point> setup_deadline;
};

namespace internal {
// An open, locked and mapped channel file. Move-only; unmaps and closes (which
// drops the shared flock) when destroyed.
class ChannelFile {
 public:
  ChannelFile() = default;
  ChannelFile(std::string path, int fd, void* memory, size_t size_bytes)
      : path_(std::move(path)), fd_(fd), memory_(memory),
        size_bytes_(size_bytes) {}
  ChannelFile(ChannelFile&& other) noexcept;
  ChannelFile& operator=(ChannelFile&& other) = delete;
  ChannelFile(const ChannelFile&) = delete;
  ChannelFile& operator=(const ChannelFile&) = delete;
  ~ChannelFile();

  const std::string& path() const { return path_; }
  void* memory() const { return memory_; }
  size_t size_bytes() const { return size_bytes_; }

 private:
  std::string path_;
  int fd_ = -1;
  void* memory_ = nullptr;
  size_t size_bytes_ = 0;
};
}  // namespace internal

class Channel {
 public:
  // Opens the channel `name` (a file <directory>/<name>; letters, digits,
  // '.', '_' and '-' only), creating it if it does not exist. Errors:
  // InvalidArgument (bad name, mode, directory path or config),
  // FailedPrecondition (bad directory; existing file has another
  // size/configuration/layout, is foreign, a symlink or not a regular file,
  // or has a wider mode), NotFound (no such directory), PermissionDenied
  // (owned by another user, or open(2) refused), ResourceExhausted (the file
  // system has no room for the channel: nothing is left behind when this
  // call created the file), DeadlineExceeded (a concurrent creator never
  // stamped the file, or a foreign file of exactly the channel's size starts
  // with a zero magic), or the errno of a failed system call.
  static absl::StatusOr<Channel> OpenOrCreate(
      std::string_view name, const QueueConfig& config,
      const ChannelOptions& options = ChannelOptions());

  Channel(Channel&& other) noexcept = default;
  Channel& operator=(Channel&& other) = delete;
  Channel(const Channel&) = delete;
  Channel& operator=(const Channel&) = delete;
  // Unmaps and releases the file's lock. Senders and watchers made from
  // queue() must be gone first.
  ~Channel() = default;

  const LocklessQueue& queue() const { return queue_; }
  const std::string& path() const { return file_.path(); }
  // True if this call created the file.
  bool created() const { return created_; }

 private:
  Channel(internal::ChannelFile file, LocklessQueue queue, bool created)
      : file_(std::move(file)), queue_(queue), created_(created) {}

  internal::ChannelFile file_;
  LocklessQueue queue_;
  bool created_ = false;
};

// A channel opened for reading only. Sending, registering a watcher and
// anything else that writes is not part of this type, and the mapping is
// PROT_READ from an O_RDONLY descriptor, so even a bug that writes through
// memory() faults (SIGSEGV) instead of corrupting the channel.
class ReadOnlyChannel {
 public:
  // Opens an existing channel read-only. Never creates, initialises, locks
  // (beyond the shared flock) or writes anything. Waits up to
  // options.creation_timeout for a concurrent creator to finish. The file
  // may belong to another user: read permission is enough (options.mode is
  // not used). Errors: InvalidArgument (bad name or directory path),
  // NotFound (no such channel or directory), PermissionDenied (no read
  // permission), FailedPrecondition (bad directory; not a channel, wrong
  // size, configuration or layout, or a file with holes, which reading could
  // fault on: open it read-write once to complete it), DeadlineExceeded (its
  // creator never finished), or the errno of a failed system call.
  static absl::StatusOr<ReadOnlyChannel> Open(
      std::string_view name, const QueueConfig& config,
      const ChannelOptions& options = ChannelOptions());

  ReadOnlyChannel(ReadOnlyChannel&& other) noexcept = default;
  ReadOnlyChannel& operator=(ReadOnlyChannel&& other) = delete;
  ReadOnlyChannel(const ReadOnlyChannel&) = delete;
  ReadOnlyChannel& operator=(const ReadOnlyChannel&) = delete;
  ~ReadOnlyChannel() = default;

  // LocklessQueue::Read: wait-free, RT-safe, thread-safe.
  [[nodiscard]] ReadResult Read(QueueIndex queue_index, MessageInfo* info,
                                void* data, size_t data_capacity) const {
    return queue_.Read(queue_index, info, data, data_capacity);
  }
  // LocklessQueue::LatestQueueIndex: wait-free, RT-safe, thread-safe.
  QueueIndex LatestQueueIndex() const { return queue_.LatestQueueIndex(); }
  // LocklessQueue::OldestQueueIndex (a snapshot): wait-free, RT-safe,
  // thread-safe; only loads, so it works on the read-only mapping.
  QueueIndex OldestQueueIndex() const { return queue_.OldestQueueIndex(); }
  // The blocking wait of a reader that cannot write:
  // LocklessQueue::WaitWithoutRegistering (prompt while any read-write
  // Waiter is registered, else within `poll_interval_ns`). Thread-safe.
  [[nodiscard]] WaitResult Wait(QueueIndex next_to_read, int64_t deadline_ns,
                                int64_t poll_interval_ns = 1'000'000) const {
    return queue_.WaitWithoutRegistering(next_to_read, deadline_ns,
                                         poll_interval_ns);
  }
  QueueIndex MakeQueueIndex(uint32_t raw) const {
    return queue_.MakeQueueIndex(raw);
  }
  const QueueConfig& config() const { return queue_.config(); }
  const std::string& path() const { return file_.path(); }
  // The read-only mapping (for printers such as dump). Writing through it
  // faults.
  const void* memory() const { return file_.memory(); }
  size_t size_bytes() const { return file_.size_bytes(); }

 private:
  ReadOnlyChannel(internal::ChannelFile file, LocklessQueue queue)
      : file_(std::move(file)), queue_(queue) {}

  internal::ChannelFile file_;
  // Private and never handed out: MakeSender/MakeWatcher would write.
  LocklessQueue queue_;
};

// Checks `name`: a plain file name of letters, digits, '.', '_' and '-' (at
// most 200 characters, not "." or ".."). InvalidArgument otherwise.
absl::Status ValidateChannelName(std::string_view name);

// "<directory>/<name>" (directory empty = DefaultChannelDirectory()), or
// InvalidArgument for a bad name. Does not look at the file system.
absl::StatusOr<std::string> ChannelPath(std::string_view name,
                                        std::string_view directory = {});

// Removes the channel's file unconditionally. Processes that have it open
// keep using it (an orphan nobody else can open). NotFound if it does not
// exist. Prefer RemoveStaleChannel.
absl::Status RemoveChannel(std::string_view name,
                           const ChannelOptions& options = ChannelOptions());

// Removes the channel's file only if no process has it open (no Channel or
// ReadOnlyChannel holds its lock), atomically with respect to concurrent
// openers: an opener racing with the removal either keeps the file (removal
// reports FailedPrecondition "in use") or opens a new one. NotFound if it
// does not exist. Never blocks.
absl::Status RemoveStaleChannel(
    std::string_view name, const ChannelOptions& options = ChannelOptions());

}  // namespace lockless

#endif  // LOCKLESS_IPC_SHM_CHANNEL_H_
