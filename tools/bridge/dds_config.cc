#include "tools/bridge/dds_config.h"

#include <map>
#include <mutex>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace lockless::bridge {
namespace {

// Cyclone computes ports as 7400 + 250 * domain + ...: above 230 they leave
// the 16-bit range.
constexpr uint32_t kMaxDomainId = 230;

// Domains this process created with dds_create_domain, by id, with the XML
// they were made with. Cyclone allows one configuration per domain id per
// process; they live as long as the process.
struct DomainRegistry {
  std::mutex mutex;
  std::map<uint32_t, std::string> xml_by_domain;
};

DomainRegistry& Registry() {
  static DomainRegistry* registry = new DomainRegistry;
  return *registry;
}

}  // namespace

std::string LoopbackConfigXml(const DdsSettings& settings) {
  // Interfaces: only the loopback address, so Cyclone neither binds a
  // transmit socket on nor advertises any other address. AllowMulticast
  // false: discovery goes by unicast to the peers below, on the ports of
  // participant indices 0..MaxAutoParticipantIndex (each process takes the
  // first free index; 40 leaves room for the tests' and demo's processes).
  return absl::StrCat(
      "<CycloneDDS><Domain Id=\"any\">"
      "<General>"
      "<Interfaces><NetworkInterface address=\"127.0.0.1\"/></Interfaces>"
      "<AllowMulticast>false</AllowMulticast>"
      "</General>"
      "<Discovery>"
      "<ParticipantIndex>auto</ParticipantIndex>"
      "<MaxAutoParticipantIndex>40</MaxAutoParticipantIndex>"
      "<Peers><Peer address=\"127.0.0.1\"/></Peers>"
      "</Discovery>",
      settings.extra_xml, "</Domain></CycloneDDS>");
}

absl::StatusOr<dds_entity_t> CreateParticipant(const DdsSettings& settings) {
  if (settings.domain_id > kMaxDomainId) {
    return absl::InvalidArgumentError(
        absl::StrFormat("DDS domain id %u out of range (0..%u)",
                        settings.domain_id, kMaxDomainId));
  }
  if (settings.network == DdsNetwork::kLoopbackOnly) {
    const std::string xml = LoopbackConfigXml(settings);
    DomainRegistry& registry = Registry();
    std::lock_guard<std::mutex> lock(registry.mutex);
    auto it = registry.xml_by_domain.find(settings.domain_id);
    if (it == registry.xml_by_domain.end()) {
      const dds_entity_t domain = dds_create_domain(
          static_cast<dds_domainid_t>(settings.domain_id), xml.c_str());
      if (domain < 0) {
        return absl::InternalError(absl::StrFormat(
            "dds_create_domain(%u) failed: %s (is a domain with this id "
            "already configured otherwise in this process?)",
            settings.domain_id, dds_strretcode(domain)));
      }
      registry.xml_by_domain.emplace(settings.domain_id, xml);
    } else if (it->second != xml) {
      return absl::FailedPreconditionError(absl::StrFormat(
          "DDS domain %u already exists in this process with another "
          "configuration",
          settings.domain_id));
    }
  } else if (!settings.extra_xml.empty()) {
    return absl::InvalidArgumentError(
        "extra DDS XML is only accepted with the loopback-only network");
  }
  const dds_entity_t participant = dds_create_participant(
      static_cast<dds_domainid_t>(settings.domain_id), nullptr, nullptr);
  if (participant < 0) {
    return absl::InternalError(
        absl::StrFormat("dds_create_participant(%u) failed: %s",
                        settings.domain_id, dds_strretcode(participant)));
  }
  return participant;
}

std::string TopicName(const std::string& channel_name) {
  std::string topic = "lockless_";
  for (const char c : channel_name) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
        (c >= '0' && c <= '9')) {
      topic.push_back(c);
    } else {
      absl::StrAppendFormat(&topic, "_%02x", static_cast<unsigned char>(c));
    }
  }
  return topic;
}

}  // namespace lockless::bridge
