// The two rulers of tools/benchmark: transports with no robustness at all,
// measured by the same driver in the same run, so every figure of ours can
// be given as a multiple of what the hardware allows.
//
//   CacheLineFloor: one cache line bounced between the two processes. The
//     line holds a sequence word and the message's first 8 bytes (the
//     driver's stamp or sequence number, which the driver repeats in the
//     message's last 8 bytes; the receiver rebuilds both copies and nothing
//     else). The sender waits until the receiver has taken the previous
//     message (a second line), writes the stamp and bumps the sequence; the
//     receiver spins on the sequence. So at every message size one-way
//     latency is one cache-line transfer between the two cores: the floor
//     no shared-memory transport can beat. It does not move the payload.
//   SpscRing: a minimal single-producer single-consumer ring (Lamport's, with
//     each side caching the other's index, as rigtorp's SPSCQueue): slots of
//     the message size back to back, the head and tail indices on their own
//     lines. It blocks the sender when full (it never loses a message). What a
//     plain shm ring reaches on these cores: the throughput ruler.
//
// Both live in an anonymous MAP_SHARED mapping made before fork. Neither
// survives the death of a side, nor supports more than one sender or reader.
//
// Thread-safety: none (see Transport).
#ifndef LOCKLESS_TOOLS_BENCHMARK_RULERS_H_
#define LOCKLESS_TOOLS_BENCHMARK_RULERS_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include "tools/benchmark_transport.h"

namespace lockless {
namespace benchmark_tool {

// An anonymous shared mapping, unmapped on destruction.
class SharedMapping {
 public:
  SharedMapping() = default;
  ~SharedMapping();
  SharedMapping(const SharedMapping&) = delete;
  SharedMapping& operator=(const SharedMapping&) = delete;

  absl::Status Map(size_t bytes);
  unsigned char* data() const { return data_; }

 private:
  unsigned char* data_ = nullptr;
  size_t bytes_ = 0;
};

class CacheLineFloorTransport : public Transport {
 public:
  absl::Status Create(size_t message_bytes) override;
  absl::Status StartSender() override { return absl::OkStatus(); }
  absl::Status StartReceiver() override { return absl::OkStatus(); }
  bool Send(const void* message) override;
  bool Receive(void* message) override;
  std::string settings() const override;

 private:
  size_t message_bytes_ = 0;
  SharedMapping memory_;
  uint64_t sent_ = 0;      // sender: messages sent
  uint64_t received_ = 0;  // receiver: messages received
};

class SpscRingTransport : public Transport {
 public:
  explicit SpscRingTransport(uint32_t slots) : slots_(slots) {}
  absl::Status Create(size_t message_bytes) override;
  absl::Status StartSender() override { return absl::OkStatus(); }
  absl::Status StartReceiver() override { return absl::OkStatus(); }
  bool Send(const void* message) override;
  bool Receive(void* message) override;
  std::string settings() const override;

 private:
  const uint32_t slots_;
  size_t message_bytes_ = 0;
  size_t stride_bytes_ = 0;
  SharedMapping memory_;
  // Process-local copies: what this side has done, and its last view of the
  // other side's index (re-read only when that view says full / empty).
  uint64_t head_ = 0;         // sender
  uint64_t cached_tail_ = 0;  // sender
  uint64_t tail_ = 0;         // receiver
  uint64_t cached_head_ = 0;  // receiver
};

}  // namespace benchmark_tool
}  // namespace lockless

#endif  // LOCKLESS_TOOLS_BENCHMARK_RULERS_H_
