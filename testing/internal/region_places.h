// Test-only, internal to the interleaving explorer: names for the places a
// write to a channel region goes to (ring[3], sender[1].to_replace, ...),
// for schedules (StepUntil) and readable traces.
//
// Thread-safety: plain functions; ValueAt reads the region (atomically, a
// snapshot for display).
#ifndef LOCKLESS_TESTING_INTERNAL_REGION_PLACES_H_
#define LOCKLESS_TESTING_INTERNAL_REGION_PLACES_H_

#include <cstdint>
#include <string>

#include "ipc/internal/queue_layout.h"
#include "testing/interleaving_explorer.h"

namespace lockless::testing::internal {

struct Place {
  RegionPlace place = RegionPlace::kOutside;
  int index = -1;
  uint64_t byte = 0;  // kMessageData: offset into the payload;
                      // kSenderParked: which parked entry.
};

// The place `offset` (from the region start) lies in.
Place Locate(const ::lockless::internal::RegionView& view, uint64_t offset);

// "ring[3]", "msg[5].data+8", "sender[1].to_replace", ...
std::string PlaceName(const Place& place);

// A coarse class of the place ("payload", "ring CAS", "to_replace", ...).
std::string PlaceKind(const Place& place);

// The value now at `place`, readable ("Index(queue_index 7, message 5)"), or
// "" for places whose value says little (payload bytes, times, header).
std::string ValueAt(const ::lockless::internal::RegionView& view,
                    const Place& place);

}  // namespace lockless::testing::internal

#endif  // LOCKLESS_TESTING_INTERNAL_REGION_PLACES_H_
