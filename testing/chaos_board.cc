#include "testing/chaos_board.h"

#include <sys/mman.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/str_format.h"

namespace lockless {
namespace testing {
namespace {

size_t RoundUp(size_t n, size_t to) { return (n + to - 1) / to * to; }

}  // namespace

const char* StreamPhaseName(StreamPhase phase) {
  switch (phase) {
    case StreamPhase::kUnused:
      return "unused";
    case StreamPhase::kStarting:
      return "starting";
    case StreamPhase::kMakingSender:
      return "in MakeSender";
    case StreamPhase::kSending:
      return "sending";
    case StreamPhase::kFailed:
      return "failed";
  }
  return "unknown";
}

absl::StatusOr<std::unique_ptr<ChaosBoard>> ChaosBoard::Create(
    uint32_t num_stream_records, uint64_t call_log_capacity) {
  static_assert(std::atomic<StreamPhase>::is_always_lock_free);
  static_assert(std::atomic<int64_t>::is_always_lock_free);
  const size_t size_bytes =
      RoundUp(sizeof(BoardHeader) + num_stream_records * sizeof(StreamRecord) +
                  call_log_capacity * sizeof(std::atomic<int64_t>),
              4096);
  // Zero-filled: every record starts kUnused, every count at 0. Untouched
  // pages of the call log cost nothing.
  void* const memory = mmap(nullptr, size_bytes, PROT_READ | PROT_WRITE,
                            MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (memory == MAP_FAILED) {
    return absl::ResourceExhaustedError(absl::StrFormat(
        "mmap of %u bytes: %s", size_bytes, std::strerror(errno)));
  }
  return std::unique_ptr<ChaosBoard>(new ChaosBoard(
      memory, size_bytes, num_stream_records, call_log_capacity));
}

ChaosBoard::ChaosBoard(void* memory, size_t size_bytes, uint32_t num_records,
                       uint64_t call_log_capacity)
    : memory_(memory),
      size_bytes_(size_bytes),
      num_records_(num_records),
      call_log_capacity_(call_log_capacity) {
  // Lock-free atomics and plain bytes, for which the mapping's zero fill is
  // the initial value (as for the queue region itself); nothing to construct,
  // and the call log's pages stay untouched until used.
  unsigned char* at = static_cast<unsigned char*>(memory);
  header_ = reinterpret_cast<BoardHeader*>(at);
  at += sizeof(BoardHeader);
  records_ = reinterpret_cast<StreamRecord*>(at);
  at += num_records * sizeof(StreamRecord);
  call_log_ = reinterpret_cast<std::atomic<int64_t>*>(at);
}

void ChaosBoard::ResetStreamRecord(uint32_t i, uint32_t stream) const {
  StreamRecord& record = records_[i];
  // relaxed: no child uses the record now; fork orders these stores before
  // the child that gets it.
  record.stream.store(stream, std::memory_order_relaxed);
  record.make_sender_calls.store(0, std::memory_order_relaxed);
  record.resource_exhausted.store(0, std::memory_order_relaxed);
  record.claim_ns.store(-1, std::memory_order_relaxed);
  record.sent.store(0, std::memory_order_relaxed);
  record.failure[0] = '\0';
  record.phase.store(StreamPhase::kStarting, std::memory_order_relaxed);
}

ChaosBoard::~ChaosBoard() { munmap(memory_, size_bytes_); }

void ChaosBoard::LogMakeSenderCall(int64_t duration_ns) const {
  // relaxed: the supervisor reads the log after reaping every child.
  const uint64_t i =
      header_->calls_logged.fetch_add(1, std::memory_order_relaxed);
  // A real call takes > 0 ns; 0 marks a slot whose writer was killed first.
  if (i < call_log_capacity_) {
    call_log_[i].store(std::max<int64_t>(duration_ns, 1),
                       std::memory_order_relaxed);
  }
}

std::vector<int64_t> ChaosBoard::MakeSenderCallDurations() const {
  const uint64_t n =
      std::min<uint64_t>(header_->calls_logged.load(std::memory_order_relaxed),
                         call_log_capacity_);
  std::vector<int64_t> durations;
  durations.reserve(n);
  for (uint64_t i = 0; i < n; ++i) {
    const int64_t ns = call_log_[i].load(std::memory_order_relaxed);
    if (ns > 0) durations.push_back(ns);
  }
  return durations;
}

void WriteFailureText(std::string_view text,
                      char (&buffer)[kFailureTextBytes]) {
  const size_t n = std::min(text.size(), kFailureTextBytes - 1);
  std::memcpy(buffer, text.data(), n);
  buffer[n] = '\0';
}

std::string ReadFailureText(const char (&buffer)[kFailureTextBytes]) {
  return std::string(buffer, strnlen(buffer, kFailureTextBytes));
}

}  // namespace testing
}  // namespace lockless
