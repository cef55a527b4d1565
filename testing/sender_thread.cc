#include "testing/sender_thread.h"

#include <cstdlib>

namespace lockless {
namespace testing {

SenderThread::SenderThread(const LocklessQueue& queue) {
  std::unique_lock<std::mutex> lock(mutex_);
  thread_ = std::thread([this, queue] { Loop(queue); });
  changed_.wait(lock, [this] { return done_; });
}

SenderThread::~SenderThread() { Release(); }

void SenderThread::Loop(const LocklessQueue& queue) {
  std::optional<Sender> sender;
  {
    absl::StatusOr<Sender> made = queue.MakeSender();
    std::lock_guard<std::mutex> lock(mutex_);
    status_ = made.status();
    if (made.ok()) {
      slot_ = made->slot();
      sender.emplace(*std::move(made));
    }
    done_ = true;
  }
  changed_.notify_all();
  while (true) {
    std::unique_lock<std::mutex> lock(mutex_);
    changed_.wait(lock, [this] { return command_ != Command::kNone; });
    const Command command = std::exchange(command_, Command::kNone);
    if (command == Command::kRun && sender.has_value()) work_(*sender);
    if (command == Command::kDie && sender.has_value()) {
      abandoned_ = AbandonLikeADeadThread(*std::move(sender));
      sender.reset();  // Moved-from: its destructor releases nothing.
    }
    if (command == Command::kRelease) sender.reset();
    done_ = true;
    lock.unlock();
    changed_.notify_all();
    if (command != Command::kRun) return;
  }
}

void SenderThread::Post(Command command) {
  std::unique_lock<std::mutex> lock(mutex_);
  done_ = false;
  command_ = command;
  changed_.notify_all();
  changed_.wait(lock, [this] { return done_; });
}

void SenderThread::Run(std::function<void(Sender&)> work) {
  work_ = std::move(work);
  Post(Command::kRun);
}

void SenderThread::SendNumbered(int count) {
  Run([count](Sender& sender) {
    for (int i = 0; i < count; ++i) {
      if (sender.Send(&i, sizeof(i)) != SendResult::kOk) std::abort();
    }
  });
}

Sender* SenderThread::Die() {
  if (joined_) return abandoned_;
  Post(Command::kDie);
  // Joining waits until the kernel has processed the thread's robust list.
  thread_.join();
  joined_ = true;
  return abandoned_;
}

void SenderThread::Release() {
  if (joined_) return;
  Post(Command::kRelease);
  thread_.join();
  joined_ = true;
}

}  // namespace testing
}  // namespace lockless
