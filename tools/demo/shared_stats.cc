#include "tools/demo/shared_stats.h"

#include <sys/mman.h>

#include <new>

#include "tools/demo/clock.h"

namespace lockless {
namespace demo {

const char* PhaseName(int32_t phase) {
  switch (phase) {
    case kStarting: return "setting up";
    case kSleeping: return "sleeping between sends";
    case kSending: return "inside Send()";
    case kSent: return "just after Send()";
    case kWaking: return "inside Wakeup()";
    case kFinished: return "finished";
  }
  return "?";
}

SharedStats* MapSharedStats() {
  void* page = mmap(nullptr, sizeof(SharedStats), PROT_READ | PROT_WRITE,
                    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (page == MAP_FAILED) return nullptr;
  SharedStats* stats = new (page) SharedStats();
  stats->t0_ns = NowNs();
  return stats;
}

}  // namespace demo
}  // namespace lockless
