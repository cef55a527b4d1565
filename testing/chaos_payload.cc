#include "testing/chaos_payload.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/str_format.h"

namespace lockless {
namespace testing {
namespace {

uint64_t SplitMix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

uint64_t MessageSeed(uint32_t stream, uint64_t sequence) {
  return SplitMix64((uint64_t{stream} << 40) ^ sequence);
}

// Word-at-a-time, so checksumming does not dominate a sender's loop; every
// byte (and its position) changes the result.
uint64_t Checksum(const unsigned char* bytes, size_t length) {
  uint64_t h = 0x243f6a8885a308d3ull ^ length;
  size_t i = 0;
  for (; i + 8 <= length; i += 8) {
    uint64_t word;
    std::memcpy(&word, bytes + i, 8);
    h = SplitMix64(h ^ word);
  }
  uint64_t tail = 0;
  std::memcpy(&tail, bytes + i, length - i);
  return SplitMix64(h ^ tail ^ (uint64_t{length - i} << 56));
}

struct Header {
  uint64_t checksum;
  uint32_t stream;
  uint32_t length;
  uint64_t sequence;
};
static_assert(sizeof(Header) == kChaosHeaderBytes);

}  // namespace

size_t FillChaosMessage(uint32_t stream, uint64_t sequence, void* data,
                        size_t capacity) {
  unsigned char* const bytes = static_cast<unsigned char*>(data);
  uint64_t random = MessageSeed(stream, sequence);
  const size_t length =
      kChaosHeaderBytes + random % (capacity - kChaosHeaderBytes + 1);
  for (size_t i = kChaosHeaderBytes; i < length; i += 8) {
    random = SplitMix64(random);
    std::memcpy(bytes + i, &random, std::min<size_t>(8, length - i));
  }
  Header header{0, stream, static_cast<uint32_t>(length), sequence};
  std::memcpy(bytes, &header, sizeof(header));
  header.checksum = Checksum(bytes + 8, length - 8);
  std::memcpy(bytes, &header.checksum, 8);
  return length;
}

absl::StatusOr<ChaosMessageId> CheckChaosMessage(const void* data,
                                                 size_t length) {
  const unsigned char* const bytes = static_cast<const unsigned char*>(data);
  if (length < kChaosHeaderBytes) {
    return absl::DataLossError(
        absl::StrFormat("message of %u bytes, shorter than its header",
                        length));
  }
  Header header;
  std::memcpy(&header, bytes, sizeof(header));
  if (header.length != length) {
    return absl::DataLossError(absl::StrFormat(
        "read %u bytes, the message says %u (stream %u sequence %u)", length,
        header.length, header.stream, header.sequence));
  }
  const uint64_t checksum = Checksum(bytes + 8, length - 8);
  if (checksum != header.checksum) {
    return absl::DataLossError(absl::StrFormat(
        "bad checksum 0x%016x (computed 0x%016x) in a %u-byte message "
        "claiming stream %u sequence %u",
        header.checksum, checksum, length, header.stream, header.sequence));
  }
  return ChaosMessageId{header.stream, header.sequence};
}

absl::Status RingOrderChecker::Observe(const MessageInfo& info,
                                       const ChaosMessageId& id,
                                       uint32_t streams_started) {
  if (id.stream >= streams_started) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "%s: stream %u was never started (only %u were)",
        info.queue_index.DebugString(), id.stream, streams_started));
  }
  if (id.stream >= next_sequence_.size()) {
    next_sequence_.resize(std::max<size_t>(id.stream + 1,
                                           2 * next_sequence_.size()));
  }
  uint64_t& next = next_sequence_[id.stream];
  if (id.sequence + 1 <= next) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "%s: stream %u sequence %u read after sequence %u (out of order)",
        info.queue_index.DebugString(), id.stream, id.sequence, next - 1));
  }
  next = id.sequence + 1;
  if (info.monotonic_sent_time < last_sent_time_) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "%s: sent %d ns before the message read before it",
        info.queue_index.DebugString(),
        (last_sent_time_ - info.monotonic_sent_time).count()));
  }
  last_sent_time_ = info.monotonic_sent_time;
  return absl::OkStatus();
}

}  // namespace testing
}  // namespace lockless
