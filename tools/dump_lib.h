// The core of the `dump` tool: prints a channel region from a file (usually
// a live channel in /dev/shm) without ever writing to it, locking it, or
// crashing on what it finds; lists the channels of a directory; removes the
// stale ones.
//
// RunDump opens the file read-only (O_NOFOLLOW, O_NONBLOCK so a FIFO cannot
// hang it), rejects anything but a regular file, maps it PROT_READ/MAP_SHARED
// and prints it in place with PrintRegionTo: every read is a guarded copy
// (SIGBUS when the file shrinks gives an error line), each message is copied
// seqlock-style and shown "changed while reading" when a sender recycled it,
// and memory stays bounded by what is printed: the slots, one message at a
// time, and the text handed to `sink` piece by piece (message pages are
// given back as it goes). Nothing is ever copied whole.
//
// Listing (--list) maps each file the same way and summarises it; it tells
// whether a process has the channel open by trying the opener's flock
// exclusively without blocking (released at once; an opener at that instant
// waits a few microseconds). Collection (--gc) removes, with
// RemoveStaleChannel, the channels nobody has open: race-free against a
// concurrent opener (shm_channel.h). Files that are not channels are never
// removed, except an empty file (a creator that died before reserving
// space) nobody has open and older than a minute.
//
// Result: 0 = done; 1 = the file could not be dumped (error in *err as one
// line "dump: <path>: <message>"); 2 = usage error ("dump: <message>").
//
// Thread-safety: concurrent calls are safe (the SIGBUS guard is per thread).
// Not real-time safe.
#ifndef LOCKLESS_TOOLS_DUMP_LIB_H_
#define LOCKLESS_TOOLS_DUMP_LIB_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>

#include "absl/strings/string_view.h"
#include "ipc/queue_printer.h"

namespace lockless {

inline constexpr int kDumpOk = 0;
inline constexpr int kDumpError = 1;
inline constexpr int kDumpUsage = 2;

struct DumpOptions {
  // Exactly one of these: a channel name (file <directory>/<channel>), a
  // path, list, or gc.
  std::string channel;
  std::string path;
  bool list = false;
  bool gc = false;
  // Channel directory for channel/list/gc; empty = DefaultChannelDirectory().
  std::string directory;
  // See PrintOptions.
  bool summary = false;
  bool hex = false;
  // -1 = every message; otherwise only this queue index (0 .. 2^32 - 2).
  int64_t queue_index = -1;
  // Payload bytes printed per message (>= 0).
  int64_t max_data_bytes = 64;
  // Liveness check for owner tids; empty = /proc/<tid> exists.
  std::function<bool(pid_t)> is_alive;

  // Where the text goes as it is produced. Empty: appended to *out, and only
  // on success.
  std::function<void(absl::string_view)> sink;
  // Test hooks: after the file is mapped and before it is read (to shrink
  // the file under the mapping); after each message copy (PrintOptions).
  std::function<void()> after_map_for_test;
  std::function<void()> after_message_copy_for_test;
};

// Dumps the file named by `options`. Appends the dump to *out (only on
// success) and the error line to *err. Returns kDumpOk, kDumpError or
// kDumpUsage.
int RunDump(const DumpOptions& options, std::string* out, std::string* err);

// The --list / --gc part of RunDump (options.list or options.gc set).
int RunList(const DumpOptions& options, std::string* out, std::string* err);

// The same for a region image already in memory (read only; `label` names it
// in the error line). Returns kDumpOk or kDumpError.
int DumpImage(const void* memory, size_t size_bytes, const std::string& label,
              const PrintOptions& options, std::string* out, std::string* err);

}  // namespace lockless

#endif  // LOCKLESS_TOOLS_DUMP_LIB_H_
