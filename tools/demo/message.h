// The message every producer sends: {text, producer id, magic, sequence,
// send time}, 48 bytes.
//
// The text prefix ("P1 seq 4711", space padded) makes the payload readable in
// a channel dump; the consumer re-derives it from the binary fields with
// FormatText, so a torn or mixed-up message does not pass as a good one.
// Plain data: copied into and out of the queue with memcpy.
#ifndef LOCKLESS_TOOLS_DEMO_MESSAGE_H_
#define LOCKLESS_TOOLS_DEMO_MESSAGE_H_

#include <cstdint>

namespace lockless {
namespace demo {

constexpr uint32_t kMessageMagic = 0xdec0de01u;

struct DemoMessage {
  char text[24];  // "P1 seq 4711", space padded
  uint32_t producer;
  uint32_t magic;
  uint64_t sequence;
  int64_t send_time_ns;  // producer's CLOCK_MONOTONIC just before Send
};
static_assert(sizeof(DemoMessage) == 48);

// Writes "P<producer> seq <sequence>" into `text`, padded with spaces and
// truncated to its 24 bytes (no terminating NUL). No allocation.
void FormatText(uint32_t producer, uint64_t sequence, char (&text)[24]);

}  // namespace demo
}  // namespace lockless

#endif  // LOCKLESS_TOOLS_DEMO_MESSAGE_H_
