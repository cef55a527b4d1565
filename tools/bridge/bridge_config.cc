#include "tools/bridge/bridge_config.h"

#include <fstream>
#include <set>
#include <sstream>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "ipc/shm_channel.h"

namespace lockless::bridge {
namespace {

absl::Status LineError(int line, absl::string_view message) {
  return absl::InvalidArgumentError(
      absl::StrCat("bridge config line ", line, ": ", message));
}

// Applies one "key[=value]" word of an export or import line.
absl::Status ApplyWord(int line, absl::string_view word, ChannelQos* qos,
                       QueueConfig* config) {
  if (word == "reliable") {
    qos->reliable = true;
    return absl::OkStatus();
  }
  if (word == "best_effort") {
    qos->reliable = false;
    return absl::OkStatus();
  }
  const std::vector<absl::string_view> parts =
      absl::StrSplit(word, absl::MaxSplits('=', 1));
  if (parts.size() != 2) {
    return LineError(line, absl::StrCat("unknown word '", word, "'"));
  }
  uint64_t value = 0;
  if (!absl::SimpleAtoi(parts[1], &value)) {
    return LineError(line, absl::StrCat("'", parts[1], "' is not a number"));
  }
  const absl::string_view key = parts[0];
  const bool fits32 = value <= UINT32_MAX;
  if (key == "depth" && fits32) {
    if (value == 0) return LineError(line, "depth must be at least 1");
    qos->depth = static_cast<uint32_t>(value);
  } else if (config != nullptr && key == "queue_size" && fits32) {
    config->queue_size = static_cast<uint32_t>(value);
  } else if (config != nullptr && key == "message_size") {
    config->message_data_size_bytes = value;
  } else if (config != nullptr && key == "senders" && fits32) {
    config->num_senders = static_cast<uint32_t>(value);
  } else if (config != nullptr && key == "watchers" && fits32) {
    config->num_watchers = static_cast<uint32_t>(value);
  } else {
    return LineError(line,
                     absl::StrCat("unknown or out-of-range '", word, "'"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<BridgeConfig> ParseBridgeConfig(absl::string_view text) {
  BridgeConfig result;
  std::set<std::string> exported;
  std::set<std::string> imported;
  int line_number = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_number;
    if (const size_t hash = line.find('#'); hash != absl::string_view::npos) {
      line = line.substr(0, hash);
    }
    const std::vector<absl::string_view> words =
        absl::StrSplit(line, absl::ByAnyChar(" \t\r"), absl::SkipEmpty());
    if (words.empty()) continue;
    if (words[0] == "domain") {
      uint32_t domain = 0;
      if (words.size() != 2 || !absl::SimpleAtoi(words[1], &domain)) {
        return LineError(line_number, "expected 'domain N'");
      }
      result.domain_id = domain;
      continue;
    }
    const bool is_export = words[0] == "export";
    if (!is_export && words[0] != "import") {
      return LineError(line_number,
                       absl::StrCat("unknown directive '", words[0], "'"));
    }
    if (words.size() < 2) {
      return LineError(line_number, "expected a channel name");
    }
    const std::string name(words[1]);
    if (absl::Status status = ValidateChannelName(name); !status.ok()) {
      return LineError(line_number, status.message());
    }
    std::set<std::string>& seen = is_export ? exported : imported;
    if (!seen.insert(name).second) {
      return LineError(line_number,
                       absl::StrCat("channel '", name, "' listed twice"));
    }
    ChannelQos qos;
    QueueConfig config;
    for (size_t i = 2; i < words.size(); ++i) {
      if (absl::Status status = ApplyWord(line_number, words[i], &qos,
                                          is_export ? &config : nullptr);
          !status.ok()) {
        return status;
      }
    }
    if (is_export) {
      if (absl::Status status = ValidateConfig(config); !status.ok()) {
        return LineError(line_number, status.message());
      }
      result.exports.push_back(ExportSpec{name, config, qos});
    } else {
      result.imports.push_back(ImportSpec{name, qos});
    }
  }
  return result;
}

absl::StatusOr<BridgeConfig> ReadBridgeConfig(const std::string& path) {
  std::ifstream file(path);
  if (!file) {
    return absl::NotFoundError(
        absl::StrCat("cannot read bridge config ", path));
  }
  std::stringstream text;
  text << file.rdbuf();
  return ParseBridgeConfig(text.str());
}

}  // namespace lockless::bridge
