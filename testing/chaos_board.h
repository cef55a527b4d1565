// ChaosBoard: what the chaos suite's children report to their supervisor,
// in one shared anonymous mapping made before the first fork. Test-only.
//
// Children may be SIGKILLed between any two instructions, so every field is
// meaningful on its own (a count, a phase), written with a relaxed atomic
// store or a single fetch_add. The supervisor reads a child's fields once it
// has reaped the child (waitpid orders all of the child's stores before it),
// except `phase`, which it samples while the child runs only to say where a
// kill landed. Failure texts are plain bytes written before `phase` becomes
// kFailed and read only after the child is reaped.
#ifndef LOCKLESS_TESTING_CHAOS_BOARD_H_
#define LOCKLESS_TESTING_CHAOS_BOARD_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace lockless {
namespace testing {

enum class StreamPhase : uint32_t {
  kUnused = 0,    // Record not handed to any child.
  kStarting,      // Process forked, opening the channel.
  kMakingSender,  // In (or between retries of) MakeSender.
  kSending,       // Owns a Sender, sending.
  kFailed,        // Gave up; `failure` says why.
};
const char* StreamPhaseName(StreamPhase phase);

inline constexpr size_t kFailureTextBytes = 480;

// One Sender (one thread of one sender process incarnation).
struct alignas(64) StreamRecord {
  std::atomic<StreamPhase> phase;
  std::atomic<uint32_t> stream;  // Stream id in its messages.
  // Calls made (including ResourceExhausted ones), and how many of them
  // returned ResourceExhausted.
  std::atomic<uint64_t> make_sender_calls;
  std::atomic<uint64_t> resource_exhausted;
  // From the first MakeSender call to the successful return (retries
  // included); -1 until then.
  std::atomic<int64_t> claim_ns;
  // Messages sent with kOk.
  std::atomic<uint64_t> sent;
  char failure[kFailureTextBytes];
};

// The reader process: counts are published every few hundred reads and when
// it stops, so a killed reader still leaves them roughly right.
struct alignas(64) ReaderRecord {
  std::atomic<uint32_t> stop_requested;  // Supervisor -> reader.
  std::atomic<uint32_t> failed;
  std::atomic<uint64_t> good;
  std::atomic<uint64_t> too_old;
  std::atomic<uint64_t> nothing_new;
  char failure[kFailureTextBytes];
};

// The final check's process.
struct alignas(64) CheckerRecord {
  std::atomic<uint32_t> claimed;    // Sender slots claimed.
  std::atomic<uint32_t> ring_good;  // Ring indices read back GOOD and valid.
  char failure[kFailureTextBytes];
};

struct alignas(64) BoardHeader {
  // Stream ids handed out so far (ids are never reused). The supervisor
  // advances it before forking the process that uses them, so a reader that
  // loads it after reading a message sees that message's stream counted.
  std::atomic<uint32_t> streams_started;
  // MakeSender calls whose duration was logged (may exceed the capacity:
  // the excess is counted, not stored).
  std::atomic<uint64_t> calls_logged;
  ReaderRecord reader;
  CheckerRecord checker;
};

class ChaosBoard {
 public:
  static absl::StatusOr<std::unique_ptr<ChaosBoard>> Create(
      uint32_t num_stream_records, uint64_t call_log_capacity);
  ~ChaosBoard();
  ChaosBoard(const ChaosBoard&) = delete;
  ChaosBoard& operator=(const ChaosBoard&) = delete;

  BoardHeader& header() const { return *header_; }
  StreamRecord& stream_record(uint32_t i) const { return records_[i]; }
  uint32_t num_stream_records() const { return num_records_; }
  // Supervisor side: readies record `i` (no child using it) for `stream`.
  void ResetStreamRecord(uint32_t i, uint32_t stream) const;

  // Child side: logs the duration of one MakeSender call (any outcome).
  void LogMakeSenderCall(int64_t duration_ns) const;
  // Supervisor side, with no child running: every logged duration.
  std::vector<int64_t> MakeSenderCallDurations() const;

 private:
  ChaosBoard(void* memory, size_t size_bytes, uint32_t num_records,
             uint64_t call_log_capacity);

  void* memory_;
  size_t size_bytes_;
  BoardHeader* header_;
  StreamRecord* records_;
  uint32_t num_records_;
  std::atomic<int64_t>* call_log_;
  uint64_t call_log_capacity_;
};

// Copies `text` into a failure buffer (truncated, NUL-terminated).
void WriteFailureText(std::string_view text, char (&buffer)[kFailureTextBytes]);
std::string ReadFailureText(const char (&buffer)[kFailureTextBytes]);

}  // namespace testing
}  // namespace lockless

#endif  // LOCKLESS_TESTING_CHAOS_BOARD_H_
