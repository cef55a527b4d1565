// Test and demo helper: runs the `bridge` binary as a child process on the
// loopback network and talks to it through its stdout. testonly.
//
// Thread-safety: one object per thread. Not RT-safe.
#ifndef LOCKLESS_TOOLS_BRIDGE_BRIDGE_PROCESS_H_
#define LOCKLESS_TOOLS_BRIDGE_BRIDGE_PROCESS_H_

#include <sys/types.h>

#include <string>
#include <vector>

#include "absl/status/status.h"

namespace lockless::bridge {

class BridgeProcess {
 public:
  // `binary`: path of the bridge binary; `config_text` is written to
  // <state_dir>/bridge.conf. Always --network=loopback, and a DDS partition
  // chosen at random here: bridges match only those of the same
  // BridgeProcess object or one given the same partition (SetPartition).
  BridgeProcess(std::string binary, std::string channel_dir,
                std::string state_dir, uint32_t domain, std::string identity,
                std::string config_text);
  ~BridgeProcess();  // SIGKILLs a still-running child

  // Starts the child and waits (up to 30 s) for its "running" line.
  absl::Status Start();
  // SIGTERM, then reads everything it printed until it exits (its final
  // statistics); returns that text.
  std::string Stop();
  // SIGKILL, mid-whatever; reaps it.
  void Kill();
  // SIGSTOP, returning once every thread of the child has stopped (the
  // kernel reports the group stop to us, its parent); Resume: SIGCONT.
  absl::Status Pause();
  void Resume();
  const std::string& partition() const { return partition_; }
  void SetPartition(const std::string& partition) { partition_ = partition; }
  // The child's pid (-1 when not running).
  pid_t pid() const { return pid_; }

 private:
  std::string binary_, channel_dir_, state_dir_, identity_, config_text_;
  uint32_t domain_;
  std::string partition_;
  pid_t pid_ = -1;
  int stdout_fd_ = -1;
};

// Path of a runfile (the bridge binary) given its workspace-relative path.
std::string RunfilePath(const std::string& relative);

}  // namespace lockless::bridge

#endif  // LOCKLESS_TOOLS_BRIDGE_BRIDGE_PROCESS_H_
