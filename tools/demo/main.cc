// The demo: the library doing its real job, in separate processes over one
// named channel in the channel directory ($LOCKLESS_SHM_DIR, else /dev/shm).
//
//   parent  creates <dir>/lockless_demo_<pid>_<tag> (3 sender slots, 2 watchers)
//   |- consumer   registers a watcher, sleeps on a signalfd, reads every
//   |             message in queue order, checks each producer's stream
//   |- P0 P1 P2   send {id, sequence, time} at 2 kHz each, waking the
//   |             consumer after every 4 messages
//   |- ~3 s in:   SIGKILL P1 mid-stream. By default the kill is aimed: the
//   |             parent puts itself and P1 on different CPUs, asks P1 for a
//   |             256-message burst and kills it as it starts, so P1 usually
//   |             dies inside Send() (unaimed it dies asleep: a send is under
//   |             1 us of a 500 us period).
//   `- P3         replaces P1. All 3 sender slots were taken (P1's still owned
//                 by its dead thread, marked OWNER_DIED by the kernel), so its
//                 MakeSender succeeds only by recovering P1's slot.
//
// Producer ids: the replacement gets a new id (P3) and starts its sequence at
// 0, so every stream is checked on its own: P1's stream must end cleanly at
// the message it was killed in, P3's must be complete.
//
// At the end the consumer prints a summary (sent per producer from a shared
// stats page, received, gaps, TOO_OLD, recoveries, wake-ups, latency), the
// parent prints the channel through the memory printer (what `dump` shows)
// and removes the channel. Exit code 0 only when every check passed.
//
// Where to read on, one role per file:
//   scenario.h       the parent's script: the steps above, in order
//   producer.h       a producer process
//   consumer.h       the consumer process and its per-message checks
//   report.h         the banner, the table, the summary's checks, the dump
//   supervisor.h     forking, reaping, interrupts, cleanup on every exit
//   channel_files.h  the run's channel name, its lock, killed runs' leftovers
//   shared_stats.h   the page the processes share besides the channel
//   message.h        the message sent; options.h, clock.h, output.h, tally.h
//
// This file: the command line, checked, turned into DemoOptions.
#include <algorithm>
#include <string>

#include <gflags/gflags.h>

#include "ipc/shm_channel.h"
#include "tools/demo/channel_files.h"
#include "tools/demo/options.h"
#include "tools/demo/output.h"
#include "tools/demo/scenario.h"

DEFINE_double(duration_s, 8.0, "How long the producers send, in seconds.");
DEFINE_double(kill_after_s, 3.0,
              "When to SIGKILL producer P1 (capped at half of --duration_s).");
DEFINE_int32(rate_hz, 2000, "Messages per second sent by each producer.");
DEFINE_int32(batch, 4, "Producers wake the consumer after this many messages.");
DEFINE_int32(queue_size, 1024,
             "Messages kept in the channel's ring (at 6 kHz in total, 1024 "
             "lets the consumer stall ~170 ms before it sees TOO_OLD).");
DEFINE_string(channel, "",
              "Channel name (default lockless_demo_<pid>); removed at exit.");
DEFINE_int32(dump_messages, 3, "How many of the latest messages to dump.");
DEFINE_bool(kill_in_send, true,
            "Aim the SIGKILL at Send(): P1 sends a 256-message burst and is "
            "killed as it starts (else it dies wherever it is, usually "
            "asleep).");

int main(int argc, char** argv) {
  using lockless::demo::Out;
  gflags::SetUsageMessage(
      "Producers, a killed producer, recovery and a woken consumer over one "
      "shared-memory channel.");
  gflags::ParseCommandLineFlags(&argc, &argv, true);
  if (FLAGS_duration_s < 1.0 || FLAGS_duration_s > 3600) {
    Out("--duration_s must be in [1, 3600]\n");
    return 2;
  }
  if (FLAGS_rate_hz < 1 || FLAGS_rate_hz > 100000 || FLAGS_batch < 1 ||
      FLAGS_queue_size < 1) {
    Out("--rate_hz must be in [1, 100000], --batch and --queue_size >= 1\n");
    return 2;
  }
  lockless::demo::DemoOptions options;
  options.duration_s = FLAGS_duration_s;
  options.kill_at_s =
      std::max(0.2, std::min(FLAGS_kill_after_s, FLAGS_duration_s / 2));
  options.rate_hz = FLAGS_rate_hz;
  options.batch = FLAGS_batch;
  options.queue_size = FLAGS_queue_size;
  options.dump_messages = FLAGS_dump_messages;
  options.kill_in_send = FLAGS_kill_in_send;
  options.generated_channel_name = FLAGS_channel.empty();
  options.channel_name = options.generated_channel_name
                             ? lockless::demo::NewRunChannelName()
                             : FLAGS_channel;
  options.channel.directory = lockless::DefaultChannelDirectory();
  return lockless::demo::RunDemo(options);
}
