// Every DDS participant that tests, the demo and the benchmark create must
// talk to loopback addresses only. Checked two ways on a real participant:
//   - the sockets the process owns (/proc/self/fd -> socket inodes ->
//     /proc/self/net/{udp,udp6,tcp,tcp6}): each is bound to a loopback
//     address or the wildcard (receive-only: Cyclone binds its receive
//     sockets to INADDR_ANY), none is connected to a non-loopback peer,
//     and the transmit socket is bound to 127.0.0.1 (so what it sends
//     leaves through loopback only);
//   - Cyclone's own trace of its configuration and discovery: the selected
//     interface is lo, its own address 127.0.0.1, multicast off, and every
//     locator it adds or learns is 127.0.0.1.
// The same socket check runs on a `bridge --network=loopback` process.
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "tools/bridge/bridge_process.h"
#include "tools/bridge/bridge_sample.h"
#include "tools/bridge/dds_config.h"

namespace lockless::bridge {
namespace {

constexpr uint32_t kDomainTrace = 161;
constexpr uint32_t kDomainProcess = 162;

std::set<std::string> SocketInodes(const std::string& pid) {
  std::set<std::string> inodes;
  const std::string dir = "/proc/" + pid + "/fd";
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return inodes;
  while (dirent* e = readdir(d)) {
    char target[256];
    const ssize_t n =
        readlink((dir + "/" + e->d_name).c_str(), target, sizeof(target) - 1);
    if (n <= 0) continue;
    target[n] = '\0';
    const std::string t = target;
    if (t.rfind("socket:[", 0) == 0) {
      inodes.insert(t.substr(8, t.size() - 9));
    }
  }
  closedir(d);
  return inodes;
}

// /proc/net address "0100007F:AE62" (IPv4, host order hex) or 32 hex digits
// (IPv6): loopback, wildcard, or other.
enum class AddressKind { kLoopback, kWildcard, kOther };
AddressKind Classify(const std::string& address) {
  const std::string host = address.substr(0, address.find(':'));
  if (host.size() == 8) {
    const uint32_t value = std::stoul(host, nullptr, 16);
    if (value == 0) return AddressKind::kWildcard;
    return (value & 0xff) == 127 ? AddressKind::kLoopback : AddressKind::kOther;
  }
  if (host == std::string(32, '0')) return AddressKind::kWildcard;
  if (host == "00000000000000000000000001000000") return AddressKind::kLoopback;
  // ::ffff:127.x.y.z
  if (host.substr(0, 24) == "0000000000000000FFFF0000" &&
      host.substr(30, 2) == "7F") {
    return AddressKind::kLoopback;
  }
  return AddressKind::kOther;
}

// Checks the sockets of process `pid`; returns how many are bound to a
// loopback address.
int CheckSockets(const std::string& pid) {
  const std::set<std::string> inodes = SocketInodes(pid);
  int loopback_bound = 0;
  int found = 0;
  for (const char* table : {"udp", "udp6", "tcp", "tcp6"}) {
    std::ifstream file("/proc/" + pid + "/net/" + table);
    std::string line;
    std::getline(file, line);  // header
    while (std::getline(file, line)) {
      std::istringstream fields(line);
      std::string slot, local, remote, state, queues, timer, retr, uid, timeout,
          inode;
      fields >> slot >> local >> remote >> state >> queues >> timer >> retr >>
          uid >> timeout >> inode;
      if (inodes.count(inode) == 0) continue;
      ++found;
      const AddressKind bound = Classify(local);
      EXPECT_NE(bound, AddressKind::kOther)
          << table << " socket bound to " << local;
      if (bound == AddressKind::kLoopback) ++loopback_bound;
      const AddressKind peer = Classify(remote);
      EXPECT_NE(peer, AddressKind::kOther)
          << table << " socket connected to " << remote;
    }
  }
  EXPECT_GT(found, 0) << "no sockets found for pid " << pid;
  return loopback_bound;
}

TEST(LoopbackTest, ConfigurationNamesOnlyLoopback) {
  DdsSettings settings;
  const std::string xml = LoopbackConfigXml(settings);
  EXPECT_NE(xml.find("<NetworkInterface address=\"127.0.0.1\"/>"),
            std::string::npos);
  EXPECT_NE(xml.find("<AllowMulticast>false</AllowMulticast>"),
            std::string::npos);
  EXPECT_NE(xml.find("<Peer address=\"127.0.0.1\"/>"), std::string::npos);
}

TEST(LoopbackTest, ParticipantBindsAndTalksOnLoopbackOnly) {
  // The user's environment must not matter: point CYCLONEDDS_URI at
  // something that would widen the network if it were used.
  setenv("CYCLONEDDS_URI",
         "<CycloneDDS><Domain><General><AllowMulticast>true</AllowMulticast>"
         "</General></Domain></CycloneDDS>",
         1);
  const char* tmp = getenv("TEST_TMPDIR");
  const std::string trace = absl::StrCat(tmp ? tmp : "/tmp", "/dds_trace.txt");
  DdsSettings settings;
  settings.domain_id = kDomainTrace;
  settings.extra_xml = absl::StrCat(
      "<Tracing><Category>config,discovery,info</Category><OutputFile>", trace,
      "</OutputFile></Tracing>");
  absl::StatusOr<dds_entity_t> first = CreateParticipant(settings);
  ASSERT_TRUE(first.ok()) << first.status();
  absl::StatusOr<dds_entity_t> second = CreateParticipant(settings);
  ASSERT_TRUE(second.ok()) << second.status();
  // A writer in one and a reader in the other: data paths exist too.
  const dds_entity_t topic1 = dds_create_topic(
      *first, &lockless_bridge_Sample_desc, "lockless_t", nullptr, nullptr);
  const dds_entity_t topic2 = dds_create_topic(
      *second, &lockless_bridge_Sample_desc, "lockless_t", nullptr, nullptr);
  ASSERT_GT(dds_create_writer(*first, topic1, nullptr, nullptr), 0);
  ASSERT_GT(dds_create_reader(*second, topic2, nullptr, nullptr), 0);

  EXPECT_GT(CheckSockets("self"), 0) << "no socket bound to loopback";

  dds_delete(*first);
  dds_delete(*second);
  std::ifstream file(trace);
  ASSERT_TRUE(file) << trace;
  std::string line;
  bool selected_lo = false, own_loopback = false, multicast_off = false;
  int locators_checked = 0;
  const std::regex locator("udp6?/([0-9a-fA-F.:\\[\\]]+)");
  while (std::getline(file, line)) {
    if (line.find("selected interfaces: lo ") != std::string::npos) {
      selected_lo = true;
    }
    if (line.find("ownip: udp/127.0.0.1") != std::string::npos) {
      own_loopback = true;
    }
    if (line.find("Domain/General/AllowMulticast/#text: false") !=
        std::string::npos) {
      multicast_off = true;
    }
    // Lines listing what exists (all interfaces) or configured-but-unused
    // multicast defaults name other addresses legitimately.
    if (line.find(" interfaces: ") != std::string::npos ||
        line.find("MC: ") != std::string::npos ||
        line.find("config: ") != std::string::npos) {
      continue;
    }
    for (std::sregex_iterator it(line.begin(), line.end(), locator), end;
         it != end; ++it) {
      const std::string address = (*it)[1];
      ++locators_checked;
      EXPECT_EQ(address.rfind("127.", 0), 0u)
          << "non-loopback locator in: " << line;
    }
  }
  EXPECT_GT(locators_checked, 0) << "the trace named no locator at all";
  EXPECT_TRUE(selected_lo);
  EXPECT_TRUE(own_loopback);
  EXPECT_TRUE(multicast_off);
}

TEST(LoopbackTest, BridgeProcessBindsLoopbackOnly) {
  const char* tmp = getenv("TEST_TMPDIR");
  const std::string dir = absl::StrCat(tmp ? tmp : "/tmp", "/loopback_dir");
  mkdir(dir.c_str(), 0700);
  BridgeProcess bridge(RunfilePath("tools/bridge/bridge"), dir,
                       dir + "/.bridge", kDomainProcess, "loopback-test",
                       "export ping reliable depth=4\nimport pong\n");
  ASSERT_TRUE(bridge.Start().ok());
  // The sockets exist once the participant does ("running" is printed
  // after Start returned).
  EXPECT_GT(CheckSockets(std::to_string(bridge.pid())), 0);
  bridge.Stop();
}

}  // namespace
}  // namespace lockless::bridge
