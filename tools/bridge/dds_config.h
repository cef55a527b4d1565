// How the bridge joins a DDS domain: the Cyclone DDS configuration, set from
// code, and the participant made with it.
//
// Two networks:
//   kLoopbackOnly   the loopback interface only (127.0.0.1), multicast off,
//                   unicast discovery towards 127.0.0.1. Every participant
//                   that tests, the demo and the benchmark create uses this:
//                   they may send to loopback addresses only. The XML is
//                   built here and handed to dds_create_domain, so a user's
//                   CYCLONEDDS_URI can never widen it.
//   kSystem         Cyclone DDS's own defaults (or the user's CYCLONEDDS_URI):
//                   normal multicast discovery on the machine's interfaces,
//                   for real robots. Chosen explicitly (bridge --network).
//
// Thread-safety: every function may be called from any thread. Not RT-safe
// (DDS entity creation allocates and may start threads).
#ifndef LOCKLESS_TOOLS_BRIDGE_DDS_CONFIG_H_
#define LOCKLESS_TOOLS_BRIDGE_DDS_CONFIG_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "dds/dds.h"

namespace lockless::bridge {

enum class DdsNetwork { kLoopbackOnly, kSystem };

struct DdsSettings {
  // The DDS domain id (0..230: Cyclone derives UDP ports from it). Give every
  // test its own so concurrent tests do not see each other.
  uint32_t domain_id = 0;
  DdsNetwork network = DdsNetwork::kLoopbackOnly;
  // XML elements appended inside <Domain> (e.g. <Tracing> for tests). Only
  // with kLoopbackOnly (kSystem takes no configuration from code).
  std::string extra_xml;
};

// The Cyclone DDS XML configuration for kLoopbackOnly (`settings.network`
// must be kLoopbackOnly).
std::string LoopbackConfigXml(const DdsSettings& settings);

// Creates a participant in `settings.domain_id`. For kLoopbackOnly the domain
// is first created with LoopbackConfigXml (once per process and domain id;
// later participants of the same domain share it, and asking for the same id
// with other settings is FailedPrecondition). Errors: InvalidArgument (domain
// id out of range, extra_xml with kSystem), Internal (DDS refused, with its
// return code). The caller owns the participant (dds_delete).
absl::StatusOr<dds_entity_t> CreateParticipant(const DdsSettings& settings);

// "lockless_" + the channel name with every character outside [A-Za-z0-9]
// written as _xx (hex): DDS topic names allow no '.' or '-', and the
// escaping keeps distinct channel names distinct.
std::string TopicName(const std::string& channel_name);

}  // namespace lockless::bridge

#endif  // LOCKLESS_TOOLS_BRIDGE_DDS_CONFIG_H_
