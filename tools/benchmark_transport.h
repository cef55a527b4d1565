// The one interface every cross-process transport in tools/benchmark
// implements (our queue and each peer), so the latency and throughput
// drivers measure all of them with the same code.
//
// Lifecycle of one measurement (driven by benchmark_driver.cc):
//   parent: Create(message_bytes)           kernel object / shared memory
//   fork()
//   child:  StartReceiver(), then Receive() in a loop, then _exit
//   parent: StartSender(), then Send() in a loop, StopSender()
//   parent: waitpid(child), then the Transport is destroyed (which releases
//           names and descriptors).
// A Transport object is used for exactly one measurement.
//
// Every message is exactly message_bytes long (a stream transport frames by
// that length). Send and Receive return false on a failure that ends the
// measurement (a closed peer, a timeout, corruption); `error()` says why.
//
// Thread-safety: none; each process uses its copy from one thread.
#ifndef LOCKLESS_TOOLS_BENCHMARK_TRANSPORT_H_
#define LOCKLESS_TOOLS_BENCHMARK_TRANSPORT_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/status.h"

namespace lockless {
namespace benchmark_tool {

class Transport {
 public:
  virtual ~Transport() = default;

  // Parent, before fork. Unavailable (with the reason) when this transport
  // cannot carry messages of this size here; the report prints "n/a".
  virtual absl::Status Create(size_t message_bytes) = 0;

  // After fork, in the sending / receiving process. The receiver must be
  // ready to be woken when StartReceiver returns: the driver starts the
  // sender only then.
  virtual absl::Status StartSender() = 0;
  virtual absl::Status StartReceiver() = 0;

  // Releases what StartSender took (e.g. a sender slot, which must be freed
  // on the thread that claimed it). Called before the Transport is destroyed.
  virtual void StopSender() {}

  // Sends one message of message_bytes from `message`.
  virtual bool Send(const void* message) = 0;

  // Waits for the next message - blocking or spinning, whichever is this
  // transport's natural way to wait - and copies it to `message`. A transport
  // that can drop messages (ours, when the reader falls a lap behind) skips
  // ahead; the driver counts the gap from the sequence numbers.
  virtual bool Receive(void* message) = 0;

  // How many times Receive found its next message already overwritten
  // (ours: ReadResult::kTooOld). 0 for transports that never drop.
  virtual uint64_t too_old_events() const { return 0; }

  // What this transport was granted (buffer sizes, ring depth), for the
  // report's footnotes. Valid after Create.
  virtual std::string settings() const { return ""; }

  virtual std::string error() const { return error_; }

 protected:
  std::string error_;
};

using TransportFactory = std::function<std::unique_ptr<Transport>()>;

}  // namespace benchmark_tool
}  // namespace lockless

#endif  // LOCKLESS_TOOLS_BENCHMARK_TRANSPORT_H_
