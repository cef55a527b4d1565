#include "tools/benchmark_micro.h"

#include <poll.h>
#include <sys/mman.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "absl/strings/str_format.h"
#include "benchmark/benchmark.h"
#include "ipc/lockless_queue.h"
#include "ipc/signalfd.h"
#include "tools/benchmark_system.h"

namespace lockless {
namespace benchmark_tool {
namespace {

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "benchmark: %s\n", what.c_str());
  std::abort();
}

// A queue in a fresh anonymous MAP_SHARED mapping: zero-filled as Attach
// requires, and pre-faulted so no Send pays a page fault.
class QueueMemory {
 public:
  QueueMemory(size_t message_bytes, int senders, uint32_t queue_size,
              uint32_t watchers = 0, uint32_t pinners = 0,
              uint64_t min_message_age_ns = 0) {
    QueueConfig config;
    config.min_message_age_ns = min_message_age_ns;
    config.num_pinners = pinners;
    config.num_watchers = watchers;
    config.num_senders = static_cast<uint32_t>(senders);
    config.queue_size = queue_size;
    config.message_data_size_bytes = message_bytes;
    absl::StatusOr<uint64_t> bytes = QueueMemorySize(config);
    if (!bytes.ok()) Die(std::string(bytes.status().message()));
    bytes_ = *bytes;
    memory_ = mmap(nullptr, bytes_, PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    if (memory_ == MAP_FAILED) Die("mmap of the queue failed");
    absl::StatusOr<LocklessQueue> queue =
        LocklessQueue::Attach(memory_, bytes_, config);
    if (!queue.ok()) Die(std::string(queue.status().message()));
    queue_.emplace(*queue);
  }
  ~QueueMemory() { munmap(memory_, bytes_); }
  QueueMemory(const QueueMemory&) = delete;
  QueueMemory& operator=(const QueueMemory&) = delete;

  const LocklessQueue& queue() const { return *queue_; }

  Sender MakeSender() const {
    absl::StatusOr<Sender> sender = queue_->MakeSender();
    if (!sender.ok()) Die(std::string(sender.status().message()));
    return std::move(*sender);
  }

 private:
  size_t bytes_ = 0;
  void* memory_ = nullptr;
  std::optional<LocklessQueue> queue_;  // set once Attach succeeded
};

// Google Benchmark's Setup/Teardown take plain function pointers and run
// once around all threads of a case, so the contended case's shared queue
// lives here. Only one case runs at a time.
std::unique_ptr<QueueMemory> g_contended_queue;
uint32_t g_queue_size = 1024;

void BM_Send(benchmark::State& state) {
  const size_t bytes = static_cast<size_t>(state.range(0));
  QueueMemory memory(bytes, /*senders=*/1, g_queue_size);
  Sender sender = memory.MakeSender();
  std::string message(bytes, 'x');
  for (auto _ : state) {
    benchmark::DoNotOptimize(sender.Send(message.data(), bytes));
  }
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(bytes));
}

void SetUpContended(const benchmark::State& state) {
  g_contended_queue = std::make_unique<QueueMemory>(
      static_cast<size_t>(state.range(0)), state.threads(), g_queue_size);
}

void TearDownContended(const benchmark::State&) { g_contended_queue.reset(); }

void BM_SendContended(benchmark::State& state) {
  const size_t bytes = static_cast<size_t>(state.range(0));
  // Made and destroyed on this thread: a Sender belongs to its thread.
  Sender sender = g_contended_queue->MakeSender();
  std::string message(bytes, 'x');
  for (auto _ : state) {
    benchmark::DoNotOptimize(sender.Send(message.data(), bytes));
  }
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(bytes));
}

void BM_Read(benchmark::State& state) {
  const size_t bytes = static_cast<size_t>(state.range(0));
  QueueMemory memory(bytes, /*senders=*/1, g_queue_size);
  const LocklessQueue& queue = memory.queue();
  {
    Sender sender = memory.MakeSender();
    std::string message(bytes, 'x');
    for (uint32_t i = 0; i < g_queue_size; ++i) {
      if (sender.Send(message.data(), bytes) != SendResult::kOk) {
        Die("Send failed while filling the ring");
      }
    }
  }
  // Every index of the full ring is readable: cycle through them so each
  // Read touches a different message, as a reader catching up would.
  const QueueIndex first = queue.MakeQueueIndex(0);
  QueueIndex index = first;
  uint32_t offset = 0;
  std::string buffer(bytes, '\0');
  MessageInfo info;
  int64_t not_good = 0;
  for (auto _ : state) {
    not_good +=
        queue.Read(index, &info, buffer.data(), bytes) != ReadResult::kGood;
    benchmark::DoNotOptimize(buffer.data());
    if (++offset == g_queue_size) {
      offset = 0;
      index = first;
    } else {
      index = index.Increment();
    }
  }
  if (not_good != 0) {
    state.SkipWithError("Read did not return kGood on a full ring");
  }
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(bytes));
}

// Send followed by Wakeup(0) with one watcher: a thread of this process that
// sleeps on a SignalFd and drains it. What a sender pays for waking a reader
// (Wakeup makes one syscall per watcher; the signal delivery is included).
void BM_SendWakeup(benchmark::State& state) {
  const size_t bytes = static_cast<size_t>(state.range(0));
  QueueMemory memory(bytes, /*senders=*/1, g_queue_size, /*watchers=*/1);
  const LocklessQueue& queue = memory.queue();
  // relaxed: flags only; the watcher's registration is ordered by the
  // queue's own setup lock, which Wakeup's snapshot acquires.
  std::atomic<bool> registered{false};
  std::atomic<bool> stop{false};
  std::thread watcher_thread([&] {
    // The SignalFd blocks the signal before the Watcher makes us a target.
    absl::StatusOr<SignalFd> signal_fd = SignalFd::Create({WakeupSignal()});
    if (!signal_fd.ok()) Die(std::string(signal_fd.status().message()));
    absl::StatusOr<Watcher> watcher = queue.MakeWatcher(/*priority=*/0);
    if (!watcher.ok()) Die(std::string(watcher.status().message()));
    registered.store(true, std::memory_order_release);
    pollfd poll_fd = {signal_fd->fd(), POLLIN, 0};
    while (!stop.load(std::memory_order_relaxed)) {
      if (poll(&poll_fd, 1, /*timeout_ms=*/10) > 0) {
        while (signal_fd->Read().has_value()) {
        }
        watcher->Acknowledge();  // The next Wakeup signals again.
      }
    }
  });
  while (!registered.load(std::memory_order_acquire)) CpuRelax();

  Sender sender = memory.MakeSender();
  WakeUpper wake_upper(queue);
  std::string message(bytes, 'x');
  int64_t not_woken = 0;
  int64_t signalled = 0;
  WakeupReport report;
  for (auto _ : state) {
    benchmark::DoNotOptimize(sender.Send(message.data(), bytes));
    // Due to wake: signalled now, or one still queued that the watcher has
    // not drained yet (then Wakeup makes no system call).
    not_woken += wake_upper.Wakeup(/*current_priority=*/0, &report) != 1;
    signalled += report.signalled;
  }
  stop.store(true, std::memory_order_relaxed);
  watcher_thread.join();
  if (not_woken != 0) state.SkipWithError("Wakeup did not wake the watcher");
  // How many Wakeups really queued a signal (the rest found one pending).
  state.counters["signalled"] = benchmark::Counter(
      static_cast<double>(signalled), benchmark::Counter::kAvgIterations);
  // Same counters as the other cases, so Google Benchmark prints one table.
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(bytes));
}

}  // namespace

void RegisterMicroBenchmarks(const MicroOptions& options) {
  g_queue_size = options.queue_size;
  for (size_t bytes : options.sizes) {
    const int64_t arg = static_cast<int64_t>(bytes);
    benchmark::RegisterBenchmark("Send", BM_Send)->Arg(arg);
    benchmark::RegisterBenchmark("SendContended", BM_SendContended)
        ->Arg(arg)
        ->Threads(options.contending_senders)
        ->UseRealTime()
        ->Setup(SetUpContended)
        ->Teardown(TearDownContended);
    benchmark::RegisterBenchmark("Read", BM_Read)->Arg(arg);
    benchmark::RegisterBenchmark("SendWakeup", BM_SendWakeup)->Arg(arg);
  }
}

LatencySummary MeasureSendCalls(size_t message_bytes, int senders, int calls,
                                uint32_t queue_size,
                                int64_t timer_overhead_ns) {
  QueueMemory memory(message_bytes, senders, queue_size);
  std::vector<std::vector<int64_t>> samples(static_cast<size_t>(senders),
                                            std::vector<int64_t>(calls));
  std::atomic<int> ready{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < senders; ++t) {
    threads.emplace_back([&, t] {
      PinCurrentThreadToCpu(t);
      Sender sender = memory.MakeSender();
      std::string message(message_bytes, 'x');
      // Start together so the senders really contend (relaxed: only the
      // count matters, no data is handed over).
      ready.fetch_add(1, std::memory_order_relaxed);
      while (ready.load(std::memory_order_relaxed) < senders) CpuRelax();
      // Warm the caches and the branch predictor before timing.
      for (uint32_t i = 0; i < 2 * queue_size; ++i) {
        (void)sender.Send(message.data(), message_bytes);
      }
      std::vector<int64_t>& mine = samples[static_cast<size_t>(t)];
      for (int64_t& sample : mine) {
        const int64_t start_ns = MonotonicNowNs();
        const SendResult result = sender.Send(message.data(), message_bytes);
        sample = MonotonicNowNs() - start_ns;
        if (result != SendResult::kOk) Die("Send failed");
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  std::vector<int64_t> all;
  all.reserve(static_cast<size_t>(senders) * static_cast<size_t>(calls));
  for (const std::vector<int64_t>& mine : samples) {
    all.insert(all.end(), mine.begin(), mine.end());
  }
  return Summarize(&all, timer_overhead_ns);
}

int64_t RunCountedCalls(CountedCall call, size_t message_bytes, int calls,
                        uint32_t queue_size, CountedPinning pinning) {
  QueueMemory memory(
      message_bytes, /*senders=*/1, queue_size, /*watchers=*/0,
      pinning == CountedPinning::kUnconfigured ? 0 : kPinnersCounted,
      /*min_message_age_ns=*/call == CountedCall::kRateLimitedSend ? 1 : 0);
  const LocklessQueue& queue = memory.queue();
  Sender sender = memory.MakeSender();
  std::string message(message_bytes, 'x');
  std::string buffer(message_bytes, '\0');
  int64_t failed = 0;
  if (call == CountedCall::kSend || call == CountedCall::kRateLimitedSend) {
    std::optional<Pinner> pinner;
    if (pinning == CountedPinning::kHeldPin ||
        pinning == CountedPinning::kSwapEverySend) {
      absl::StatusOr<Pinner> made = queue.MakePinner();
      if (!made.ok()) Die(std::string(made.status().message()));
      pinner.emplace(*std::move(made));
      failed += sender.Send(message.data(), message_bytes) != SendResult::kOk;
      PinnedMessage view;
      failed += pinner->Pin(queue.LatestQueueIndex(), &view) != PinResult::kGood;
    }
    for (int i = 0; i < calls; ++i) {
      if (pinning == CountedPinning::kSwapEverySend) {
        // The oldest index sits in the ring slot this Send replaces.
        pinner->Unpin();
        PinnedMessage view;
        failed +=
            pinner->Pin(queue.OldestQueueIndex(), &view) != PinResult::kGood;
      }
      failed += sender.Send(message.data(), message_bytes) != SendResult::kOk;
    }
    return failed;
  }
  if (call == CountedCall::kZeroCopySend) {
    // The payload's write into data() is outside Send, so not counted:
    // only Send(length) itself (and with it the guard check) is.
    for (int i = 0; i < calls; ++i) {
      std::memcpy(sender.data(), message.data(), message_bytes);
      failed += sender.Send(message_bytes) != SendResult::kOk;
    }
    return failed;
  }
  MessageInfo info;
  for (int done = 0; done < calls;) {
    // A fresh lap, then read all of it (a reader catching up).
    QueueIndex index;
    for (uint32_t i = 0; i < queue_size; ++i) {
      if (sender.Send(message.data(), message_bytes) != SendResult::kOk) {
        Die("Send failed while filling the ring");
      }
    }
    index = queue.LatestQueueIndex().DecrementBy(queue_size - 1);
    for (uint32_t i = 0; i < queue_size && done < calls; ++i, ++done) {
      failed += queue.Read(index, &info, buffer.data(), message_bytes) !=
                ReadResult::kGood;
      index = index.Increment();
    }
  }
  return failed;
}

}  // namespace benchmark_tool
}  // namespace lockless
