#include "tools/demo/output.h"

#include <unistd.h>

#include <cerrno>

#include "absl/strings/str_format.h"
#include "tools/demo/clock.h"

namespace lockless {
namespace demo {
namespace {

int64_t g_t0_ns = 0;  // 0: not started

}  // namespace

void Out(const std::string& text) {
  const char* p = text.data();
  size_t left = text.size();
  while (left > 0) {
    const ssize_t n = write(STDOUT_FILENO, p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    p += n;
    left -= static_cast<size_t>(n);
  }
}

void StartEventClock(int64_t t0_ns) { g_t0_ns = t0_ns; }

void Event(const std::string& who, const std::string& text) {
  const double t = g_t0_ns != 0 ? (NowNs() - g_t0_ns) / 1e9 : 0.0;
  Out(absl::StrFormat("[%7.3f] %-9s %s\n", t, who, text));
}

}  // namespace demo
}  // namespace lockless
