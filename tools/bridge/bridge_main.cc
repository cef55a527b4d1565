// bridge: forwards lockless channels between machines over Cyclone DDS.
//
//   bridge --config=FILE [--dir=DIR] [--state_dir=DIR] [--network=system|
//          loopback] [--domain=N] [--stats_period_s=10] [--identity=NAME]
//
// Runs until SIGINT or SIGTERM; prints per-channel statistics every
// --stats_period_s seconds and on exit. See bridge.h for what it guarantees
// and bridge_config.h for the configuration file.
#include <signal.h>

#include <cstdio>

#include "gflags/gflags.h"
#include "tools/bridge/bridge.h"

DEFINE_string(config, "", "Bridge configuration file (bridge_config.h).");
DEFINE_string(dir, "",
              "Channel directory (default: $LOCKLESS_SHM_DIR, else "
              "/dev/shm).");
DEFINE_string(state_dir, "", "State directory (default: <dir>/.bridge).");
DEFINE_string(network, "system",
              "'system': Cyclone DDS's normal discovery on the machine's "
              "interfaces (or $CYCLONEDDS_URI), for robots; 'loopback': "
              "127.0.0.1 only, multicast off (tests, demos, one host).");
DEFINE_int32(domain, -1, "DDS domain id; overrides the config's 'domain'.");
DEFINE_int32(stats_period_s, 10,
             "Seconds between statistics printouts "
             "(0: only on exit).");
DEFINE_string(partition, "", "DDS partition (bridges match only within one).");
DEFINE_string(identity, "", "Bridge identity (default: <host>:<dir>).");

namespace {

void PrintStats(const lockless::bridge::Bridge& bridge, const char* when) {
  std::printf("bridge %s statistics (%s):\n", bridge.identity().c_str(), when);
  for (const auto& stats : bridge.Stats()) {
    std::printf("  %s\n", lockless::bridge::FormatStats(stats).c_str());
  }
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  gflags::SetUsageMessage("forwards lockless channels over Cyclone DDS");
  gflags::ParseCommandLineFlags(&argc, &argv, true);
  if (FLAGS_config.empty()) {
    std::fprintf(stderr, "bridge: --config=FILE is required\n");
    return 2;
  }
  absl::StatusOr<lockless::bridge::BridgeConfig> config =
      lockless::bridge::ReadBridgeConfig(FLAGS_config);
  if (!config.ok()) {
    std::fprintf(stderr, "bridge: %s\n", config.status().ToString().c_str());
    return 2;
  }
  lockless::bridge::BridgeOptions options;
  options.config = *config;
  if (FLAGS_domain >= 0) options.config.domain_id = FLAGS_domain;
  options.channel_directory = FLAGS_dir;
  options.state_directory = FLAGS_state_dir;
  options.identity = FLAGS_identity;
  options.partition = FLAGS_partition;
  if (FLAGS_network == "loopback") {
    options.network = lockless::bridge::DdsNetwork::kLoopbackOnly;
  } else if (FLAGS_network == "system") {
    options.network = lockless::bridge::DdsNetwork::kSystem;
  } else {
    std::fprintf(stderr, "bridge: --network must be system or loopback\n");
    return 2;
  }

  // SIGINT/SIGTERM arrive through a signalfd (blocked before any thread
  // starts, so every thread inherits the mask).
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  absl::StatusOr<std::unique_ptr<lockless::bridge::Bridge>> bridge =
      lockless::bridge::Bridge::Start(options);
  if (!bridge.ok()) {
    std::fprintf(stderr, "bridge: %s\n", bridge.status().ToString().c_str());
    return 1;
  }
  std::printf("bridge %s: running (%zu exports, %zu imports, domain %u)\n",
              (*bridge)->identity().c_str(), options.config.exports.size(),
              options.config.imports.size(), options.config.domain_id);
  std::fflush(stdout);
  for (;;) {
    siginfo_t info;
    timespec period{FLAGS_stats_period_s > 0 ? FLAGS_stats_period_s : 3600, 0};
    const int signal = sigtimedwait(&stop_signals, &info, &period);
    if (signal == SIGINT || signal == SIGTERM) break;
    if (FLAGS_stats_period_s > 0) PrintStats(**bridge, "periodic");
  }
  (*bridge)->Stop();
  PrintStats(**bridge, "on exit");
  return 0;
}
