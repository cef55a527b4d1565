// RacyCopy: memcpy for the reader side of a seqlock.
//
// A reader copies a message's payload while a sender may, rarely, be
// rewriting it (the message was recycled mid-copy). The copy is then
// discarded: the reader re-checks the message's queue index after an acquire
// fence and returns OVERWROTE. Such a copy is a data race by the letter of the
// C++ memory model, so ThreadSanitizer is told to ignore the reads inside it
// (only these reads, not the validation around them). Without TSan this is
// exactly memcpy.
#ifndef LOCKLESS_IPC_INTERNAL_RACY_COPY_H_
#define LOCKLESS_IPC_INTERNAL_RACY_COPY_H_

#include <cstddef>
#include <cstring>

#if defined(__SANITIZE_THREAD__)
extern "C" void AnnotateIgnoreReadsBegin(const char* file, int line);
extern "C" void AnnotateIgnoreReadsEnd(const char* file, int line);
#endif

namespace lockless {
namespace internal {

inline void RacyCopy(void* destination, const void* source, size_t bytes) {
#if defined(__SANITIZE_THREAD__)
  AnnotateIgnoreReadsBegin(__FILE__, __LINE__);
#endif
  std::memcpy(destination, source, bytes);
#if defined(__SANITIZE_THREAD__)
  AnnotateIgnoreReadsEnd(__FILE__, __LINE__);
#endif
}

}  // namespace internal
}  // namespace lockless

#endif  // LOCKLESS_IPC_INTERNAL_RACY_COPY_H_
