// Test-only: whether another thread of this process is asleep in the kernel,
// for tests that must not act before a thread blocks (e.g. in FUTEX_WAIT) and
// must not use sleeps as synchronisation.
#ifndef LOCKLESS_TESTING_THREAD_STATE_H_
#define LOCKLESS_TESTING_THREAD_STATE_H_

#include <sys/types.h>

#include <fstream>
#include <string>

namespace lockless {
namespace testing {

// Whether thread `tid` of this process is in state S (interruptible sleep)
// right now, from /proc/self/task/<tid>/stat.
inline bool ThreadIsSleeping(pid_t tid) {
  std::ifstream stat("/proc/self/task/" + std::to_string(tid) + "/stat");
  std::string line;
  std::getline(stat, line);
  const size_t paren = line.rfind(')');
  return paren != std::string::npos && paren + 2 < line.size() &&
         line[paren + 2] == 'S';
}

}  // namespace testing
}  // namespace lockless

#endif  // LOCKLESS_TESTING_THREAD_STATE_H_
