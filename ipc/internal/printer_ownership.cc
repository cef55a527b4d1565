#include "ipc/internal/printer_ownership.h"

#include <sched.h>

#include <map>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "ipc/internal/printer_format.h"
#include "ipc/internal/printer_reads.h"
#include "sync/robust_mutex.h"

namespace lockless {
namespace internal {
namespace {

// key -> text of one pass's unexplained anomalies. The key names the
// anomaly without its counts, so the same anomaly matches across passes.
using Anomalies = std::map<std::string, std::string>;

bool OwnerGone(uint32_t word, const std::function<bool(pid_t)>& is_alive) {
  if (OwnerDied(word)) return true;
  const pid_t tid = OwnerTid(word);
  if (tid == 0) return true;  // Released, yet an intent is recorded.
  return !(is_alive ? is_alive(tid) : DefaultIsAlive(tid));
}

void OnePass(const RegionView& region, const SlotsSnapshot& snapshot,
             const std::function<bool(pid_t)>& is_alive, Anomalies* anomalies,
             OwnershipReport* report) {
  const uint64_t num_messages = region.layout().num_messages;
  const uint32_t queue_size = region.queue_size();
  // Bounded by the region: num_messages <= size / 64.
  std::vector<uint8_t> owners(num_messages, 0);
  std::set<uint64_t> explained;
  report->pending.clear();
  report->in_flight = 0;
  for (uint32_t s = 0; s < snapshot.senders.size(); ++s) {
    const SenderFields& sender = snapshot.senders[s];
    if (sender.swap_take.valid()) {
      // Mid-swap of a pinned scratch: the scratch may be named twice (it
      // and its parking place) and swap_take once or not at all.
      if (region.NamesMessage(sender.scratch)) {
        explained.insert(sender.scratch.message_index());
      }
      if (region.NamesMessage(sender.swap_take)) {
        explained.insert(sender.swap_take.message_index());
      }
      if (OwnerGone(sender.owner_word, is_alive)) {
        report->pending.push_back(absl::StrFormat(
            "sender %u (%s) died while parking a pinned scratch (swap_take "
            "%s); the next MakeSender finishes it (recovery pending, not "
            "corruption)",
            s, OwnerText(sender.owner_word, is_alive),
            IndexText(sender.swap_take, queue_size, num_messages)));
      } else {
        ++report->in_flight;
      }
    }
    if (!sender.to_replace.valid()) continue;
    if (region.NamesMessage(sender.scratch)) {
      explained.insert(sender.scratch.message_index());
    }
    if (region.NamesMessage(sender.to_replace)) {
      explained.insert(sender.to_replace.message_index());
    }
    if (OwnerGone(sender.owner_word, is_alive)) {
      report->pending.push_back(absl::StrFormat(
          "sender %u (%s) died mid-send: scratch %s, to_replace %s; the next "
          "MakeSender recovers it (recovery pending, not corruption)",
          s, OwnerText(sender.owner_word, is_alive),
          IndexText(sender.scratch, queue_size, num_messages),
          IndexText(sender.to_replace, queue_size, num_messages)));
    } else {
      ++report->in_flight;
    }
  }
  auto count = [&](Index entry, const std::string& where) {
    if (!entry.valid()) {
      (*anomalies)[absl::StrCat("invalid ", where)] =
          absl::StrCat(where, " is invalid");
      return;
    }
    if (entry.message_index() >= num_messages) {
      (*anomalies)[absl::StrCat("range ", where)] = absl::StrFormat(
          "%s names message %u, out of range", where, entry.message_index());
      return;
    }
    uint8_t& n = owners[entry.message_index()];
    if (n < 255) ++n;
  };
  for (uint32_t slot = 0; slot < snapshot.ring.size(); ++slot) {
    count(snapshot.ring[slot], absl::StrFormat("ring slot %u", slot));
  }
  for (uint32_t s = 0; s < snapshot.senders.size(); ++s) {
    count(snapshot.senders[s].scratch,
          absl::StrFormat("sender %u scratch_index", s));
  }
  const uint32_t num_pinners = region.config().num_pinners;
  for (uint64_t k = 0; k < snapshot.parked.size(); ++k) {
    count(snapshot.parked[k],
          absl::StrFormat("sender %u parked[%u]", k / num_pinners,
                          k % num_pinners));
  }
  for (uint64_t m = 0; m < num_messages; ++m) {
    if (owners[m] == 1 || explained.count(m) != 0) continue;
    if (owners[m] == 0) {
      (*anomalies)[absl::StrFormat("none %u", m)] =
          absl::StrFormat("message %u has no owner", m);
    } else {
      (*anomalies)[absl::StrFormat("many %u", m)] =
          absl::StrFormat("message %u has %u owners", m, owners[m]);
    }
  }
}

}  // namespace

bool CheckOwnership(const RegionView& region,
                    const std::function<bool(pid_t)>& is_alive,
                    OwnershipReport* report) {
  report->num_messages = region.layout().num_messages;
  Anomalies persistent;
  std::set<std::string> ever_seen;
  for (int pass = 0; pass < kMaxPasses; ++pass) {
    SlotsSnapshot snapshot;
    if (!ReadSlots(region, &snapshot)) return false;
    Anomalies seen;
    OnePass(region, snapshot, is_alive, &seen, report);
    report->passes = pass + 1;
    for (const auto& [key, text] : seen) ever_seen.insert(key);
    if (pass == 0) {
      persistent = std::move(seen);
    } else {
      Anomalies kept;
      for (auto& [key, text] : seen) {
        if (persistent.count(key) != 0) kept.emplace(key, std::move(text));
      }
      persistent = std::move(kept);
    }
    if (persistent.empty()) break;
    // Let the senders move on before the next pass (not a wait for any
    // particular event: the pass count bounds the check).
    sched_yield();
  }
  report->transient = static_cast<int>(ever_seen.size() - persistent.size());
  report->problems.clear();
  for (auto& [key, text] : persistent) report->problems.push_back(text);
  return true;
}

}  // namespace internal
}  // namespace lockless
