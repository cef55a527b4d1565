#include "tools/dump_lib.h"

#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
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
#include "ipc/shm_channel.h"

namespace lockless {
namespace {

// ---- SIGBUS guard ----
//
// A file mapped MAP_SHARED raises SIGBUS when a page beyond its current end
// is touched, which happens if someone truncates the file while we read it.
// GuardSigbus runs a function with this thread's jump buffer armed; the
// handler jumps back to it, and the function reports failure.
//
// States of the calling thread:
//   1. unarmed (t_sigbus_jump == nullptr): a SIGBUS here is not ours; the
//      handler restores the previous disposition and returns, so the
//      faulting instruction runs again and gets the original behaviour
//      (normally: the process dies of SIGBUS, as it would without us).
//   2. armed: the handler disarms and siglongjmps to GuardSigbus, which
//      restores the signal mask saved by sigsetjmp (SIGBUS is blocked inside
//      the handler) and returns false.
// The guarded functions hold no object with a destructor across the reads
// that may fault (a memcpy; the header read in ValidateRegionImage, which is
// documented to happen before it constructs anything), so jumping out skips
// nothing. The handler only reads/writes a thread-local pointer, calls
// sigaction and siglongjmp: async-signal-safe.

// Constant-initialised, so no TLS wrapper runs in the handler; written
// before arming, so this thread's TLS block exists by then.
thread_local sigjmp_buf* t_sigbus_jump = nullptr;
struct sigaction g_previous_sigbus_action;

void OnSigbus(int /*signal*/, siginfo_t* /*info*/, void* /*context*/) {
  sigjmp_buf* const jump = t_sigbus_jump;
  if (jump != nullptr) {
    t_sigbus_jump = nullptr;
    siglongjmp(*jump, 1);
  }
  // State 1: not ours. Hand the signal back (the access faults again).
  sigaction(SIGBUS, &g_previous_sigbus_action, nullptr);
}

void InstallSigbusHandlerOnce() {
  static std::once_flag once;
  std::call_once(once, [] {
    struct sigaction action;
    std::memset(&action, 0, sizeof(action));
    action.sa_sigaction = &OnSigbus;
    action.sa_flags = SA_SIGINFO;
    sigemptyset(&action.sa_mask);
    sigaction(SIGBUS, &action, &g_previous_sigbus_action);
  });
}

// Runs `function` with SIGBUS guarded. False if it was interrupted by SIGBUS.
template <typename Function>
bool GuardSigbus(Function&& function) {
  InstallSigbusHandlerOnce();
  sigjmp_buf jump;
  // savemask = 1: siglongjmp from the handler restores the mask, unblocking
  // SIGBUS again.
  if (sigsetjmp(jump, 1) != 0) {
    return false;  // Already disarmed by the handler.
  }
  t_sigbus_jump = &jump;
  // Compiler barrier: keep the reads inside the armed window.
  std::atomic_signal_fence(std::memory_order_seq_cst);
  function();
  std::atomic_signal_fence(std::memory_order_seq_cst);
  t_sigbus_jump = nullptr;
  return true;
}

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
  if (options.channel.empty() == options.path.empty()) {
    return Usage("exactly one of --channel=NAME or --path=FILE is required",
                 err);
  }
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
    absl::StatusOr<std::string> channel_path = ChannelPath(options.channel);
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
  // guarantees we can never write to it.
  void* const mapping =
      mmap(nullptr, file_size_bytes, PROT_READ, MAP_SHARED, fd, 0);
  if (mapping == MAP_FAILED) {
    return Fail(path, absl::StrCat("mmap: ", ErrnoText(errno)), err);
  }
  Unmapper unmap_file(mapping, file_size_bytes);
  if (options.after_map_for_test) options.after_map_for_test();

  // 4. Validate the header in place (guarded).
  std::optional<absl::StatusOr<internal::Layout>> layout;
  if (!GuardSigbus([&] {
        // Assigned only after ValidateRegionImage has returned, i.e. after
        // its only read of the mapping.
        layout.emplace(ValidateRegionImage(mapping, file_size_bytes));
      })) {
    return Fail(path, "file was truncated while reading", err);
  }
  if (!layout->ok()) return Fail(path, layout->status().message(), err);
  const size_t region_size_bytes =
      static_cast<size_t>((*layout)->total_size_bytes);

  // 5. Snapshot the region (guarded): one memcpy, then everything else works
  // on private memory that cannot change or disappear. Page-aligned, as the
  // printer requires cache-line alignment.
  void* const snapshot = mmap(nullptr, region_size_bytes,
                              PROT_READ | PROT_WRITE,
                              MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (snapshot == MAP_FAILED) {
    return Fail(path,
                absl::StrFormat("cannot allocate a %u-byte snapshot: %s",
                                region_size_bytes, ErrnoText(errno)),
                err);
  }
  Unmapper unmap_snapshot(snapshot, region_size_bytes);
  if (!GuardSigbus(
          [&] { std::memcpy(snapshot, mapping, region_size_bytes); })) {
    return Fail(path, "file was truncated while reading", err);
  }

  // 6. Print the snapshot (validated again: the header may have changed
  // between steps 4 and 5).
  std::string text = absl::StrFormat("file: %s (%u bytes)\n", path,
                                     file_size_bytes);
  if (DumpImage(snapshot, region_size_bytes, path, print, &text, err) !=
      kDumpOk) {
    return kDumpError;
  }
  out->append(text);
  return kDumpOk;
}

}  // namespace lockless
