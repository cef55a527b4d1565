// What one demo run is: its parameters (from the command line), the roles'
// ids, and the channel configuration every process of the run opens.
//
// Contract: main.cc fills a DemoOptions once, before any fork; every other
// part takes it by const reference and never changes it (the forked children
// see the parent's copy). Nothing here is shared memory and nothing here
// makes a system call.
#ifndef LOCKLESS_TOOLS_DEMO_OPTIONS_H_
#define LOCKLESS_TOOLS_DEMO_OPTIONS_H_

#include <string>

#include "ipc/queue_config.h"
#include "ipc/shm_channel.h"

namespace lockless {
namespace demo {

// The roles. P0..P2 start together; P1 is the victim, SIGKILLed mid-stream;
// P3 replaces it with a new id (its own stream, from sequence 0).
constexpr int kInitialProducers = 3;  // P0, P1, P2
constexpr int kVictim = 1;            // P1 is killed
constexpr int kReplacement = 3;       // P3 replaces it
constexpr int kMaxProducers = 4;

// "P<id>": the name a producer goes by in events and in the supervisor.
std::string ProducerName(int id);

struct DemoOptions {
  double duration_s = 8.0;   // how long the producers send
  double kill_at_s = 3.0;    // when the victim is killed (< duration_s)
  int rate_hz = 2000;        // messages per second per producer
  int batch = 4;             // producers wake the consumer every `batch` msgs
  int queue_size = 1024;     // messages kept in the ring
  int dump_messages = 3;     // latest messages shown in the final dump
  bool kill_in_send = true;  // aim the SIGKILL at Send() (see scenario.h)
  // The run's channel name, and whether this run made it up (then channels
  // left by killed earlier runs are collected too; see channel_files.h).
  std::string channel_name;
  bool generated_channel_name = true;
  // How every process of the run opens, removes and finds its channel.
  // main.cc sets channel.directory once (DefaultChannelDirectory():
  // $LOCKLESS_SHM_DIR, else /dev/shm), so all of them use one directory.
  ChannelOptions channel;
};

// The channel every process of the run opens: one sender slot per
// concurrently running producer and no spare, so the replacement can only get
// a slot by recovering the dead producer's; 2 watchers; 64-byte messages.
QueueConfig DemoConfig(const DemoOptions& options);

}  // namespace demo
}  // namespace lockless

#endif  // LOCKLESS_TOOLS_DEMO_OPTIONS_H_
