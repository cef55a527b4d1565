// Keeps a bridge from sending back out what it brought in.
//
// When a channel is both imported and exported by one bridge (two machines
// that both produce on it), the importer's Send lands in the same ring the
// exporter reads. The importer records the queue index each of its sends got
// (Send reports it) while holding this guard's mutex across the Send; the
// exporter, on reading index q, takes the mutex and asks whether q is one of
// them. Because the importer holds the mutex from before its Send publishes
// q until q is recorded, an exporter that has read q and then takes the
// mutex always finds q recorded: no window where an imported message looks
// local. The record is in process memory and dies with the bridge; a
// restarted exporter of such a channel therefore starts after the newest
// message (bridge.h, "Restart").
//
// Indices are recorded in increasing order (the importer's sends are
// sequential), so a deque suffices: the exporter drops the entries it has
// passed.
//
// Thread-safety: all methods are thread-safe. Not RT-safe (mutex,
// allocation): the bridge is not a real-time path.
#ifndef LOCKLESS_TOOLS_BRIDGE_LOOP_GUARD_H_
#define LOCKLESS_TOOLS_BRIDGE_LOOP_GUARD_H_

#include <deque>
#include <mutex>

#include "index/queue_index.h"

namespace lockless::bridge {

class LoopGuard {
 public:
  // Runs `send` (which returns true and sets *sent when it published a
  // message at *sent) with the mutex held, and records the index.
  template <typename SendFn>
  bool SendAndRecord(SendFn&& send) {
    std::lock_guard<std::mutex> lock(mutex_);
    QueueIndex sent;
    if (!send(&sent)) return false;
    imported_.push_back(sent);
    return true;
  }

  // True if `read` (just read by the exporter, which reads in increasing
  // order) was sent by the importer. Forgets every recorded index up to it.
  bool WasImported(QueueIndex read) {
    std::lock_guard<std::mutex> lock(mutex_);
    while (!imported_.empty()) {
      const QueueIndex front = imported_.front();
      if (front == read) {
        imported_.pop_front();
        return true;
      }
      // `front` is before `read` when read is less than half the counter's
      // range ahead of it: the exporter passed it (overwritten, or read
      // before the guard existed). Otherwise front is still ahead.
      if (read.DistanceFrom(front) < read.max_index() / 2) {
        imported_.pop_front();
        continue;
      }
      break;
    }
    return false;
  }

 private:
  std::mutex mutex_;
  std::deque<QueueIndex> imported_;
};

}  // namespace lockless::bridge

#endif  // LOCKLESS_TOOLS_BRIDGE_LOOP_GUARD_H_
