// The messages of the chaos suite (testing/chaos_test.cc), and the checks a
// reader applies to them. Test-only.
//
// Every message names its stream (one Sender of one sender-process
// incarnation) and its sequence number in that stream, and carries a checksum
// over everything else, so a reader tells a torn, mislabelled or misordered
// message from a good one without knowing who sent what:
//
//   bytes [0, 8)    checksum of bytes [8, length)
//   bytes [8, 12)   stream id
//   bytes [12, 16)  length (must equal the length Read reports)
//   bytes [16, 24)  sequence number in the stream (0, 1, 2, ...)
//   bytes [24, length)  filler derived from (stream, sequence)
//
// Lengths vary with (stream, sequence) between kChaosHeaderBytes and the
// capacity, so a reader handed another message's length fails the check.
#ifndef LOCKLESS_TESTING_CHAOS_PAYLOAD_H_
#define LOCKLESS_TESTING_CHAOS_PAYLOAD_H_

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "ipc/lockless_queue.h"

namespace lockless {
namespace testing {

inline constexpr size_t kChaosHeaderBytes = 24;

// Writes message `sequence` of `stream` into `data` (`capacity` bytes, at
// least kChaosHeaderBytes) and returns its length (<= capacity).
size_t FillChaosMessage(uint32_t stream, uint64_t sequence, void* data,
                        size_t capacity);

struct ChaosMessageId {
  uint32_t stream = 0;
  uint64_t sequence = 0;
};

// Checks a message read back with `length` bytes: header length, checksum.
// DataLoss (with what is wrong) for a message no sender wrote.
absl::StatusOr<ChaosMessageId> CheckChaosMessage(const void* data,
                                                 size_t length);

// What a reader following the ring must observe, as it reads GOOD messages
// in increasing queue-index order (possibly skipping ranges it was too slow
// for): per stream, sequence numbers strictly increase (each Sender sends in
// order, one message at a time); along the ring, monotonic send times never
// decrease (a send stamps its time after the previous index was published).
class RingOrderChecker {
 public:
  // Checks and records one GOOD read. Stream ids must be below
  // `streams_started` (how many streams exist so far; a larger id is an
  // error, so a corrupt id cannot make this allocate). FailedPrecondition on
  // a violation.
  absl::Status Observe(const MessageInfo& info, const ChaosMessageId& id,
                       uint32_t streams_started);

 private:
  // Per stream: 1 + the last sequence read (0: nothing read yet).
  std::vector<uint64_t> next_sequence_;
  std::chrono::steady_clock::time_point last_sent_time_{};
};

}  // namespace testing
}  // namespace lockless

#endif  // LOCKLESS_TESTING_CHAOS_PAYLOAD_H_
