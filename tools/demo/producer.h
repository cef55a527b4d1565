// A producer process: opens the run's channel, takes a sender slot, and sends
// DemoMessages {id, sequence 0, 1, 2, ...} at options.rate_hz until
// stats->stop, waking the consumer after every options.batch messages.
//
// Contract:
//   - Runs in a forked child (supervisor.h's Spawn); the return value is the
//     child's exit code: 0 stopped normally; 2 could not open the channel;
//     3 MakeSender failed; 4 a Send failed. Setup errors are printed as an
//     event and flagged in stats->producer[id].setup_failed.
//   - Writes only stats->producer[id] (and stats->recoveries when it is the
//     replacement and got the victim's slot). Its phase and sent count say,
//     at any instant, where it is and which Sends returned: the parent reads
//     them to say where the victim died, the consumer to check its stream.
//   - When stats->producer[id].burst_request is set, it sends a burst of
//     back-to-back messages (min(256, queue_size / 4)) on its next period
//     and sets burst_active while it does: the parent's cue to SIGKILL it
//     inside Send(). It may be SIGKILLed at any instruction.
//   - `replacement`: says whether it got the victim's slot (recovery) and
//     counts it in stats->recoveries.
#ifndef LOCKLESS_TOOLS_DEMO_PRODUCER_H_
#define LOCKLESS_TOOLS_DEMO_PRODUCER_H_

#include "tools/demo/options.h"
#include "tools/demo/shared_stats.h"

namespace lockless {
namespace demo {

int RunProducer(const DemoOptions& options, SharedStats* stats, int id,
                bool replacement);

}  // namespace demo
}  // namespace lockless

#endif  // LOCKLESS_TOOLS_DEMO_PRODUCER_H_
