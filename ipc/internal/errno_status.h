// ErrnoStatus: an absl::Status from an errno value ("what: strerror(errno)"),
// with the matching status code. (This abseil predates absl::ErrnoToStatus.)
#ifndef LOCKLESS_IPC_INTERNAL_ERRNO_STATUS_H_
#define LOCKLESS_IPC_INTERNAL_ERRNO_STATUS_H_

#include <string.h>

#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace lockless {
namespace internal {

inline absl::Status ErrnoStatus(int error_number, std::string_view what) {
  char buffer[128];
  // GNU strerror_r: returns the message, possibly not in `buffer`.
  const char* text = strerror_r(error_number, buffer, sizeof(buffer));
  return absl::Status(absl::ErrnoToStatusCode(error_number),
                      absl::StrCat(std::string(what), ": ", text));
}

}  // namespace internal
}  // namespace lockless

#endif  // LOCKLESS_IPC_INTERNAL_ERRNO_STATUS_H_
