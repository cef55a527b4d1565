// A small file of 64-bit words the bridge keeps across its own restarts
// (which message it forwarded last), mapped MAP_SHARED: a store is in the
// page cache as soon as it is made, so it survives the process being killed
// at any instruction without a system call per message. (It does not survive
// a machine crash, nor do the channels in /dev/shm it describes.)
//
// Every update is a single aligned 64-bit store, so a death leaves each word
// either old or new, never torn; readers of a record that spans two words
// order their checks so either state of the other word is harmless (see the
// users). Only the owning bridge process maps the file (it holds an exclusive
// flock: a second bridge on the same state is refused).
//
// Thread-safety: words are accessed with relaxed atomics (one writer thread
// per word; the file's only concurrent reader is a later process, after this
// one is gone). Not RT-relevant: the bridge is not a real-time path.
#ifndef LOCKLESS_TOOLS_BRIDGE_STATE_FILE_H_
#define LOCKLESS_TOOLS_BRIDGE_STATE_FILE_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/statusor.h"

namespace lockless::bridge {

class StateFile {
 public:
  // Opens or creates `path` holding `num_words` words (new files and files of
  // another size start zeroed: a state we cannot trust is forgotten, which
  // at worst re-delivers what the DDS history still holds). Errors: the
  // errno of open/flock/ftruncate/mmap; FailedPrecondition when another
  // process holds the file (another bridge uses the same state directory for
  // the same channel).
  static absl::StatusOr<StateFile> Open(const std::string& path,
                                        size_t num_words);

  StateFile(StateFile&& other) noexcept;
  StateFile& operator=(StateFile&&) = delete;
  StateFile(const StateFile&) = delete;
  StateFile& operator=(const StateFile&) = delete;
  ~StateFile();

  size_t num_words() const { return num_words_; }
  uint64_t Load(size_t word) const;
  void Store(size_t word, uint64_t value);

 private:
  StateFile(int fd, uint64_t* words, size_t num_words)
      : fd_(fd), words_(words), num_words_(num_words) {}
  int fd_ = -1;
  uint64_t* words_ = nullptr;
  size_t num_words_ = 0;
};

}  // namespace lockless::bridge

#endif  // LOCKLESS_TOOLS_BRIDGE_STATE_FILE_H_
