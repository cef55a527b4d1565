#include "tools/bridge/bridge_config.h"

#include "gtest/gtest.h"

namespace lockless::bridge {
namespace {

TEST(BridgeConfigTest, ParsesDirectives) {
  absl::StatusOr<BridgeConfig> config = ParseBridgeConfig(
      "# robot A\n"
      "domain 7\n"
      "export camera queue_size=16 message_size=4096 senders=2 watchers=3 "
      "best_effort depth=4\n"
      "import pose   # from B\n");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->domain_id, 7u);
  ASSERT_EQ(config->exports.size(), 1u);
  EXPECT_EQ(config->exports[0].name, "camera");
  EXPECT_EQ(config->exports[0].config.queue_size, 16u);
  EXPECT_EQ(config->exports[0].config.message_data_size_bytes, 4096u);
  EXPECT_EQ(config->exports[0].config.num_senders, 2u);
  EXPECT_EQ(config->exports[0].config.num_watchers, 3u);
  EXPECT_FALSE(config->exports[0].qos.reliable);
  EXPECT_EQ(config->exports[0].qos.depth, 4u);
  ASSERT_EQ(config->imports.size(), 1u);
  EXPECT_EQ(config->imports[0].name, "pose");
  EXPECT_TRUE(config->imports[0].qos.reliable);
  EXPECT_EQ(config->imports[0].qos.depth, 64u);
}

TEST(BridgeConfigTest, RejectsWithTheLine) {
  for (const char* text : {
           "domain\n",
           "export\n",
           "export a/b\n",
           "export a queue_size=0\n",
           "export a depth=0\n",
           "export a colour=blue\n",
           "import a queue_size=8\n",  // imports take the exporter's config
           "import a\nimport a\n",
           "frobnicate a\n",
           "export a queue_size=x\n",
       }) {
    const absl::StatusOr<BridgeConfig> config = ParseBridgeConfig(text);
    ASSERT_FALSE(config.ok()) << text;
    EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(config.status().message().find("line "), absl::string_view::npos)
        << config.status();
  }
}

TEST(BridgeConfigTest, SameChannelMayBeExportedAndImported) {
  absl::StatusOr<BridgeConfig> config =
      ParseBridgeConfig("export chat\nimport chat\n");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->exports.size(), 1u);
  EXPECT_EQ(config->imports.size(), 1u);
}

}  // namespace
}  // namespace lockless::bridge
