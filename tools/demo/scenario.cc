#include "tools/demo/scenario.h"

#include <sched.h>
#include <signal.h>
#include <sys/wait.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_format.h"
#include "ipc/internal/queue_layout.h"
#include "ipc/shm_channel.h"
#include "sync/robust_mutex.h"
#include "tools/demo/channel_files.h"
#include "tools/demo/clock.h"
#include "tools/demo/consumer.h"
#include "tools/demo/output.h"
#include "tools/demo/producer.h"
#include "tools/demo/report.h"
#include "tools/demo/shared_stats.h"
#include "tools/demo/supervisor.h"

namespace lockless {
namespace demo {
namespace {

int Fail(const std::string& why) {
  PrintFailed(why);
  CleanUp();
  return 1;
}

// Step 3: SIGKILLs the victim (aimed at Send() if asked), reaps it, and shows
// what the kernel left in its sender slot. Records in `stats` that it was
// killed, whether its slot is marked OWNER_DIED and how many slots are free.
void KillVictim(const DemoOptions& options, const Channel& channel,
                SharedStats* stats) {
  Child* victim = FindChild(ProducerName(kVictim));
  const ProducerStats& v = stats->producer[kVictim];
  if (options.kill_in_send) {
    // Put us and the victim on different CPUs (so our spin cannot keep
    // it from running), ask for a burst and fire as soon as it starts.
    cpu_set_t saved;
    const bool pinned = PinApart(victim->pid, &saved);
    stats->producer[kVictim].burst_request.store(1, std::memory_order_relaxed);
    const int64_t give_up = NowNs() + 50000000;  // spin at most 50 ms
    while (v.burst_active.load(std::memory_order_acquire) == 0 &&
           NowNs() < give_up) {
    }
    kill(victim->pid, SIGKILL);
    if (pinned) sched_setaffinity(0, sizeof(saved), &saved);
  } else {
    kill(victim->pid, SIGKILL);
  }
  Reap(victim, true);
  stats->victim_killed.store(1, std::memory_order_release);
  Event("parent", absl::StrFormat("SIGKILL P%d (pid %d): %s", kVictim,
                                  victim->pid,
                                  DescribeStatus(victim->status)));
  Event("parent",
        absl::StrFormat("  it died %s, after %u sends returned",
                        PhaseName(v.phase.load(std::memory_order_acquire)),
                        v.sent.load(std::memory_order_acquire)));
  // What the kernel left: its robust list marked the slot OWNER_DIED.
  const internal::RegionView& region = channel.queue().region();
  const uint32_t num_senders = channel.queue().config().num_senders;
  const int slot = v.slot.load(std::memory_order_relaxed);
  const uint32_t word = region.sender(slot)->ownership.RawOwnerWord();
  int free_slots = 0;
  for (uint32_t s = 0; s < num_senders; ++s) {
    if (region.sender(s)->ownership.RawOwnerWord() == 0) ++free_slots;
  }
  stats->victim_slot_owner_died.store(OwnerDied(word) ? 1 : 0);
  stats->free_slots_before_replacement.store(free_slots);
  Event("parent", absl::StrFormat("  its sender slot %d: word 0x%08x%s; "
                                  "%d of %u slots free",
                                  slot, word,
                                  OwnerDied(word) ? " (OWNER_DIED)" : "",
                                  free_slots, num_senders));
}

// Step 4's judgement of how the children ended and of the recovery.
std::vector<std::string> JudgeChildren(const SharedStats& stats) {
  std::vector<std::string> failures;
  for (const Child& child : Children()) {
    const bool is_victim = child.name == ProducerName(kVictim);
    if (is_victim) {
      if (!WIFSIGNALED(child.status) || WTERMSIG(child.status) != SIGKILL) {
        failures.push_back(child.name + " " + DescribeStatus(child.status));
      }
    } else if (!WIFEXITED(child.status) || WEXITSTATUS(child.status) != 0) {
      failures.push_back(child.name + " " + DescribeStatus(child.status));
    }
  }
  const ProducerStats& r = stats.producer[kReplacement];
  if (stats.free_slots_before_replacement.load() != 0) {
    failures.push_back(
        "a sender slot was free before the replacement: no proof of recovery");
  }
  if (r.slot.load() != stats.producer[kVictim].slot.load() ||
      stats.recoveries.load() != 1) {
    failures.push_back("the replacement did not reclaim the dead slot");
  }
  return failures;
}

}  // namespace

int RunDemo(const DemoOptions& options) {
  // Shared stats page, before any fork.
  SharedStats* stats = MapSharedStats();
  if (stats == nullptr) {
    Out(absl::StrFormat("mmap: %s\n", strerror(errno)));
    return 2;
  }
  StartEventClock(stats->t0_ns);

  // Step 1: the channel. A stale channel of the same name is normally none,
  // given the random tag.
  const int dead_runs =
      options.generated_channel_name ? RemoveDeadRunsChannels(options.channel)
                                     : 0;
  const absl::Status removed =
      RemoveChannel(options.channel_name, options.channel);
  if (!removed.ok() && !absl::IsNotFound(removed)) {
    Out("cannot remove stale channel: " + removed.ToString() + "\n");
    return 2;
  }
  const QueueConfig config = DemoConfig(options);
  absl::StatusOr<Channel> channel =
      Channel::OpenOrCreate(options.channel_name, config, options.channel);
  if (!channel.ok()) {
    Out("cannot create the channel: " + channel.status().ToString() + "\n");
    return 2;
  }
  RemoveChannelOnExit(options.channel_name, options.channel);
  LockChannelFile(options.channel_name, options.channel);
  CleanupOnExit guard;
  InstallInterruptHandlers();
  PrintBanner(options, config, removed.ok(), dead_runs);

  // Step 2: consumer first, so no wake-up is missed; then the producers.
  if (Spawn("consumer", [&] { return RunConsumer(options, stats); }) ==
      nullptr) {
    return Fail("fork");
  }
  std::string error;
  if (!WaitFor(stats->consumer_ready, nullptr, "the consumer", &error)) {
    return Fail(error);
  }
  for (int id = 0; id < kInitialProducers; ++id) {
    if (Spawn(ProducerName(id), [&, id] {
          return RunProducer(options, stats, id, false);
        }) == nullptr) {
      return Fail("fork");
    }
  }
  for (int id = 0; id < kInitialProducers; ++id) {
    if (!WaitFor(stats->producer[id].ready, &stats->producer[id].setup_failed,
                 ProducerName(id), &error)) {
      return Fail(error);
    }
  }

  // Step 3: run; kill the victim on the way and start its replacement.
  const int64_t kill_at =
      stats->t0_ns + static_cast<int64_t>(options.kill_at_s * 1e9);
  const int64_t stop_at =
      stats->t0_ns + static_cast<int64_t>(options.duration_s * 1e9);
  bool killed = false;
  while (NowNs() < stop_at) {
    if (Interrupted()) return Fail("interrupted");
    const std::string death = UnexpectedDeath();
    if (!death.empty()) return Fail(death);
    if (!killed && NowNs() >= kill_at) {
      killed = true;
      KillVictim(options, *channel, stats);
      if (Spawn(ProducerName(kReplacement), [&] {
            return RunProducer(options, stats, kReplacement, true);
          }) == nullptr) {
        return Fail("fork");
      }
      if (!WaitFor(stats->producer[kReplacement].ready,
                   &stats->producer[kReplacement].setup_failed,
                   "the replacement producer", &error)) {
        return Fail(error);
      }
    }
    SleepNs(5000000);
  }

  // Step 4: stop the producers first, then let the consumer drain and
  // summarise.
  stats->stop.store(1, std::memory_order_release);
  for (Child& child : Children()) {
    if (child.name == "consumer" || !child.alive) continue;
    if (!ReapWithTimeout(&child, 3000000000LL)) {
      return Fail(child.name + " did not stop within 3 s");
    }
  }
  Event("parent", "producers stopped");
  stats->producers_done.store(1, std::memory_order_release);
  Child* consumer = FindChild("consumer");
  if (!ReapWithTimeout(consumer, 5000000000LL)) {
    return Fail("the consumer did not finish within 5 s");
  }
  std::vector<std::string> failures = JudgeChildren(*stats);

  // Step 5: dump, clean up, verdict.
  if (!PrintDump(*channel, options)) {
    failures.push_back("the channel dump failed");
  }
  CleanUp();  // removes the channel
  Out(absl::StrFormat("channel %s removed\n", options.channel_name));

  if (!failures.empty()) {
    std::string why;
    for (const std::string& f : failures) why += (why.empty() ? "" : "; ") + f;
    PrintFailed(why);
    return 1;
  }
  PrintPassed();
  return 0;
}

}  // namespace demo
}  // namespace lockless
