#include "tools/demo/message.h"

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <cstring>

namespace lockless {
namespace demo {

void FormatText(uint32_t producer, uint64_t sequence, char (&text)[24]) {
  char buffer[48];
  const int n = snprintf(buffer, sizeof(buffer), "P%u seq %" PRIu64, producer,
                         sequence);
  memset(text, ' ', sizeof(text));
  memcpy(text, buffer, std::min<size_t>(n > 0 ? n : 0, sizeof(text)));
}

}  // namespace demo
}  // namespace lockless
