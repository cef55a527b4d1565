#include "tools/dump_lib.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <vector>
#include <cstring>
#include <limits>
#include <mutex>
#include <optional>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/string_view.h"
#include "ipc/internal/queue_layout.h"
#include "ipc/internal/scoped_fd.h"
#include "ipc/internal/shm_file.h"
#include "ipc/shm_channel.h"

namespace lockless {
namespace {

// ---- Small RAII helpers ----

class Unmapper {
 public:
  Unmapper(void* memory, size_t size_bytes)
      : memory_(memory), size_bytes_(size_bytes) {}
  ~Unmapper() {
    if (memory_ != nullptr && memory_ != MAP_FAILED) munmap(memory_, size_bytes_);
  }
  Unmapper(const Unmapper&) = delete;
  Unmapper& operator=(const Unmapper&) = delete;

 private:
  void* memory_;
  size_t size_bytes_;
};

std::string ErrnoText(int error_number) {
  char buffer[128];
  // GNU strerror_r: returns the message, possibly not in `buffer`.
  return strerror_r(error_number, buffer, sizeof(buffer));
}

// One line, whatever the message contains.
std::string OneLine(std::string text) {
  for (char& c : text) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  return text;
}

int Fail(const std::string& label, absl::string_view message,
         std::string* err) {
  absl::StrAppend(err, "dump: ", OneLine(label), ": ",
                  OneLine(std::string(message)), "\n");
  return kDumpError;
}

int Usage(absl::string_view message, std::string* err) {
  absl::StrAppend(err, "dump: ", OneLine(std::string(message)), "\n");
  return kDumpUsage;
}

}  // namespace

int DumpImage(const void* memory, size_t size_bytes, const std::string& label,
              const PrintOptions& options, std::string* out, std::string* err) {
  std::string text;
  const absl::Status status = PrintRegion(memory, size_bytes, options, &text);
  if (!status.ok()) return Fail(label, status.message(), err);
  out->append(text);
  return kDumpOk;
}

int RunDump(const DumpOptions& options, std::string* out, std::string* err) {
  // 1. Arguments.
  const int modes = !options.channel.empty() + !options.path.empty() +
                    (options.list || options.gc);
  if (modes != 1) {
    return Usage("exactly one of --channel=NAME, --path=FILE, --list or --gc "
                 "is required",
                 err);
  }
  if (options.list || options.gc) return RunList(options, out, err);
  if (options.queue_index < -1 ||
      options.queue_index >= int64_t{QueueIndex::kInvalidValue}) {
    return Usage(absl::StrFormat("--queue_index=%d is out of range (-1 for "
                                 "all, or 0 to %u)",
                                 options.queue_index,
                                 QueueIndex::kInvalidValue - 1),
                 err);
  }
  if (options.max_data_bytes < 0) {
    return Usage(absl::StrFormat("--max_data_bytes=%d must be >= 0",
                                 options.max_data_bytes),
                 err);
  }
  std::string path = options.path;
  if (!options.channel.empty()) {
    absl::StatusOr<std::string> channel_path =
        ChannelPath(options.channel, options.directory);
    if (!channel_path.ok()) return Usage(channel_path.status().message(), err);
    path = *std::move(channel_path);
  }
  PrintOptions print;
  print.summary_only = options.summary;
  print.hex_data = options.hex;
  if (options.queue_index >= 0) {
    print.queue_index = static_cast<uint32_t>(options.queue_index);
  }
  print.max_data_bytes = static_cast<size_t>(options.max_data_bytes);
  print.is_alive = options.is_alive;
  print.release_pages = true;
  print.after_message_copy_for_test = options.after_message_copy_for_test;

  // 2. Open read-only, never through a symlink; O_NONBLOCK so that a FIFO
  // cannot block us before fstat rejects it.
  const int fd = open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC |
                                        O_NONBLOCK);
  if (fd < 0) {
    if (errno == ELOOP) {
      return Fail(path, "is a symbolic link; refusing to follow it", err);
    }
    return Fail(path, absl::StrCat("open: ", ErrnoText(errno)), err);
  }
  internal::ScopedFd closer(fd);
  struct stat st;
  if (fstat(fd, &st) != 0) {
    return Fail(path, absl::StrCat("fstat: ", ErrnoText(errno)), err);
  }
  if (!S_ISREG(st.st_mode)) return Fail(path, "not a regular file", err);
  const size_t file_size_bytes = static_cast<size_t>(st.st_size);
  if (file_size_bytes == 0) {
    // mmap refuses 0 bytes; let the validator word the error.
    return DumpImage(nullptr, 0, path, print, out, err);
  }

  // 3. Map read-only. MAP_SHARED: we see the live channel, and PROT_READ
  // guarantees we can never write to it. Not pre-faulted: only the pages
  // printed are touched (and given back, release_pages).
  void* const mapping =
      mmap(nullptr, file_size_bytes, PROT_READ, MAP_SHARED, fd, 0);
  if (mapping == MAP_FAILED) {
    return Fail(path, absl::StrCat("mmap: ", ErrnoText(errno)), err);
  }
  Unmapper unmap_file(mapping, file_size_bytes);
  if (options.after_map_for_test) options.after_map_for_test();

  // 4. Validate and print in place: every read a guarded copy.
  std::string text;
  const std::function<void(absl::string_view)> sink =
      options.sink ? options.sink
                   : std::function<void(absl::string_view)>(
                         [&text](absl::string_view piece) {
                           text.append(piece.data(), piece.size());
                         });
  std::string first = absl::StrFormat("file: %s (%u bytes)\n", path,
                                      file_size_bytes);
  absl::StatusOr<internal::Layout> layout =
      ValidateRegionImage(mapping, file_size_bytes);
  if (!layout.ok()) return Fail(path, layout.status().message(), err);
  if (internal::AllocatedBytes(st) < layout->total_size_bytes) {
    absl::StrAppendFormat(&first,
                          "warning: %u of %u bytes allocated (holes: made "
                          "before space was reserved); a read-write open "
                          "completes it\n",
                          internal::AllocatedBytes(st),
                          layout->total_size_bytes);
  }
  sink(first);
  const absl::Status status =
      PrintRegionTo(mapping, file_size_bytes, print, sink);
  if (!status.ok()) return Fail(path, status.message(), err);
  out->append(text);
  return kDumpOk;
}

namespace {

bool InUse(int fd, const std::string& path) {
  absl::StatusOr<bool> exclusive = internal::TryLockExclusive(fd, path);
  if (!exclusive.ok()) return true;  // Cannot tell: treat as in use.
  if (*exclusive) internal::Unlock(fd);
  return !*exclusive;
}

std::string TimeText(int64_t realtime_ns) {
  const time_t seconds = static_cast<time_t>(realtime_ns / 1000000000);
  struct tm tm;
  char date[32];
  if (gmtime_r(&seconds, &tm) == nullptr ||
      strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%SZ", &tm) == 0) {
    return "?";
  }
  return date;
}

// One directory entry: its listing line, and whether gc may remove it.
struct Entry {
  std::string line;
  bool in_use = true;
  bool removable = false;
};

Entry Inspect(const std::string& directory, const std::string& name,
              const std::function<bool(pid_t)>& is_alive) {
  Entry entry;
  const std::string path = directory + "/" + name;
  const int fd =
      open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) {
    entry.line = absl::StrFormat("%s: cannot open: %s", name, ErrnoText(errno));
    return entry;
  }
  internal::ScopedFd closer(fd);
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    entry.line = absl::StrFormat("%s: not a regular file", name);
    return entry;
  }
  entry.in_use = InUse(fd, path);
  const std::string use = entry.in_use ? "open" : "not open";
  const size_t size = static_cast<size_t>(st.st_size);
  if (size == 0) {
    entry.removable = !entry.in_use && time(nullptr) - st.st_mtime > 60;
    entry.line = absl::StrFormat("%s: empty file (a creator died before "
                                 "reserving it?), %s",
                                 name, use);
    return entry;
  }
  void* const mapping = mmap(nullptr, size, PROT_READ, MAP_SHARED, fd, 0);
  if (mapping == MAP_FAILED) {
    entry.line = absl::StrFormat("%s: mmap: %s", name, ErrnoText(errno));
    return entry;
  }
  Unmapper unmap(mapping, size);
  absl::StatusOr<RegionSummary> summary =
      SummarizeRegion(mapping, size, is_alive);
  if (!summary.ok()) {
    // Ours (magic) but unusable, e.g. never initialised: removable when not
    // open. Foreign files: never.
    uint64_t magic = 0;
    const bool ours =
        pread(fd, &magic, sizeof(magic),
              offsetof(internal::RegionHeader, magic)) == sizeof(magic) &&
        magic == internal::kRegionMagic;
    entry.removable = ours && !entry.in_use;
    entry.line = absl::StrFormat("%s: %u bytes, %s: %s, %s", name, size,
                                 ours ? "damaged channel" : "not a channel",
                                 OneLine(std::string(summary.status().message())),
                                 use);
    return entry;
  }
  entry.removable = !entry.in_use;
  std::string latest = "nothing sent";
  if (summary->latest_queue_index.has_value()) {
    latest = absl::StrFormat(
        "latest %u at %s", *summary->latest_queue_index,
        summary->latest_realtime_ns.has_value()
            ? TimeText(*summary->latest_realtime_ns)
            : std::string("(being rewritten)"));
  }
  std::string pinners;
  if (summary->config.num_pinners > 0) {
    pinners = absl::StrFormat(", pinners %d alive %d dead (%d pinned)",
                              summary->pinners_alive, summary->pinners_dead,
                              summary->pins_held);
  }
  entry.line = absl::StrFormat(
      "%s: %s, %u bytes, senders %d alive %d dead, watchers %d alive %d "
      "dead%s, %s, %s",
      name, summary->config.DebugString(), summary->size_bytes,
      summary->senders_alive, summary->senders_dead, summary->watchers_alive,
      summary->watchers_dead, pinners, latest, use);
  return entry;
}

// The bridge (tools/bridge) keeps per-channel state files in
// <directory>/.bridge: <name>.export_state / <name>.import_state, each held
// with an exclusive flock while the bridge runs. Their presence marks the
// channel as bridged; the sidecar needs no change to the channel's layout.
std::string BridgeNote(const std::string& directory, const std::string& name) {
  std::string note;
  for (const char* direction : {"export", "import"}) {
    const std::string path =
        absl::StrCat(directory, "/.bridge/", name, ".", direction, "_state");
    const int fd = open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) continue;
    internal::ScopedFd closer(fd);
    const bool running = flock(fd, LOCK_SH | LOCK_NB) != 0;
    absl::StrAppend(&note, note.empty() ? ", bridged: " : " and ",
                    direction == std::string("export") ? "exported"
                                                       : "imported",
                    running ? " (bridge running)" : " (bridge not running)");
  }
  return note;
}

}  // namespace

int RunList(const DumpOptions& options, std::string* out, std::string* err) {
  const std::string directory = options.directory.empty()
                                    ? DefaultChannelDirectory()
                                    : options.directory;
  if (absl::Status status = internal::CheckChannelDirectory(directory);
      !status.ok()) {
    return Fail(directory, status.message(), err);
  }
  DIR* dir = opendir(directory.c_str());
  if (dir == nullptr) {
    return Fail(directory, absl::StrCat("opendir: ", ErrnoText(errno)), err);
  }
  std::vector<std::string> names;
  while (const dirent* entry = readdir(dir)) {
    const std::string name = entry->d_name;
    // .bridge holds the bridge's state, reported with its channels.
    if (name == ".bridge") continue;
    if (ValidateChannelName(name).ok()) names.push_back(name);
  }
  closedir(dir);
  std::sort(names.begin(), names.end());
  std::string text;
  int removed = 0;
  for (const std::string& name : names) {
    const Entry entry = Inspect(directory, name, options.is_alive);
    if (options.list) {
      absl::StrAppend(&text, entry.line, BridgeNote(directory, name), "\n");
    }
    if (!options.gc) continue;
    if (!entry.removable) {
      if (!options.list) {
        absl::StrAppend(&text, "kept ", name,
                        entry.in_use ? " (open)\n" : " (not a channel)\n");
      }
      continue;
    }
    ChannelOptions channel_options;
    channel_options.directory = directory;
    // Re-checked under the exclusive lock: an opener that got in since
    // Inspect keeps its channel.
    const absl::Status status = RemoveStaleChannel(name, channel_options);
    if (status.ok()) {
      ++removed;
      absl::StrAppend(&text, "removed ", name, "\n");
    } else {
      absl::StrAppend(&text, "kept ", name, ": ",
                      OneLine(std::string(status.message())), "\n");
    }
  }
  if (options.gc) absl::StrAppendFormat(&text, "%d removed\n", removed);
  if (options.sink) {
    options.sink(text);
  } else {
    out->append(text);
  }
  return kDumpOk;
}

}  // namespace lockless
