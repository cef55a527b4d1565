// Test-only helpers for tests that need senders owned by other threads:
// SenderThread (a thread that claims a Sender, runs what it is given with it,
// and then either releases it or dies holding it) and AbandonLikeADeadThread.
#ifndef LOCKLESS_TESTING_SENDER_THREAD_H_
#define LOCKLESS_TESTING_SENDER_THREAD_H_

#include <condition_variable>
#include <functional>
#include <mutex>
#include <new>
#include <optional>
#include <thread>
#include <utility>

#include "absl/status/status.h"
#include "ipc/lockless_queue.h"

namespace lockless {
namespace testing {

// Keeps `object` alive forever without running its destructor, as a thread
// that dies holding it would. Placement-new into static storage (16 objects
// of each type, reused round-robin), so it is not a heap leak either.
template <typename T>
T* AbandonLikeADeadThread(T&& object) {
  alignas(T) static unsigned char storage[16][sizeof(T)];
  static int used = 0;
  return new (storage[used++ % 16]) T(std::forward<T>(object));
}

// A thread owning one Sender of `queue`. Thread-compatible: drive it from one
// test thread. Every call blocks until the sender thread has done it.
class SenderThread {
 public:
  // Starts the thread and claims a Sender on it; status() says how that went.
  explicit SenderThread(const LocklessQueue& queue);
  // Releases the Sender (if still held) and joins.
  ~SenderThread();
  SenderThread(const SenderThread&) = delete;
  SenderThread& operator=(const SenderThread&) = delete;

  const absl::Status& status() const { return status_; }
  // The claimed slot (status() must be OK).
  uint32_t slot() const { return slot_; }

  // Runs `work` with the Sender on its owning thread.
  void Run(std::function<void(Sender&)> work);
  // Sends `count` messages (an int each, 0..count-1); aborts on a failure.
  void SendNumbered(int count);
  // The thread exits holding the slot, as if killed: the kernel marks the
  // slot FUTEX_OWNER_DIED. Returns the abandoned Sender (still an object,
  // usable to check that it is refused).
  Sender* Die();
  // Destroys the Sender on its thread and exits.
  void Release();

 private:
  enum class Command { kNone, kRun, kDie, kRelease };
  void Post(Command command);
  void Loop(const LocklessQueue& queue);

  std::mutex mutex_;
  std::condition_variable changed_;
  Command command_ = Command::kNone;
  bool done_ = false;  // The posted command has been carried out.
  std::function<void(Sender&)> work_;
  absl::Status status_;
  uint32_t slot_ = 0;
  Sender* abandoned_ = nullptr;
  bool joined_ = false;
  std::thread thread_;
};

}  // namespace testing
}  // namespace lockless

#endif  // LOCKLESS_TESTING_SENDER_THREAD_H_
