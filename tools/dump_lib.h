// The core of the `dump` tool: prints a channel region from a file (usually
// a live channel in /dev/shm) without ever writing to it, locking it, or
// crashing on what it finds.
//
// RunDump opens the file read-only (O_NOFOLLOW, O_NONBLOCK so a FIFO cannot
// hang it), rejects anything but a regular file, maps it PROT_READ/MAP_SHARED,
// validates the header in place (ValidateRegionImage), copies the validated
// region into a private snapshot in one pass, and prints the snapshot
// (PrintRegion). Printing from a snapshot keeps the (slow) formatting away
// from the live mapping: the only code that touches the file is one header
// read and one memcpy, both guarded against SIGBUS (the file shrinking while
// mapped) by a handler that siglongjmps to the error path.
//
// Result: 0 = printed; 1 = the file could not be dumped (error in *err as one
// line "dump: <path>: <message>"); 2 = usage error ("dump: <message>").
//
// Thread-safety: RunDump installs (once, process-wide) a SIGBUS handler that
// is transparent to faults outside its guarded sections: it restores the
// previous disposition and lets the fault happen again. The guard state is
// per thread, so concurrent RunDump calls are safe. Not real-time safe.
#ifndef LOCKLESS_TOOLS_DUMP_LIB_H_
#define LOCKLESS_TOOLS_DUMP_LIB_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>

#include "ipc/queue_printer.h"

namespace lockless {

inline constexpr int kDumpOk = 0;
inline constexpr int kDumpError = 1;
inline constexpr int kDumpUsage = 2;

struct DumpOptions {
  // Exactly one of these: a channel name (file /dev/shm/<channel>), or a path.
  std::string channel;
  std::string path;
  // See PrintOptions.
  bool summary = false;
  bool hex = false;
  // -1 = every message; otherwise only this queue index (0 .. 2^32 - 2).
  int64_t queue_index = -1;
  // Payload bytes printed per message (>= 0).
  int64_t max_data_bytes = 64;
  // Liveness check for owner tids; empty = /proc/<tid> exists.
  std::function<bool(pid_t)> is_alive;

  // Test hook: called after the file is mapped and before it is read (to
  // shrink the file under the mapping).
  std::function<void()> after_map_for_test;
};

// Dumps the file named by `options`. Appends the dump to *out (only on
// success) and the error line to *err. Returns kDumpOk, kDumpError or
// kDumpUsage.
int RunDump(const DumpOptions& options, std::string* out, std::string* err);

// The same for a region image already in memory (read only; `label` names it
// in the error line). Returns kDumpOk or kDumpError.
int DumpImage(const void* memory, size_t size_bytes, const std::string& label,
              const PrintOptions& options, std::string* out, std::string* err);

}  // namespace lockless

#endif  // LOCKLESS_TOOLS_DUMP_LIB_H_
