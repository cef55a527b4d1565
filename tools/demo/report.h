// Everything the demo prints beyond one-line events: the parent's banner, the
// consumer's once-a-second table and its end-of-run summary with the checks
// that compare what was received with what was sent, the channel dump, and
// the RESULT line.
//
// Contract: each function prints through output.h (whole lines, one write
// each) and returns; none blocks, none touches the channel except PrintDump,
// which only reads it. Not thread-safe (one caller per process: the parent,
// or the consumer for the interval lines and the summary).
#ifndef LOCKLESS_TOOLS_DEMO_REPORT_H_
#define LOCKLESS_TOOLS_DEMO_REPORT_H_

#include <string>

#include "ipc/queue_config.h"
#include "ipc/shm_channel.h"
#include "tools/demo/options.h"
#include "tools/demo/shared_stats.h"
#include "tools/demo/tally.h"

namespace lockless {
namespace demo {

// The run's plan: producers, channel, configuration, rates and the kill.
// `replaced_stale`: a stale channel of the same name was removed first;
// `dead_runs`: channels of killed earlier runs removed.
void PrintBanner(const DemoOptions& options, const QueueConfig& config,
                 bool replaced_stale, int dead_runs);

// The column heads of the once-a-second table.
void PrintIntervalHeader();

// One row: messages per second per producer, wake-ups per second, latency
// p50 and max, TOO_OLD count, over the `interval_s` that end at `t_s`; then
// resets the tally's interval counts for the next interval.
void PrintIntervalLine(double t_s, double interval_s, ConsumerTally* tally);

// The end-of-run table, one row per producer, and the checks: every stream
// complete and in order (the victim's may end at the message it was killed
// in, and the summary says whether that one was published), no torn,
// corrupted or out-of-order message, no anomaly, no TOO_OLD, exactly one
// recovery. Prints "consumer checks: PASS" or "consumer checks: FAIL:" with
// each failure, and returns whether all passed. Call once, after every
// producer exited (it reads their final counts from `stats`).
bool PrintSummary(const SharedStats& stats, ConsumerTally* tally);

// The channel through the memory printer (what `dump --summary` shows), then
// the latest options.dump_messages messages. False (after printing "DUMP
// FAILED") if the printer refused the region.
bool PrintDump(const Channel& channel, const DemoOptions& options);

// "RESULT: FAIL: <why>" / "RESULT: PASS: ...", after a blank line.
void PrintFailed(const std::string& why);
void PrintPassed();

}  // namespace demo
}  // namespace lockless

#endif  // LOCKLESS_TOOLS_DEMO_REPORT_H_
