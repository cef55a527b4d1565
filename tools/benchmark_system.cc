#include "tools/benchmark_system.h"

#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <vector>

#include "absl/strings/str_format.h"

namespace lockless {
namespace benchmark_tool {

int64_t MeasureTimerOverheadNs() {
  constexpr int kPairs = 100'000;
  std::vector<int64_t> deltas(kPairs);
  for (int64_t& delta : deltas) {
    const int64_t start = MonotonicNowNs();
    delta = MonotonicNowNs() - start;
  }
  // The median, not the minimum: the clock's granularity can make single
  // pairs read 0, and the median is what a typical timed call paid.
  std::nth_element(deltas.begin(), deltas.begin() + kPairs / 2, deltas.end());
  return deltas[kPairs / 2];
}

int OnlineCpus() {
  const long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  return cpus > 0 ? static_cast<int>(cpus) : 1;
}

bool PinCurrentThreadToCpu(int cpu) {
  cpu_set_t mask;
  CPU_ZERO(&mask);
  CPU_SET(cpu % OnlineCpus(), &mask);
  return sched_setaffinity(0, sizeof(mask), &mask) == 0;
}

cpu_set_t CurrentAffinity() {
  cpu_set_t mask;
  CPU_ZERO(&mask);
  sched_getaffinity(0, sizeof(mask), &mask);
  return mask;
}

void RestoreAffinity(const cpu_set_t& mask) {
  sched_setaffinity(0, sizeof(mask), &mask);
}

namespace {

std::string CpuModel() {
  std::ifstream cpuinfo("/proc/cpuinfo");
  std::string line;
  while (std::getline(cpuinfo, line)) {
    // x86 kernels say "model name"; some arm64 kernels only "Model".
    if (line.rfind("model name", 0) == 0 || line.rfind("Model", 0) == 0) {
      const size_t value = line.find_first_not_of(" \t:", line.find(':'));
      if (value != std::string::npos) return line.substr(value);
    }
  }
  return "unknown";
}

}  // namespace

std::string LoadAverage() {
  std::ifstream loadavg("/proc/loadavg");
  std::string one, five, fifteen;
  loadavg >> one >> five >> fifteen;
  return absl::StrFormat("%s %s %s", one, five, fifteen);
}

std::string MachineFacts() {
  utsname name;
  std::string kernel = "unknown";
  if (uname(&name) == 0) {
    kernel =
        absl::StrFormat("%s %s %s", name.sysname, name.release, name.machine);
  }
  return absl::StrFormat("nproc=%d, kernel=%s, cpu=%s, load average %s",
                         OnlineCpus(), kernel, CpuModel(), LoadAverage());
}

}  // namespace benchmark_tool
}  // namespace lockless
