// dump: prints the memory of a channel in readable form, read-only; lists
// the channels of a directory; removes the stale ones.
//
//   dump --channel=NAME [--dir=DIR]   # DIR/NAME, DIR default /dev/shm
//   dump --path=FILE [--summary] [--hex] [--queue_index=N]
//        [--max_data_bytes=64]
//   dump --list [--dir=DIR]           # every channel, one line each
//   dump --gc [--dir=DIR]             # remove channels nobody has open
//
// Never writes to the channel, never takes its locks, never crashes on what
// it reads (see tools/dump_lib.h). Exit status: 0 printed, 1 could not dump
// (one line on stderr: "dump: <path>: <message>"), 2 usage error.
#include <unistd.h>

#include <cstdio>
#include <string>
#include <vector>

#include <gflags/gflags.h>

#include "tools/dump_lib.h"

DEFINE_string(channel, "", "Channel name: dumps <dir>/<channel>.");
DEFINE_string(dir, "",
              "Channel directory (default: $LOCKLESS_SHM_DIR, else /dev/shm).");
DEFINE_bool(list, false,
            "List every channel in --dir: configuration, size, senders and "
            "watchers, latest index and time, whether it is open.");
DEFINE_bool(gc, false,
            "Remove the channels in --dir that no process has open (never "
            "one in use, even one being opened right now).");
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
std::string CheckFlags(int argc, char** argv, bool* help) {
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--") break;
    if (arg == "--help" || arg == "-help" || arg == "-h" ||
        arg == "--helpshort") {
      *help = true;
      return "";
    }
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

// --help: this tool's own flags only (gflags' would list its internals too).
std::string Help() {
  std::string text = gflags::ProgramUsage();
  text += "\n\nflags:\n";
  std::vector<gflags::CommandLineFlagInfo> flags;
  gflags::GetAllFlags(&flags);
  for (const gflags::CommandLineFlagInfo& flag : flags) {
    if (flag.filename != __FILE__) continue;
    text += "  --" + flag.name + " (" + flag.type + ", default \"" +
            flag.default_value + "\")\n      " + flag.description + "\n";
  }
  return text;
}

}  // namespace

int main(int argc, char** argv) {
  gflags::SetUsageMessage(
      "prints a lockless channel's shared memory, read-only; lists and "
      "collects channels.\n"
      "  dump --channel=NAME [--dir=DIR] | --path=FILE  [--summary] [--hex] "
      "[--queue_index=N] [--max_data_bytes=N]\n"
      "  dump --list [--dir=DIR]\n"
      "  dump --gc [--dir=DIR]");
  bool help = false;
  if (const std::string error = CheckFlags(argc, argv, &help);
      !error.empty()) {
    WriteAll(STDERR_FILENO, "dump: " + error + "\n");
    return lockless::kDumpUsage;
  }
  if (help) {
    WriteAll(STDOUT_FILENO, Help());
    return lockless::kDumpOk;
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
  options.directory = FLAGS_dir;
  options.list = FLAGS_list;
  options.gc = FLAGS_gc;
  // Streamed: the dump is written as it is produced, never held whole.
  options.sink = [](absl::string_view piece) {
    WriteAll(STDOUT_FILENO, std::string(piece));
  };
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
