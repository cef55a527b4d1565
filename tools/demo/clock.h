// The demo's one clock: CLOCK_MONOTONIC in nanoseconds, the same clock the
// queue stamps messages with (MessageInfo::monotonic_sent_time), so a
// reader's NowNs() minus a message's send time is its latency.
//
// Contract: every function is thread- and async-signal-safe in the sense
// that it only calls clock_gettime/nanosleep; none allocates. SleepNs
// sleeps the whole time even when a signal interrupts it.
#ifndef LOCKLESS_TOOLS_DEMO_CLOCK_H_
#define LOCKLESS_TOOLS_DEMO_CLOCK_H_

#include <time.h>

#include <cstdint>

namespace lockless {
namespace demo {

int64_t NowNs();
timespec ToTimespec(int64_t ns);
void SleepNs(int64_t ns);

}  // namespace demo
}  // namespace lockless

#endif  // LOCKLESS_TOOLS_DEMO_CLOCK_H_
