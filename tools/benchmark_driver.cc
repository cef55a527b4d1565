#include "tools/benchmark_driver.h"

#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <vector>

#include "absl/strings/str_format.h"
#include "tools/benchmark_system.h"

namespace lockless {
namespace benchmark_tool {
namespace {

constexpr uint64_t kEndMarker = ~uint64_t{0};
constexpr int64_t kAckTimeoutNs = int64_t{10} * 1'000'000'000;

// Receiver state the parent watches while the child starts.
enum ReceiverState : uint32_t { kStarting = 0, kReady = 1, kFailed = 2 };

// Lives in an anonymous MAP_SHARED mapping created before fork. Each field is
// written by one side only. The child's results are plain fields: the parent
// reads them after waitpid, which orders them after the child's exit.
struct ControlBlock {
  // Child writes (release) once StartReceiver returned; parent acquires.
  alignas(64) std::atomic<uint32_t> receiver_state{kStarting};
  // Child: latency messages received so far (release, pairs with the
  // parent's acquire before it sends the next one). Own cache line: the
  // parent spins on it.
  alignas(64) std::atomic<uint64_t> acked{0};

  alignas(64) uint64_t received = 0;
  uint64_t torn = 0;
  uint64_t reordered = 0;
  uint64_t too_old_events = 0;
  int64_t first_ns = 0;
  int64_t last_ns = 0;
  char error[256] = {};
  // Followed by the latency samples (int64_t ns each).
};

// The control block plus `samples` latency slots, shared with the child.
class SharedControl {
 public:
  explicit SharedControl(size_t samples)
      : bytes_(sizeof(ControlBlock) + samples * sizeof(int64_t)) {
    memory_ = mmap(nullptr, bytes_, PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (memory_ == MAP_FAILED) {
      std::perror("benchmark: mmap control block");
      std::abort();
    }
    new (memory_) ControlBlock();
  }
  ~SharedControl() { munmap(memory_, bytes_); }
  SharedControl(const SharedControl&) = delete;
  SharedControl& operator=(const SharedControl&) = delete;

  ControlBlock* block() { return static_cast<ControlBlock*>(memory_); }
  int64_t* samples() {
    return reinterpret_cast<int64_t*>(static_cast<char*>(memory_) +
                                      sizeof(ControlBlock));
  }

 private:
  size_t bytes_;
  void* memory_;
};

// Writes `word` at both ends of the message (see the header's "torn").
void Stamp(char* message, size_t bytes, uint64_t word) {
  std::memcpy(message, &word, sizeof(word));
  if (bytes >= 2 * sizeof(word)) {
    std::memcpy(message + bytes - sizeof(word), &word, sizeof(word));
  }
}

// The stamp; sets *torn if the two copies differ.
uint64_t ReadStamp(const char* message, size_t bytes, bool* torn) {
  uint64_t head;
  std::memcpy(&head, message, sizeof(head));
  *torn = false;
  if (bytes >= 2 * sizeof(head)) {
    uint64_t tail;
    std::memcpy(&tail, message + bytes - sizeof(tail), sizeof(tail));
    *torn = tail != head;
  }
  return head;
}

void ChildFail(ControlBlock* block, const std::string& why) {
  std::snprintf(block->error, sizeof(block->error), "%s", why.c_str());
}

void OnWatchdog(int) {
  static const char kMessage[] =
      "benchmark: watchdog: a cross-process measurement is stuck, aborting\n";
  (void)!write(STDERR_FILENO, kMessage, sizeof(kMessage) - 1);
  _exit(3);
}

// Forks a receiver running `receive` (which returns false on failure, with
// the reason in the control block) and runs `send` in this process. Returns
// the first failure of either side.
template <typename SendFn, typename ReceiveFn>
absl::Status RunPair(Transport& transport, ControlBlock* block,
                     const CrossProcessOptions& options, SendFn send,
                     ReceiveFn receive) {
  std::fflush(nullptr);  // the child must not inherit unflushed output
  const pid_t child = fork();
  if (child < 0) return absl::InternalError("fork failed");
  if (child == 0) {
    // Die with the parent, and on our own if a measurement hangs.
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    signal(SIGALRM, SIG_DFL);
    alarm(options.watchdog_s);
    if (options.pin) PinCurrentThreadToCpu(options.receiver_cpu);
    const absl::Status started = transport.StartReceiver();
    if (!started.ok()) {
      ChildFail(block, std::string(started.message()));
      block->receiver_state.store(kFailed, std::memory_order_release);
      _exit(1);
    }
    block->receiver_state.store(kReady, std::memory_order_release);
    const bool ok = receive();
    if (!ok && block->error[0] == '\0') ChildFail(block, transport.error());
    _exit(ok ? 0 : 1);
  }

  signal(SIGALRM, &OnWatchdog);
  alarm(options.watchdog_s);
  const cpu_set_t affinity = CurrentAffinity();
  if (options.pin) PinCurrentThreadToCpu(options.sender_cpu);

  absl::Status status = transport.StartSender();
  // Wait for the receiver before sending, so it sees the very first message
  // and, for wake-ups, is registered as a watcher.
  uint32_t state = kStarting;
  while (status.ok() && (state = block->receiver_state.load(
                             std::memory_order_acquire)) == kStarting) {
    usleep(100);
  }
  if (status.ok() && state == kReady && !send()) {
    // An empty transport error means the driver gave up waiting for the
    // receiver's acknowledgement.
    status = absl::InternalError(
        "sender: " + (transport.error().empty()
                          ? std::string("no acknowledgement from the receiver")
                          : transport.error()));
  }
  transport.StopSender();
  if (!status.ok()) kill(child, SIGKILL);

  int wait_status = 0;
  while (waitpid(child, &wait_status, 0) < 0 && errno == EINTR) {
  }
  alarm(0);
  RestoreAffinity(affinity);
  if (status.ok() &&
      !(WIFEXITED(wait_status) && WEXITSTATUS(wait_status) == 0)) {
    status = absl::InternalError(absl::StrFormat(
        "receiver: %s",
        block->error[0] != '\0' ? block->error : "died (watchdog?)"));
  }
  return status;
}

}  // namespace

absl::StatusOr<LatencyResult> MeasureLatency(
    const TransportFactory& factory, size_t message_bytes,
    const CrossProcessOptions& options) {
  std::unique_ptr<Transport> transport = factory();
  if (absl::Status created = transport->Create(message_bytes); !created.ok()) {
    return created;
  }
  const uint64_t total = static_cast<uint64_t>(options.warmup) +
                         static_cast<uint64_t>(options.iterations);
  SharedControl control(static_cast<size_t>(options.iterations));
  ControlBlock* block = control.block();
  int64_t* samples = control.samples();

  auto send = [&]() {
    std::vector<char> message(message_bytes, 'x');
    const int64_t deadline_ns =
        MonotonicNowNs() + int64_t{options.latency_budget_ms} * 1'000'000;
    // One extra round sends the end marker, after the last acknowledgement.
    for (uint64_t i = 0; i <= total; ++i) {
      const int64_t wait_start_ns = MonotonicNowNs();
      uint32_t spins = 0;
      while (block->acked.load(std::memory_order_acquire) < i) {
        CpuRelax();
        if ((++spins & 0xfff) == 0 &&
            MonotonicNowNs() - wait_start_ns > kAckTimeoutNs) {
          return false;
        }
      }
      // On a loaded machine every wake-up can take milliseconds; the budget
      // keeps the whole run bounded, and the report shows the sample count.
      const bool last =
          i == total || (i > static_cast<uint64_t>(options.warmup) &&
                         wait_start_ns > deadline_ns);
      const int64_t idle_until_ns = MonotonicNowNs() + options.gap_ns;
      while (MonotonicNowNs() < idle_until_ns) CpuRelax();
      Stamp(message.data(), message_bytes,
            last ? kEndMarker : static_cast<uint64_t>(MonotonicNowNs()));
      if (!transport->Send(message.data())) return false;
      if (last) return true;
    }
    return true;
  };
  auto receive = [&]() {
    std::vector<char> message(message_bytes);
    for (uint64_t i = 0;; ++i) {
      if (!transport->Receive(message.data())) return false;
      const int64_t now_ns = MonotonicNowNs();
      bool torn = false;
      const uint64_t stamp = ReadStamp(message.data(), message_bytes, &torn);
      if (stamp == kEndMarker && !torn) {
        block->received = i;
        return true;
      }
      block->torn += torn;
      if (i >= static_cast<uint64_t>(options.warmup) && i < total) {
        samples[i - options.warmup] = now_ns - static_cast<int64_t>(stamp);
      }
      block->acked.store(i + 1, std::memory_order_release);
    }
  };

  if (absl::Status run = RunPair(*transport, block, options, send, receive);
      !run.ok()) {
    return run;
  }
  LatencyResult result;
  const uint64_t sampled =
      block->received > static_cast<uint64_t>(options.warmup)
          ? std::min<uint64_t>(block->received - options.warmup,
                               static_cast<uint64_t>(options.iterations))
          : 0;
  std::vector<int64_t> latencies(samples, samples + sampled);
  result.summary = Summarize(&latencies);
  result.torn = block->torn;
  result.settings = transport->settings();
  return result;
}

absl::StatusOr<ThroughputResult> MeasureThroughput(
    const TransportFactory& factory, size_t message_bytes,
    const CrossProcessOptions& options) {
  std::unique_ptr<Transport> transport = factory();
  if (absl::Status created = transport->Create(message_bytes); !created.ok()) {
    return created;
  }
  SharedControl control(0);
  ControlBlock* block = control.block();
  uint64_t sent = 0;

  auto send = [&]() {
    std::vector<char> message(message_bytes, 'x');
    const int64_t end_ns =
        MonotonicNowNs() + int64_t{options.duration_ms} * 1'000'000;
    do {
      // Read the clock once per batch, not per message: at tens of
      // nanoseconds per Send the clock would be a visible share.
      for (int i = 0; i < 64; ++i) {
        Stamp(message.data(), message_bytes, sent);
        if (!transport->Send(message.data())) return false;
        ++sent;
      }
    } while (MonotonicNowNs() < end_ns);
    Stamp(message.data(), message_bytes, kEndMarker);
    return transport->Send(message.data());
  };
  auto receive = [&]() {
    std::vector<char> message(message_bytes);
    uint64_t expected = 0;
    for (;;) {
      if (!transport->Receive(message.data())) return false;
      const int64_t now_ns = MonotonicNowNs();
      bool torn = false;
      const uint64_t sequence = ReadStamp(message.data(), message_bytes, &torn);
      if (sequence == kEndMarker && !torn) {
        block->last_ns = now_ns;
        break;
      }
      if (block->received == 0) block->first_ns = now_ns;
      ++block->received;
      block->torn += torn;
      if (sequence >= expected) {
        expected = sequence + 1;
      } else {
        ++block->reordered;
      }
    }
    block->too_old_events = transport->too_old_events();
    return true;
  };

  if (absl::Status run = RunPair(*transport, block, options, send, receive);
      !run.ok()) {
    return run;
  }
  ThroughputResult result;
  result.sent = sent;
  result.received = block->received;
  // Messages after the last one received are lost too; the receiver cannot
  // know how many were sent, the sender can.
  result.lost = sent > block->received ? sent - block->received : 0;
  result.too_old_events = block->too_old_events;
  result.torn = block->torn;
  result.reordered = block->reordered;
  result.seconds = static_cast<double>(block->last_ns - block->first_ns) / 1e9;
  result.settings = transport->settings();
  return result;
}

}  // namespace benchmark_tool
}  // namespace lockless
