#include "testing/internal/explorer_payload.h"

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace lockless::testing::internal {
namespace {

constexpr unsigned char kPayloadMagic = 0xa7;

uint32_t Fnv1a(const unsigned char* data, size_t length) {
  uint32_t hash = 2166136261u;
  for (size_t i = 0; i < length; ++i) hash = (hash ^ data[i]) * 16777619u;
  return hash;
}

unsigned char PatternByte(int actor, int seq, size_t i) {
  return static_cast<unsigned char>(actor * 37 + seq * 11 + i * 13 + 5);
}

std::string ActorName(int actor) {
  if (actor == kSetupPayloadActor) return "setup";
  if (actor == kCheckPayloadActor) return "check";
  if (actor >= kFirstRecovererPayloadActor) {
    return absl::StrCat("r", actor - kFirstRecovererPayloadActor);
  }
  return absl::StrCat("s", actor);
}

}  // namespace

size_t PayloadLength(int actor, int seq, size_t max_bytes) {
  const size_t span =
      std::min(max_bytes, kMaxPayloadBytes) - kMinPayloadBytes + 1;
  return kMinPayloadBytes + static_cast<size_t>(actor * 7 + seq * 5) % span;
}

void FillPayload(int actor, int seq, size_t length, unsigned char* out) {
  out[0] = kPayloadMagic;
  out[1] = static_cast<unsigned char>(actor);
  out[2] = static_cast<unsigned char>(seq);
  out[3] = static_cast<unsigned char>(length);
  for (size_t i = 4; i + 4 < length; ++i) out[i] = PatternByte(actor, seq, i);
  const uint32_t hash = Fnv1a(out, length - 4);
  std::memcpy(out + length - 4, &hash, sizeof(hash));
}

std::string PayloadBytes(int actor, int seq, size_t max_bytes) {
  std::string bytes(PayloadLength(actor, seq, max_bytes), '\0');
  FillPayload(actor, seq, bytes.size(),
              reinterpret_cast<unsigned char*>(bytes.data()));
  return bytes;
}

std::string PayloadName(PayloadId id) {
  return absl::StrCat(ActorName(id.actor), "#", id.seq);
}

absl::StatusOr<PayloadId> DecodePayload(const std::string& bytes) {
  const auto* data = reinterpret_cast<const unsigned char*>(bytes.data());
  const size_t length = bytes.size();
  if (length < kMinPayloadBytes || length > kMaxPayloadBytes) {
    return absl::DataLossError(absl::StrCat("length ", length));
  }
  if (data[0] != kPayloadMagic || data[3] != length) {
    return absl::DataLossError("bad magic or length byte");
  }
  const int actor = data[1];
  const int seq = data[2];
  for (size_t i = 4; i + 4 < length; ++i) {
    if (data[i] != PatternByte(actor, seq, i)) {
      return absl::DataLossError(absl::StrCat("byte ", i, " differs"));
    }
  }
  uint32_t hash;
  std::memcpy(&hash, data + length - 4, sizeof(hash));
  if (hash != Fnv1a(data, length - 4)) {
    return absl::DataLossError("checksum mismatch");
  }
  return PayloadId{actor, seq};
}

}  // namespace lockless::testing::internal
