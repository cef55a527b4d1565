// Test-only, internal to the interleaving explorer: the payloads its actors
// send. Each names its sender and sequence number and carries a checksum, so
// a reader can tell an intact message from a torn or foreign one.
//
//   byte 0      magic (0xa7)
//   byte 1      payload actor: sender actor i is i, recoverer k is 16 + k,
//               0xee the parent's setup sends, 0xef its final send
//   byte 2      sequence number
//   byte 3      length (12..255)
//   4..len-5    a pattern derived from the three above
//   last 4      FNV-1a hash of everything before
//
// Thread-safety: plain functions. FillPayload is async-signal-safe.
#ifndef LOCKLESS_TESTING_INTERNAL_EXPLORER_PAYLOAD_H_
#define LOCKLESS_TESTING_INTERNAL_EXPLORER_PAYLOAD_H_

#include <cstddef>
#include <string>

#include "absl/status/statusor.h"

namespace lockless::testing::internal {

inline constexpr size_t kMinPayloadBytes = 12;
inline constexpr size_t kMaxPayloadBytes = 255;  // Length fits byte 3.
inline constexpr int kFirstRecovererPayloadActor = 16;
// Pinner actors send nothing; their payload numbers only keep them apart.
inline constexpr int kFirstPinnerPayloadActor = 48;
inline constexpr int kSetupPayloadActor = 0xee;
inline constexpr int kCheckPayloadActor = 0xef;

// The length of `actor`'s `seq`-th payload in messages of `max_bytes`
// (>= kMinPayloadBytes): varies, so copies make different stores.
size_t PayloadLength(int actor, int seq, size_t max_bytes);

// Writes the payload into `out` (`length` bytes).
void FillPayload(int actor, int seq, size_t length, unsigned char* out);

// The payload of PayloadLength(actor, seq, max_bytes) bytes.
std::string PayloadBytes(int actor, int seq, size_t max_bytes);

struct PayloadId {
  int actor;
  int seq;
  bool operator<(const PayloadId& other) const {
    return actor != other.actor ? actor < other.actor : seq < other.seq;
  }
};

// "s1#2", "r0#0", "setup#3".
std::string PayloadName(PayloadId id);

// Which payload `bytes` is, or DataLoss saying why it is not one intact.
absl::StatusOr<PayloadId> DecodePayload(const std::string& bytes);

}  // namespace lockless::testing::internal

#endif  // LOCKLESS_TESTING_INTERNAL_EXPLORER_PAYLOAD_H_
