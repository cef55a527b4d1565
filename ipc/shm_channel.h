// Named channels: a LocklessQueue in a file under /dev/shm, shared by every
// process that opens the same name with the same configuration.
//
// OpenOrCreate handles every way two processes can meet at a name:
//   - first creator: exclusive create (O_EXCL), exact mode (fchmod, not
//     subject to umask), size, stamp the magic, map, initialise;
//   - concurrent openers: wait (bounded) for the creator to size the file and
//     stamp the magic, then attach, which waits on the region's setup lock
//     until initialised (a creator that died after stamping is finished by
//     the next opener; one that died between sizing and stamping leaves a
//     file that is reported, DeadlineExceeded, and must be removed);
//   - an existing file is checked before its contents are trusted: regular
//     file, not a symlink (O_NOFOLLOW), owned by this user, no permission bit
//     beyond the requested mode, exact size, our magic (before the file is
//     mapped or its lock touched: a foreign file's first word could name any
//     thread), then layout version and every configuration field. Any
//     mismatch is a clear error and the file is left untouched.
// The mapping is pre-faulted (MAP_POPULATE) so the first Send does not take a
// page fault.
//
// Thread-safety: OpenOrCreate and RemoveChannel may be called concurrently
// from any thread or process. Not RT-safe (file system calls, may wait).
#ifndef LOCKLESS_IPC_SHM_CHANNEL_H_
#define LOCKLESS_IPC_SHM_CHANNEL_H_

#include <sys/types.h>

#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "ipc/lockless_queue.h"
#include "ipc/queue_config.h"

namespace lockless {

struct ChannelOptions {
  // Permission bits for a newly created file (exactly these, umask is not
  // applied). World-writable modes are rejected. An existing file may not
  // grant more than this.
  mode_t mode = 0600;
  // How long to wait for a concurrent creator to size the file and stamp
  // its magic.
  absl::Duration creation_timeout = absl::Seconds(5);
};

class Channel {
 public:
  // Opens the channel `name` (a file /dev/shm/<name>; letters, digits, '.',
  // '_' and '-' only), creating it if it does not exist. Errors:
  // InvalidArgument (bad name, mode or config), FailedPrecondition (existing
  // file has another size/configuration/layout, is foreign, a symlink or not
  // a regular file, or has a wider mode), PermissionDenied (owned by another
  // user, or open(2) refused), DeadlineExceeded (a concurrent creator never
  // sized or stamped the file, or a foreign file of exactly the channel's
  // size starts with a zero magic), or the errno of a failed system call.
  static absl::StatusOr<Channel> OpenOrCreate(
      std::string_view name, const QueueConfig& config,
      const ChannelOptions& options = ChannelOptions());

  Channel(Channel&& other) noexcept;
  Channel& operator=(Channel&& other) = delete;
  Channel(const Channel&) = delete;
  Channel& operator=(const Channel&) = delete;
  // Unmaps. Senders and watchers made from queue() must be gone first.
  ~Channel();

  const LocklessQueue& queue() const { return queue_; }
  const std::string& path() const { return path_; }
  // True if this call created the file.
  bool created() const { return created_; }

 private:
  Channel(std::string path, void* memory, size_t size_bytes,
          LocklessQueue queue, bool created)
      : path_(std::move(path)),
        memory_(memory),
        size_bytes_(size_bytes),
        queue_(queue),
        created_(created) {}

  std::string path_;
  void* memory_ = nullptr;
  size_t size_bytes_ = 0;
  LocklessQueue queue_;
  bool created_ = false;
};

// "/dev/shm/<name>", or InvalidArgument for a name that is not a plain file
// name of letters, digits, '.', '_' and '-' (at most 200 characters, not "."
// or "..").
absl::StatusOr<std::string> ChannelPath(std::string_view name);

// Removes the channel's file. Processes that have it open keep using it.
// NotFound if it does not exist.
absl::Status RemoveChannel(std::string_view name);

}  // namespace lockless

#endif  // LOCKLESS_IPC_SHM_CHANNEL_H_
