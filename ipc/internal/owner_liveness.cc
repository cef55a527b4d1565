#include "ipc/internal/owner_liveness.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "ipc/internal/thread_signal.h"
#include "sync/robust_list.h"

namespace lockless {
namespace internal {
namespace {

// Parses the stat line: "<tid> (<comm>) <state> <f4> ... <f22 starttime> ...".
// comm may hold spaces and parentheses, so fields are counted from the last
// ')'.
bool ParseStat(const char* text, ThreadStat* out) {
  const char* close = std::strrchr(text, ')');
  if (close == nullptr || close[1] != ' ') return false;
  const char* p = close + 2;  // Field 3, the state.
  const char state = *p;
  // Skip to field 22: 19 more separators after field 3.
  for (int field = 3; field < 22; ++field) {
    p = std::strchr(p, ' ');
    if (p == nullptr) return false;
    ++p;
  }
  uint64_t ticks = 0;
  bool any = false;
  for (; *p >= '0' && *p <= '9'; ++p) {
    ticks = ticks * 10 + static_cast<uint64_t>(*p - '0');
    any = true;
  }
  if (!any) return false;
  out->lookup = ThreadStat::Lookup::kFound;
  out->start_time_ticks = ticks;
  out->zombie = state == 'Z' || state == 'X' || state == 'x';
  return true;
}

}  // namespace

bool ProcNumbersAsWeDo() {
  // "NSpid:" lists our pid in each pid namespace from the one /proc was
  // mounted from down to our own: one entry exactly when they are the same.
  // (Absent before Linux 4.1: then unknown, so no.)
  const int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  char text[4096];
  size_t length = 0;
  while (length < sizeof(text) - 1) {
    const ssize_t got = read(fd, text + length, sizeof(text) - 1 - length);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) break;
    length += static_cast<size_t>(got);
  }
  close(fd);
  text[length] = '\0';
  const char* line = std::strstr(text, "\nNSpid:");
  if (line == nullptr) return false;
  int entries = 0;
  for (const char* p = line + 7; *p != '\0' && *p != '\n';) {
    while (*p == ' ' || *p == '\t') ++p;
    if (*p < '0' || *p > '9') break;
    ++entries;
    while (*p >= '0' && *p <= '9') ++p;
  }
  return entries == 1;
}

ThreadStat ReadThreadStat(pid_t pid, pid_t tid) {
  ThreadStat result;
  if (pid <= 0 || tid <= 0) {
    result.lookup = ThreadStat::Lookup::kNoSuchThread;
    return result;
  }
  char path[64];
  std::snprintf(path, sizeof(path), "/proc/%d/task/%d/stat", pid, tid);
  const int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    // ENOENT: no such process, or no such thread in it, or (/proc mounted
    // with hidepid=2) another user's live thread; ESRCH: it exited while
    // being looked up. Only the kernel's own answer (tgkill 0: ESRCH) makes
    // it "no such thread".
    if ((errno == ENOENT || errno == ESRCH) && !ThreadMayExist(pid, tid)) {
      result.lookup = ThreadStat::Lookup::kNoSuchThread;
    }
    return result;
  }
  // comm is at most 64 bytes; the 52 numeric fields fit comfortably.
  char text[1024];
  ssize_t length;
  do {
    length = read(fd, text, sizeof(text) - 1);
  } while (length < 0 && errno == EINTR);
  const int read_errno = errno;
  close(fd);
  if (length <= 0) {
    // ESRCH: the thread was reaped between open and read.
    if (length < 0 && read_errno == ESRCH && !ThreadMayExist(pid, tid)) {
      result.lookup = ThreadStat::Lookup::kNoSuchThread;
    }
    return result;
  }
  text[length] = '\0';
  if (!ParseStat(text, &result)) result = ThreadStat();
  return result;
}

OwnerIdentity CurrentOwnerIdentity() {
  // Not cached: a per-thread cache keyed by the tid survives fork, and a
  // child (or a grandchild that never refreshed it) can get the very tid
  // cached, in a new pid namespace or once the cached thread's tid is
  // reused; it would then record its ancestor. Only setup paths call this.
  OwnerIdentity identity{};
  identity.tid = CurrentTid();  // What our robust mutex words hold.
  identity.pid = getpid();
  identity.pid_namespace = PidNamespaceId();
  // Through a /proc of another pid namespace, <pid>/task/<tid> names an
  // unrelated thread: record no start time (judged kUnknown) rather than
  // that thread's.
  const ThreadStat stat = ProcNumbersAsWeDo()
                              ? ReadThreadStat(identity.pid, identity.tid)
                              : ThreadStat();
  identity.start_time_ticks =
      stat.lookup == ThreadStat::Lookup::kFound ? stat.start_time_ticks : 0;
  return identity;
}

const char* OwnerLivenessName(OwnerLiveness liveness) {
  switch (liveness) {
    case OwnerLiveness::kAlive:
      return "alive";
    case OwnerLiveness::kGone:
      return "gone";
    case OwnerLiveness::kReplaced:
      return "tid reused by another thread";
    case OwnerLiveness::kUnknown:
      return "unknown";
  }
  return "?";
}

OwnerLiveness JudgeOwner(pid_t tid, const OwnerIdentity& record,
                         uint64_t our_pid_namespace) {
  if (tid <= 0 || record.tid != tid) return OwnerLiveness::kUnknown;
  if (record.pid_namespace == 0 || record.pid_namespace != our_pid_namespace ||
      record.start_time_ticks == 0) {
    return OwnerLiveness::kUnknown;
  }
  // Our /proc may number threads as an outer pid namespace does (entered
  // without mounting our own): the file read below would be another thread.
  if (!ProcNumbersAsWeDo()) return OwnerLiveness::kUnknown;
  const ThreadStat stat = ReadThreadStat(record.pid, tid);
  switch (stat.lookup) {
    case ThreadStat::Lookup::kNoSuchThread:
      return OwnerLiveness::kGone;
    case ThreadStat::Lookup::kUnreadable:
      return OwnerLiveness::kUnknown;
    case ThreadStat::Lookup::kFound:
      break;
  }
  if (stat.start_time_ticks != record.start_time_ticks) {
    return OwnerLiveness::kReplaced;
  }
  return stat.zombie ? OwnerLiveness::kGone : OwnerLiveness::kAlive;
}

OwnerIdentity LoadOwnerRecord(const OwnerRecord& record) {
  OwnerIdentity identity{};
  // acquire: pairs with the release store of tid in StoreOwnerRecord, so the
  // fields below are at least that writer's.
  const int32_t tid = record.tid.load(std::memory_order_acquire);
  // relaxed: validated by the tid re-check after the acquire fence.
  identity.pid = record.pid.load(std::memory_order_relaxed);
  identity.pid_namespace = record.pid_namespace.load(std::memory_order_relaxed);
  identity.start_time_ticks =
      record.start_time_ticks.load(std::memory_order_relaxed);
  // acquire fence: keeps the loads above before the re-check, so a rewrite
  // that began meanwhile (tid := 0 first) is seen and the snapshot dropped.
  std::atomic_thread_fence(std::memory_order_acquire);
  // relaxed: ordered by the fence above.
  identity.tid = record.tid.load(std::memory_order_relaxed) == tid ? tid : 0;
  return identity;
}

void StoreOwnerRecord(OwnerRecord& record, const OwnerIdentity& identity) {
  // relaxed + release fence: the fence orders tid := 0 before the field
  // stores for a reader that sees any of them (LoadOwnerRecord's re-check).
  record.tid.store(0, std::memory_order_relaxed);
  std::atomic_thread_fence(std::memory_order_release);
  // relaxed: published by the release store of tid below.
  record.pid.store(identity.pid, std::memory_order_relaxed);
  record.pid_namespace.store(identity.pid_namespace, std::memory_order_relaxed);
  record.start_time_ticks.store(identity.start_time_ticks,
                                std::memory_order_relaxed);
  // release: pairs with the acquire load of tid in LoadOwnerRecord.
  record.tid.store(identity.tid, std::memory_order_release);
}

bool MarkOwnerDeadIfStale(RobustMutex& mutex, const OwnerRecord& record,
                          uint64_t our_pid_namespace) {
  // acquire: not what orders the record (a locker's compare-exchange is
  // only an acquire): callers hold the setup lock, under which every slot
  // owner recorded itself before locking, so the record read next is at
  // least the one written for the owner this word names.
  const uint32_t word = mutex.futex.load(std::memory_order_acquire);
  const pid_t tid = OwnerTid(word);
  if (tid == 0 || OwnerDied(word)) return false;
  const OwnerLiveness liveness =
      JudgeOwner(tid, LoadOwnerRecord(record), our_pid_namespace);
  if (liveness != OwnerLiveness::kGone &&
      liveness != OwnerLiveness::kReplaced) {
    return false;
  }
  return mutex.MarkOwnerDead(word);
}

}  // namespace internal
}  // namespace lockless
