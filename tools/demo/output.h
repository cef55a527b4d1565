// How every process of the demo writes to stdout.
//
// Contract: each call is one write(2) of whole lines (retried on EINTR and
// short writes), so lines from different processes never interleave
// mid-line; nothing is buffered in stdio, so a forked child inherits no
// pending output. A failed write (closed pipe) drops the rest of the text
// silently: the demo ignores SIGPIPE and keeps going to clean up.
#ifndef LOCKLESS_TOOLS_DEMO_OUTPUT_H_
#define LOCKLESS_TOOLS_DEMO_OUTPUT_H_

#include <cstdint>
#include <string>

namespace lockless {
namespace demo {

// Writes `text` as is.
void Out(const std::string& text);

// Sets the run's start (a NowNs() value) that Event's times count from.
// Call once in the parent before forking; children inherit it. Before it is
// set, events show time 0.
void StartEventClock(int64_t t0_ns);

// One event line: "[  3.001] who       text\n", the time in seconds since
// StartEventClock.
void Event(const std::string& who, const std::string& text);

}  // namespace demo
}  // namespace lockless

#endif  // LOCKLESS_TOOLS_DEMO_OUTPUT_H_
