// Test-only: a flag shared by a process and the children it forks, so a
// parent can tell looping children to stop once the race it wants to see has
// happened (instead of hoping a fixed number of rounds is enough).
#ifndef LOCKLESS_TESTING_SHARED_FLAG_H_
#define LOCKLESS_TESTING_SHARED_FLAG_H_

#include <sys/mman.h>

#include <atomic>
#include <cstdlib>
#include <cstdio>
#include <new>

namespace lockless {
namespace testing {

// Lives in a MAP_SHARED anonymous page created before fork(); every child
// forked afterwards sees the same flag. Not copyable: one mapping, one owner.
class SharedFlag {
 public:
  SharedFlag() {
    void* page = mmap(nullptr, sizeof(std::atomic<bool>),
                      PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1,
                      0);
    if (page == MAP_FAILED) {
      std::perror("SharedFlag: mmap");
      std::abort();
    }
    flag_ = new (page) std::atomic<bool>(false);
  }
  ~SharedFlag() { munmap(flag_, sizeof(std::atomic<bool>)); }
  SharedFlag(const SharedFlag&) = delete;
  SharedFlag& operator=(const SharedFlag&) = delete;

  // Relaxed is enough: the flag carries no data, only "stop soon".
  void Set() { flag_->store(true, std::memory_order_relaxed); }
  bool IsSet() const { return flag_->load(std::memory_order_relaxed); }

 private:
  std::atomic<bool>* flag_;
};

}  // namespace testing
}  // namespace lockless

#endif  // LOCKLESS_TESTING_SHARED_FLAG_H_
