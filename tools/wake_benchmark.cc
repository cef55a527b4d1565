// tools/wake_benchmark: what a wake-up costs, next to a ruler.
//
//   ./bazelw run -c opt //tools:wake_benchmark -- [--rounds=N] [--sends=N]
//
// Part 1, latency: two processes pinned to CPU 0 and CPU 1 play ping-pong;
// one-way wake-up latency = round trip / 2 (mean, p50, p99 of the timed
// round trips). Four ways to wake the other side, in the same run:
//   raw futex   the ruler: one shared word, FUTEX_WAKE / FUTEX_WAIT, nothing
//               else (the least any futex-based wake-up can cost);
//   Wait        Send on one queue, Waiter::Wait on the other;
//   signal      Send + WakeUpper::Wakeup, the reader polls a signalfd
//               (Watcher::Acknowledge, Read, poll, Drain);
//   pipe        an 8-byte write / read on a pair of pipes.
// Part 2, sender cost: mean ns per Send in one thread while 0, 1 or 8
// threads loop in Waiter::Wait on the same queue (each Send then makes one
// FUTEX_WAKE), plus the raw FUTEX_WAKE with nobody asleep for scale.
#include <poll.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <optional>
#include <thread>
#include <vector>

#include "absl/strings/str_format.h"
#include "gflags/gflags.h"
#include "ipc/lockless_queue.h"
#include "ipc/signalfd.h"
#include "sync/futex.h"
#include "tools/benchmark_system.h"

DEFINE_int32(rounds, 20000, "Timed round trips per latency row.");
DEFINE_int32(sends, 200000, "Timed sends per sender-cost row.");
DEFINE_bool(only_sends, false,
            "Only the 0-waiter sender loop (for valgrind --tool=callgrind "
            "--toggle-collect='lockless::Sender::Send*').");
DEFINE_int32(num_pinners, 0,
             "QueueConfig::num_pinners of the benchmarked channel (pinning's "
             "cost when configured).");
DEFINE_string(pin_mode, "none",
              "With --num_pinners > 0, what a pinner on the sending thread "
              "does around the timed Sends (outside Send, so callgrind's "
              "count covers Send only): none; held (one message pinned for "
              "the whole run: every Send scans a live pin, the first lap "
              "parks it once); swap (before every Send, pin the message that "
              "Send replaces: every Send parks a pinned scratch).");

namespace lockless {
namespace {

using benchmark_tool::LoadAverage;
using benchmark_tool::MachineFacts;
using benchmark_tool::PinCurrentThreadToCpu;

QueueConfig BenchConfig() {
  QueueConfig config;
  config.num_watchers = 9;
  config.num_senders = 2;
  config.queue_size = 1024;
  config.message_data_size_bytes = 8;
  config.num_pinners = static_cast<uint32_t>(FLAGS_num_pinners);
  return config;
}

void* SharedZeroed(size_t size) {
  void* memory = mmap(nullptr, size, PROT_READ | PROT_WRITE,
                      MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (memory == MAP_FAILED) std::abort();
  return memory;
}

LocklessQueue NewQueue() {
  const uint64_t size = *QueueMemorySize(BenchConfig());
  return *LocklessQueue::Attach(SharedZeroed(size), size, BenchConfig());
}

struct Stats {
  double mean_ns, p50_ns, p99_ns;
};

Stats OneWay(std::vector<int64_t> round_trips_ns) {
  std::sort(round_trips_ns.begin(), round_trips_ns.end());
  double sum = 0;
  for (int64_t v : round_trips_ns) sum += v;
  const size_t n = round_trips_ns.size();
  return Stats{sum / n / 2, round_trips_ns[n / 2] / 2.0,
               round_trips_ns[n * 99 / 100] / 2.0};
}

// Runs `echo(i)` in a child pinned to CPU 1 for every round and `ping(i)`
// (which must return when the echo came back) here on CPU 0; times each.
Stats PingPong(const std::function<void()>& setup_child,
               const std::function<void(int)>& echo,
               const std::function<void(int)>& ping) {
  const int warmup = 1000;
  const int total = warmup + FLAGS_rounds;
  const pid_t child = fork();
  if (child == 0) {
    PinCurrentThreadToCpu(1);
    setup_child();
    for (int i = 0; i < total; ++i) echo(i);
    _exit(0);
  }
  PinCurrentThreadToCpu(0);
  std::vector<int64_t> samples;
  samples.reserve(FLAGS_rounds);
  for (int i = 0; i < total; ++i) {
    const int64_t start = MonotonicNowNs();
    ping(i);
    if (i >= warmup) samples.push_back(MonotonicNowNs() - start);
  }
  waitpid(child, nullptr, 0);
  return OneWay(std::move(samples));
}

Stats RawFutex() {
  auto* word = static_cast<std::atomic<uint32_t>*>(SharedZeroed(4096));
  auto wait_for = [word](uint32_t value) {
    // acquire: nothing else is shared; the ruler needs only the value.
    for (uint32_t seen; (seen = word->load(std::memory_order_acquire)) !=
                        value;) {
      FutexWait(word, seen);
    }
  };
  return PingPong(
      [] {},
      [&](int i) {
        wait_for(2 * i + 1);
        word->store(2 * i + 2, std::memory_order_release);
        FutexWake(word, 1);
      },
      [&](int i) {
        word->store(2 * i + 1, std::memory_order_release);
        FutexWake(word, 1);
        wait_for(2 * i + 2);
      });
}

Stats WaitPath() {
  const LocklessQueue ping = NewQueue();
  const LocklessQueue pong = NewQueue();
  std::optional<Waiter> waiter;
  std::optional<Sender> sender;
  auto setup = [&](const LocklessQueue& in, const LocklessQueue& out) {
    waiter.emplace(*in.MakeWaiter());
    sender.emplace(*out.MakeSender());
  };
  auto round = [&](const LocklessQueue& in, int i) {
    if (waiter->Wait(in.MakeQueueIndex(i), INT64_MAX) != WaitResult::kReady) {
      std::abort();
    }
  };
  return PingPong(
      [&] { setup(ping, pong); },
      [&](int i) {
        round(ping, i);
        (void)sender->Send(&i, sizeof(i));
      },
      [&](int i) {
        if (i == 0) setup(pong, ping);
        (void)sender->Send(&i, sizeof(i));
        round(pong, i);
      });
}

Stats SignalPath() {
  const LocklessQueue ping = NewQueue();
  const LocklessQueue pong = NewQueue();
  std::optional<SignalFd> signal_fd;
  std::optional<Watcher> watcher;
  std::optional<Sender> sender;
  std::optional<WakeUpper> wake_upper;
  auto setup = [&](const LocklessQueue& in, const LocklessQueue& out) {
    // The inherited SignalFd goes first: destroyed after the new one was
    // made, it would unblock the signal the new one needs blocked.
    signal_fd.reset();
    signal_fd.emplace(*SignalFd::Create({WakeupSignal()}));
    watcher.emplace(*in.MakeWatcher(0));
    sender.emplace(*out.MakeSender());
    wake_upper.emplace(out);
  };
  auto send = [&](int i) {
    (void)sender->Send(&i, sizeof(i));
    wake_upper->Wakeup(0);
  };
  auto receive = [&](const LocklessQueue& in, int i) {
    while (true) {
      watcher->Acknowledge();
      MessageInfo info;
      if (in.Read(in.MakeQueueIndex(i), &info, nullptr, 0) ==
          ReadResult::kGood) {
        return;
      }
      pollfd poll_fd = {signal_fd->fd(), POLLIN, 0};
      poll(&poll_fd, 1, -1);
      signal_fd->Drain();
    }
  };
  // The parent's watcher must exist before the child's first send: set it
  // up before forking (the child makes its own).
  setup(pong, ping);
  std::optional<Watcher> parent_watcher = std::move(watcher);
  return PingPong(
      [&] {
        watcher.reset();
        setup(ping, pong);
      },
      [&](int i) {
        receive(ping, i);
        send(i);
      },
      [&](int i) {
        if (i == 0) watcher = std::move(parent_watcher);
        send(i);
        receive(pong, i);
      });
}

Stats Pipes() {
  int to_child[2], to_parent[2];
  if (pipe(to_child) != 0 || pipe(to_parent) != 0) std::abort();
  uint64_t token = 0;
  return PingPong(
      [] {},
      [&](int) {
        if (read(to_child[0], &token, 8) != 8) std::abort();
        if (write(to_parent[1], &token, 8) != 8) std::abort();
      },
      [&](int) {
        if (write(to_child[1], &token, 8) != 8) std::abort();
        if (read(to_parent[0], &token, 8) != 8) std::abort();
      });
}

// Mean ns per Send while `waiters` threads loop in Wait on the same queue.
double SenderCost(int waiters) {
  const LocklessQueue queue = NewQueue();
  std::atomic<bool> stop{false};
  std::atomic<int> ready{0};
  std::vector<std::thread> threads;
  for (int w = 0; w < waiters; ++w) {
    threads.emplace_back([&] {
      Waiter waiter = *queue.MakeWaiter();
      ready.fetch_add(1);
      while (!stop.load(std::memory_order_relaxed)) {
        const QueueIndex latest = queue.LatestQueueIndex();
        (void)waiter.Wait(latest.valid() ? latest.Increment()
                                         : queue.MakeQueueIndex(0),
                          MonotonicNowNs() + 10000000);
      }
    });
  }
  while (ready.load() < waiters) std::this_thread::yield();
  Sender sender = *queue.MakeSender();
  uint64_t value = 0;
  std::optional<Pinner> pinner;
  if (FLAGS_num_pinners > 0 && FLAGS_pin_mode != "none") {
    pinner.emplace(*queue.MakePinner());
    (void)sender.Send(&value, 8);  // Something to pin.
  }
  if (pinner.has_value() && FLAGS_pin_mode == "held") {
    PinnedMessage view;
    if (pinner->Pin(queue.LatestQueueIndex(), &view) != PinResult::kGood) {
      std::abort();
    }
  }
  const bool swap_every_send = pinner.has_value() && FLAGS_pin_mode == "swap";
  const int64_t start = MonotonicNowNs();
  for (int i = 0; i < FLAGS_sends; ++i) {
    if (swap_every_send) {
      // The oldest index sits in the slot this Send replaces.
      pinner->Unpin();
      PinnedMessage view;
      (void)pinner->Pin(queue.OldestQueueIndex(), &view);
    }
    (void)sender.Send(&value, 8);
  }
  const int64_t elapsed = MonotonicNowNs() - start;
  stop.store(true);
  for (std::thread& thread : threads) thread.join();
  return static_cast<double>(elapsed) / FLAGS_sends;
}

double RawWakeCost() {
  std::atomic<uint32_t> word{0};
  const int64_t start = MonotonicNowNs();
  for (int i = 0; i < FLAGS_sends; ++i) FutexWake(&word, INT32_MAX);
  return static_cast<double>(MonotonicNowNs() - start) / FLAGS_sends;
}

int Main() {
  if (FLAGS_only_sends) {
    absl::PrintF("%.1f ns/Send\n", SenderCost(0));
    return 0;
  }
  absl::PrintF("wake_benchmark: %s\n", MachineFacts());
  absl::PrintF("one-way wake-up latency, %d round trips, CPU 0 <-> CPU 1\n",
               FLAGS_rounds);
  const Stats ruler = RawFutex();
  const Stats wait = WaitPath();
  const Stats signal = SignalPath();
  const Stats pipes = Pipes();
  auto row = [&](const char* name, const Stats& s) {
    absl::PrintF("  %-10s mean %7.0f ns  p50 %7.0f ns  p99 %7.0f ns  "
                 "(p50 %.2fx the raw futex ruler)\n",
                 name, s.mean_ns, s.p50_ns, s.p99_ns, s.p50_ns / ruler.p50_ns);
  };
  row("raw futex", ruler);
  row("Wait", wait);
  row("signal", signal);
  row("pipe", pipes);
  absl::PrintF("sender cost, mean of %d sends (8 B):\n", FLAGS_sends);
  for (int waiters : {0, 1, 8}) {
    absl::PrintF("  %d waiters: %7.1f ns/Send\n", waiters,
                 SenderCost(waiters));
  }
  absl::PrintF("  (a FUTEX_WAKE with nobody asleep: %.1f ns)\n",
               RawWakeCost());
  absl::PrintF("load average at the end: %s\n", LoadAverage());
  return 0;
}

}  // namespace
}  // namespace lockless

int main(int argc, char** argv) {
  gflags::ParseCommandLineFlags(&argc, &argv, true);
  return lockless::Main();
}
