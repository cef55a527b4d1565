// Owner liveness that does not depend on the kernel's robust-list walk alone.
//
// Sender slots, watcher slots and the setup lock are robust PI mutexes whose
// word names the owner's tid. The kernel marks a dead owner's word
// FUTEX_OWNER_DIED when it walks the dead thread's robust list, but not
// always: an OOM-reaped process may lose its memory (and list) first, a
// runtime may replace or unregister the list (set_robust_list), and tids are
// reused, so a stale word can name an unrelated, live thread. Each owner
// therefore also records an OwnerRecord (queue_layout.h): its pid, its pid
// namespace and its thread's start time (field 22 of
// /proc/<pid>/task/<tid>/stat, clock ticks since boot). JudgeOwner compares
// that record with what /proc says now.
//
// What each verdict means, and what callers may do with it:
//   kAlive     thread <tid> of process <pid> exists, is not a zombie and
//              started when the record says: the recorded owner (or, with a
//              start time only clock-tick exact, a thread created in the same
//              tick with the same tid after ~pid_max others: not a concern).
//   kGone      no such thread, or a zombie: the owner died.
//   kReplaced  the tid now belongs to a thread that started at another time:
//              the owner died and its tid was reused.
//   kUnknown   the record is not this owner's (it names another tid: the
//              owner died, or is, between locking and recording; or it was
//              scribbled), it comes from another pid namespace (its numbers
//              mean nothing here), /proc cannot be read, or /proc numbers
//              threads as another pid namespace does (ProcNumbersAsWeDo). Treated as alive:
//              only the kernel's mark can then free it.
// kGone and kReplaced may be acted on exactly as if the kernel had marked the
// word FUTEX_OWNER_DIED (RobustMutex::MarkOwnerDead), under the conditions
// each caller states.
//
// Cost: two open/read/close of /proc files (/proc/self/status, then the
// thread's stat; some microseconds; plus one tgkill when the stat file is
// missing), no allocation. Never on the hot path (Send, Read, LatestQueueIndex): setup,
// recovery, MakeWatcher, and the first Wakeup after a watcher registers.
// Thread-safe; async-signal-unsafe only because of snprintf.
#ifndef LOCKLESS_IPC_INTERNAL_OWNER_LIVENESS_H_
#define LOCKLESS_IPC_INTERNAL_OWNER_LIVENESS_H_

#include <sys/types.h>

#include <cstdint>

#include "ipc/internal/queue_layout.h"

namespace lockless {
namespace internal {

// A thread as /proc shows it.
struct ThreadStat {
  enum class Lookup {
    kFound,         // start_time_ticks and zombie are set.
    kNoSuchThread,  // No thread <tid> in process <pid>: /proc has no file
                    // and tgkill(pid, tid, 0) says ESRCH (so hidepid=2,
                    // which hides live threads, is not mistaken for death).
    kUnreadable,    // /proc missing, unparsable, or another error.
  };
  Lookup lookup = Lookup::kUnreadable;
  uint64_t start_time_ticks = 0;
  bool zombie = false;  // State Z or X: exited, not yet reaped.
};

// Whether /proc numbers processes and threads as the caller's pid namespace
// does: it was mounted from that namespace (a process that entered a pid
// namespace without mounting its own /proc, e.g. nsenter -p or unshare -p
// without --mount-proc, sees an outer namespace's numbers). Reads
// /proc/self/status (its NSpid line); false if it cannot tell. No
// allocation.
bool ProcNumbersAsWeDo();

// Reads /proc/<pid>/task/<tid>/stat (numbers as /proc's pid namespace sees
// them: the caller's only if ProcNumbersAsWeDo()). No allocation.
ThreadStat ReadThreadStat(pid_t pid, pid_t tid);

// The calling thread's identity, as an owner records it: tid, pid, pid
// namespace and start time (0 when /proc cannot be read; such a record is
// judged kUnknown, i.e. alive, by everyone). Not cached (a cache keyed by
// tid would survive fork into a child that got the cached tid): a few
// system calls per call.
OwnerIdentity CurrentOwnerIdentity();

enum class OwnerLiveness { kAlive, kGone, kReplaced, kUnknown };

const char* OwnerLivenessName(OwnerLiveness liveness);

// Judges the thread named by `tid` (taken from a robust mutex word that does
// not say FUTEX_OWNER_DIED), given the owner's `record`, from the pid
// namespace `our_pid_namespace` (PidNamespaceId()). See the top comment.
OwnerLiveness JudgeOwner(pid_t tid, const OwnerIdentity& record,
                         uint64_t our_pid_namespace);

// Snapshot of a record in the region for JudgeOwner and printing: tid read
// before and after the other fields (a seqlock keyed by the tid, see
// StoreOwnerRecord); a record being rewritten reads as tid 0 (kUnknown).
OwnerIdentity LoadOwnerRecord(const OwnerRecord& record);

// Writes `identity` into `record`: tid := 0, then pid, namespace and start
// time, then tid (release). A reader that sees the new tid sees the other
// fields with it; a death in between leaves tid 0, which everyone judges
// kUnknown (alive). Several writers must be serialised by the caller.
void StoreOwnerRecord(OwnerRecord& record, const OwnerIdentity& identity);

// If `mutex`'s word names an owner that JudgeOwner finds kGone or kReplaced
// by `record`, marks it FUTEX_OWNER_DIED (RobustMutex::MarkOwnerDead) and
// returns true. The caller must exclude the ABA MarkOwnerDead describes: for
// slots, by holding the setup lock (every claim of a slot happens under it,
// so no live owner can appear in the word meanwhile).
bool MarkOwnerDeadIfStale(RobustMutex& mutex, const OwnerRecord& record,
                          uint64_t our_pid_namespace);

}  // namespace internal
}  // namespace lockless

#endif  // LOCKLESS_IPC_INTERNAL_OWNER_LIVENESS_H_
