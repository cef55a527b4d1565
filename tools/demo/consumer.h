// The consumer process: registers a watcher, sleeps on a signalfd for the
// producers' wake-ups (100 ms poll timeout), reads every message in queue
// order and checks each producer's stream as it goes:
//   - each read returns the queue index asked for; nothing is reported new
//     below LatestQueueIndex();
//   - each message is whole: right length, magic and producer id, and its
//     text matches its binary fields (no torn or mixed-up message);
//   - per producer, sequences only increase and none is skipped (a skip is a
//     gap, unless the consumer fell behind and was told TOO_OLD).
// Once a second it prints a line of rates and latencies; when the parent sets
// stats->producers_done it drains what is left and prints the summary, whose
// end-of-run checks (report.h) compare what it received with what each
// producer says it sent.
//
// Contract: runs in a forked child (supervisor.h's Spawn), started before
// any producer; sets stats->consumer_ready once its watcher is registered,
// so no message sent after that is missed. Its return value is the child's
// exit code: 0 every check passed, 1 some check failed, 2 setup or poll
// failed (printed as an event). Problems are printed as events, the first
// five of each kind.
#ifndef LOCKLESS_TOOLS_DEMO_CONSUMER_H_
#define LOCKLESS_TOOLS_DEMO_CONSUMER_H_

#include "tools/demo/options.h"
#include "tools/demo/shared_stats.h"

namespace lockless {
namespace demo {

int RunConsumer(const DemoOptions& options, SharedStats* stats);

}  // namespace demo
}  // namespace lockless

#endif  // LOCKLESS_TOOLS_DEMO_CONSUMER_H_
