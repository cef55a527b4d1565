// The processes of the chaos suite (testing/chaos_test.cc): senders, the
// reader, and the final check. Test-only.
//
// Each function is the body of a forked child (see ChildGroup::Spawn). It
// opens the channel by name as any process would, reports everything through
// the ChaosBoard, and returns its exit code. Each arms an alarm() watchdog
// and re-arms it only while it makes progress, so a child stuck for hang_s
// seconds (a MakeSender that never returns, a Send that spins) dies of
// SIGALRM, which the supervisor reports as a hang.
#ifndef LOCKLESS_TESTING_CHAOS_CHILDREN_H_
#define LOCKLESS_TESTING_CHAOS_CHILDREN_H_

#include <cstdint>
#include <string>

#include "ipc/queue_config.h"
#include "ipc/shm_channel.h"
#include "testing/chaos_board.h"

namespace lockless {
namespace testing {

inline constexpr int kChildOk = 0;
inline constexpr int kChildFailed = 3;

struct ChildContext {
  std::string channel_name;
  ChannelOptions channel_options;
  QueueConfig config;
  const ChaosBoard* board = nullptr;
  int hang_s = 20;
};

// A sender process: `num_threads` threads, thread t using stream record
// `first_record + t` (already reset for its stream), each making its own
// Sender (retrying ResourceExhausted, counted) and sending checksummed,
// numbered messages as fast as it can, alternating copying and zero-copy
// sends. Runs until killed; returns kChildFailed (after writing the reason
// into the record) when MakeSender fails otherwise, or a Send does not
// return kOk.
int RunSenderProcess(const ChildContext& context, uint32_t first_record,
                     int num_threads);

// The reader (opens the channel read-only): follows the ring from its newest
// message, checks every GOOD
// read (checksum, length, queue index, RingOrderChecker), resynchronises
// after TOO_OLD, until the supervisor sets reader.stop_requested. kChildOk,
// or kChildFailed with the first problem in reader.failure.
int RunReaderProcess(const ChildContext& context);

// The final check, on a channel whose senders are all dead: claims every
// sender slot (all num_senders MakeSender calls must succeed at once), checks
// every message is owned exactly once (CheckEveryMessageOwnedOnce), sends
// one message from each claimed
// Sender (streams first_stream, first_stream + 1, ...; their queue indices
// must follow LatestQueueIndex exactly), reads back every index still in the
// ring (all GOOD, valid, in order, ending with the check's own messages), and
// releases the slots. kChildOk, or kChildFailed with checker.failure.
int RunFinalCheck(const ChildContext& context, uint32_t first_stream);

}  // namespace testing
}  // namespace lockless

#endif  // LOCKLESS_TESTING_CHAOS_CHILDREN_H_
