// Two tiers of assertion, shared by every package of the library.
//
//   LOCKLESS_CHECK(cond, msg)  always on: for invariants of our own code whose
//                              violation must never go unnoticed (it aborts
//                              with a message). Never use it for anything
//                              another process or a user can cause: those
//                              get an error value instead.
//   LOCKLESS_DCHECK(cond)      debug builds only; still type-checks `cond` in
//                              optimised builds so it cannot rot.
//
// Both write with write(2) and abort(), so they are async-signal-safe and never
// allocate.
#ifndef LOCKLESS_INDEX_INTERNAL_CHECK_H_
#define LOCKLESS_INDEX_INTERNAL_CHECK_H_

#include <unistd.h>

#include <cstdlib>
#include <cstring>

namespace lockless {
namespace internal {

[[noreturn]] inline void CheckFailed(const char* file, int line,
                                     const char* condition,
                                     const char* message) {
  const char* parts[] = {"lockless: check failed at ", file, ":", nullptr,
                         ": ", condition, ": ", message, "\n"};
  char line_text[16];
  int n = 0;
  char digits[16];
  int value = line;
  do {
    digits[n++] = static_cast<char>('0' + value % 10);
    value /= 10;
  } while (value > 0 && n < 15);
  for (int i = 0; i < n; ++i) line_text[i] = digits[n - 1 - i];
  line_text[n] = '\0';
  parts[3] = line_text;
  for (const char* part : parts) {
    // Best effort: there is nothing useful to do if stderr is gone.
    ssize_t ignored = ::write(STDERR_FILENO, part, std::strlen(part));
    (void)ignored;
  }
  std::abort();
}

}  // namespace internal
}  // namespace lockless

#define LOCKLESS_CHECK(condition, message)                               \
  do {                                                                   \
    if (__builtin_expect(!(condition), 0)) {                             \
      ::lockless::internal::CheckFailed(__FILE__, __LINE__, #condition,  \
                                        message);                        \
    }                                                                    \
  } while (false)

#ifdef NDEBUG
#define LOCKLESS_DCHECK(condition) \
  do {                             \
    if (false) (void)(condition);  \
  } while (false)
#else
#define LOCKLESS_DCHECK(condition) LOCKLESS_CHECK(condition, "debug check")
#endif

#endif  // LOCKLESS_INDEX_INTERNAL_CHECK_H_
