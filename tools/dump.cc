// dump: prints the memory of a channel in readable form, read-only.
//
//   dump --channel=NAME            # /dev/shm/NAME
//   dump --path=FILE [--summary] [--hex] [--queue_index=N]
//        [--max_data_bytes=64]
//
// Never writes to the channel, never takes its locks, never crashes on what
// it reads (see tools/dump_lib.h). Exit status: 0 printed, 1 could not dump
// (one line on stderr: "dump: <path>: <message>"), 2 usage error.
#include <unistd.h>

#include <cstdio>
#include <string>

#include <gflags/gflags.h>

#include "tools/dump_lib.h"

DEFINE_string(channel, "", "Channel name: dumps /dev/shm/<channel>.");
DEFINE_string(path, "", "Path of a region file to dump (instead of --channel).");
DEFINE_bool(summary, false,
            "Print only the header, configuration, indices and owners.");
DEFINE_bool(hex, false, "Print payloads as hex instead of escaped text.");
DEFINE_int64(queue_index, -1,
             "Print only the message at this queue index (-1: all).");
DEFINE_int64(max_data_bytes, 64, "Payload bytes printed per message.");

namespace {

// Writes all of `text` to `fd`; best effort (nothing to do if it fails).
void WriteAll(int fd, const std::string& text) {
  size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = write(fd, text.data() + done, text.size() - done);
    if (n <= 0) return;
    done += static_cast<size_t>(n);
  }
}

// gflags exits with status 1 on an unknown flag or a malformed value; our
// contract says usage errors exit with 2. So check every flag first with
// gflags' own registry (no exit on failure), and leave --help and friends to
// gflags. Returns an error message, or "" if gflags will parse argv cleanly.
std::string CheckFlags(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--") break;
    if (arg.size() < 2 || arg[0] != '-') {
      return "unexpected argument \"" + arg + "\" (see --help)";
    }
    arg.erase(0, arg[1] == '-' ? 2 : 1);
    const size_t equals = arg.find('=');
    std::string name = arg.substr(0, equals);
    gflags::CommandLineFlagInfo info;
    if (!gflags::GetCommandLineFlagInfo(name.c_str(), &info)) {
      // "--noflag" for booleans.
      if (name.rfind("no", 0) == 0 && equals == std::string::npos &&
          gflags::GetCommandLineFlagInfo(name.substr(2).c_str(), &info) &&
          info.type == "bool") {
        continue;
      }
      return "unknown flag --" + name + " (see --help)";
    }
    if (info.filename != __FILE__) {
      // --help and friends: gflags' own; skip a space-separated value.
      if (equals == std::string::npos && info.type != "bool") ++i;
      continue;
    }
    if (equals == std::string::npos) {
      if (info.type == "bool") continue;
      if (i + 1 >= argc) return "flag --" + name + " needs a value";
      ++i;  // "--flag value"
      arg = name + "=" + argv[i];
    }
    const std::string value = arg.substr(arg.find('=') + 1);
    // Sets the flag (ParseCommandLineFlags sets it again, identically).
    if (gflags::SetCommandLineOption(name.c_str(), value.c_str()).empty()) {
      return "illegal value \"" + value + "\" for --" + name + " (a " +
             info.type + ")";
    }
  }
  return "";
}

}  // namespace

int main(int argc, char** argv) {
  gflags::SetUsageMessage(
      "prints a lockless channel's shared memory, read-only.\n"
      "  dump --channel=NAME | --path=FILE [--summary] [--hex] "
      "[--queue_index=N] [--max_data_bytes=N]");
  if (const std::string error = CheckFlags(argc, argv); !error.empty()) {
    WriteAll(STDERR_FILENO, "dump: " + error + "\n");
    return lockless::kDumpUsage;
  }
  gflags::ParseCommandLineFlags(&argc, &argv, /*remove_flags=*/true);
  if (argc > 1) {
    WriteAll(STDERR_FILENO, std::string("dump: unexpected argument \"") +
                                argv[1] + "\" (see --help)\n");
    return lockless::kDumpUsage;
  }
  lockless::DumpOptions options;
  options.channel = FLAGS_channel;
  options.path = FLAGS_path;
  options.summary = FLAGS_summary;
  options.hex = FLAGS_hex;
  options.queue_index = FLAGS_queue_index;
  options.max_data_bytes = FLAGS_max_data_bytes;
  std::string out;
  std::string err;
  const int code = lockless::RunDump(options, &out, &err);
  WriteAll(STDOUT_FILENO, out);
  WriteAll(STDERR_FILENO, err);
  return code;
}
