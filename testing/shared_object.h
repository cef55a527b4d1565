// Test-only: one object of type T in a MAP_SHARED anonymous page, created
// before fork() so the process and every child it forks afterwards see the
// same object (counters, reports, and sync/futex.h's Event as a
// cross-process flag).
#ifndef LOCKLESS_TESTING_SHARED_OBJECT_H_
#define LOCKLESS_TESTING_SHARED_OBJECT_H_

#include <sys/mman.h>

#include <cstdio>
#include <cstdlib>
#include <new>

namespace lockless {
namespace testing {

// T must be usable from several processes at once (atomics, Event, plain
// data written before fork). Value-initialised. Not copyable: one mapping,
// one owner, unmapped by the destructor.
template <typename T>
class SharedObject {
 public:
  SharedObject() {
    void* memory = mmap(nullptr, sizeof(T), PROT_READ | PROT_WRITE,
                        MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (memory == MAP_FAILED) {
      std::perror("SharedObject: mmap");
      std::abort();
    }
    value_ = new (memory) T();
  }
  ~SharedObject() { munmap(value_, sizeof(T)); }
  SharedObject(const SharedObject&) = delete;
  SharedObject& operator=(const SharedObject&) = delete;

  T* operator->() const { return value_; }
  T& operator*() const { return *value_; }

 private:
  T* value_;
};

}  // namespace testing
}  // namespace lockless

#endif  // LOCKLESS_TESTING_SHARED_OBJECT_H_
