// Text forms of what the memory printer shows: times, queue indices, ring
// entries, lock words, payloads. Pure functions of their arguments (the
// liveness callback aside). Internal to the printer.
#ifndef LOCKLESS_IPC_INTERNAL_PRINTER_FORMAT_H_
#define LOCKLESS_IPC_INTERNAL_PRINTER_FORMAT_H_

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <string>

#include "index/index.h"

namespace lockless {
namespace internal {

// /proc/<tid> exists (right for threads in this pid namespace).
bool DefaultIsAlive(pid_t tid);
std::string FormatMonotonic(int64_t ns);
std::string FormatRealtime(int64_t ns);
// A raw queue index: "invalid", the number, or the number flagged illegal.
std::string QueueIndexText(uint32_t raw, uint32_t queue_size);
// A ring entry / scratch_index / to_replace value, flagged if it names no
// message of a region with `num_messages`.
std::string IndexText(Index entry, uint32_t queue_size, uint64_t num_messages);
// A robust mutex word: free or owner tid (alive/dead), OWNER_DIED, WAITERS.
std::string OwnerText(uint32_t word, const std::function<bool(pid_t)>& is_alive);
// Payload bytes as an escaped C string body, or as a hex dump.
void AppendEscaped(const std::string& bytes, std::string* out);
void AppendHex(const std::string& bytes, const std::string& indent,
               std::string* out);

}  // namespace internal
}  // namespace lockless

#endif  // LOCKLESS_IPC_INTERNAL_PRINTER_FORMAT_H_
