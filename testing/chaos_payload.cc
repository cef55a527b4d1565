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

// The word at byte `at` of a message of `length` bytes, zero-extended past
// the end.
uint64_t WordAt(const unsigned char* bytes, size_t at, size_t length) {
  uint64_t word = 0;
  std::memcpy(&word, bytes + at, std::min<size_t>(8, length - at));
  return word;
}

// Weight of the word at byte `at`: odd, so a change to any single word
// changes the sum.
uint64_t Weight(size_t at) { return (0x9e3779b97f4a7c15ull * (at + 1)) | 1; }

// A weighted sum, one multiply-add per word, then mixed: cheap enough that
// a sender spends its time in Send, not in making messages (recovery has to
// cope with senders that are almost always mid-send), while a torn, shifted
// or mislabelled message still fails it.
uint64_t Checksum(const unsigned char* bytes, size_t length) {
  uint64_t sum = length;
  for (size_t at = 8; at < length; at += 8) {
    sum += WordAt(bytes, at, length) * Weight(at);
  }
  return SplitMix64(sum);
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
  // Length and filler differ per (stream, sequence) at the cost of a few
  // multiplies and one add per word.
  const uint64_t key = (sequence + 1) * 0xd1b54a32d192ed03ull ^
                       (uint64_t{stream} + 1) * 0x9e3779b97f4a7c15ull;
  const size_t length =
      kChaosHeaderBytes + (key >> 32) % (capacity - kChaosHeaderBytes + 1);
  const Header header{0, stream, static_cast<uint32_t>(length), sequence};
  std::memcpy(bytes, &header, sizeof(header));
  uint64_t sum = length + WordAt(bytes, 8, length) * Weight(8) +
                 WordAt(bytes, 16, length) * Weight(16);
  uint64_t word = key;
  for (size_t at = kChaosHeaderBytes; at < length; at += 8) {
    word += 0x632be59bd9b4e019ull;
    const size_t n = std::min<size_t>(8, length - at);
    std::memcpy(bytes + at, &word, n);
    // What the reader will see: the word cut at the end of the message.
    const uint64_t seen = n == 8 ? word : word & ((uint64_t{1} << (8 * n)) - 1);
    sum += seen * Weight(at);
  }
  const uint64_t checksum = SplitMix64(sum);
  std::memcpy(bytes, &checksum, sizeof(checksum));
  return length;
}

absl::StatusOr<ChaosMessageId> CheckChaosMessage(const void* data,
                                                 size_t length) {
  const unsigned char* const bytes = static_cast<const unsigned char*>(data);
  if (length < kChaosHeaderBytes) {
    return absl::DataLossError(absl::StrFormat(
        "message of %u bytes, shorter than its header", length));
  }
  Header header;
  std::memcpy(&header, bytes, sizeof(header));
  if (header.length != length) {
    return absl::DataLossError(absl::StrFormat(
        "read %u bytes, the message says %u (stream %u sequence %u)", length,
        header.length, header.stream, header.sequence));
  }
  const uint64_t checksum = Checksum(bytes, length);
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
    next_sequence_.resize(
        std::max<size_t>(id.stream + 1, 2 * next_sequence_.size()));
  }
  uint64_t& next = next_sequence_[id.stream];
  if (id.sequence + 1 <= next) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "%s: stream %u sequence %u read after sequence %u (out of order)",
        info.queue_index.DebugString(), id.stream, id.sequence, next - 1));
  }
  next = id.sequence + 1;
  if (info.monotonic_sent_time < last_sent_time_) {
    return absl::FailedPreconditionError(
        absl::StrFormat("%s: sent %d ns before the message read before it",
                        info.queue_index.DebugString(),
                        (last_sent_time_ - info.monotonic_sent_time).count()));
  }
  last_sent_time_ = info.monotonic_sent_time;
  return absl::OkStatus();
}

}  // namespace testing
}  // namespace lockless
