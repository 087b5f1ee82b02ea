#include "config/host_config.hpp"

#include <gtest/gtest.h>

#include <map>

#include "config/plugin_table.hpp"

namespace switchboard::host {
namespace {

EnvLookup env(std::map<std::string, std::string> vars = {}) {
  return [vars](const std::string& name) -> std::optional<std::string> {
    auto it = vars.find(name);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

constexpr const char* kMinimal = R"(
[bus]
plugin = "bus-gochannel"
[storage]
plugin = "storage-sqlite"
)";

// The problems reported for `text`, or a failure if it parsed.
std::vector<std::string> problems(const std::string& text, std::map<std::string, std::string> vars = {}) {
  try {
    parse_config(text, "test.toml", env(vars));
  } catch (const ConfigProblems& e) {
    return e.lines();
  }
  ADD_FAILURE() << "config was accepted:\n" << text;
  return {};
}

bool has(const std::vector<std::string>& lines, const std::string& text) {
  for (const auto& l : lines) {
    if (l.find(text) != std::string::npos) return true;
  }
  return false;
}

std::string all(const std::vector<std::string>& lines) {
  std::string out;
  for (const auto& l : lines) out += l + "\n";
  return out;
}

TEST(HostConfig, ParsesTheMinimalConfigWithDefaults) {
  auto c = parse_config(kMinimal, "test.toml", env());
  EXPECT_EQ(c.bus.plugin, "bus-gochannel");
  EXPECT_EQ(c.storage.plugin, "storage-sqlite");
  EXPECT_TRUE(c.features.empty());
  EXPECT_EQ(c.server.listen, "127.0.0.1:8080");
  EXPECT_EQ(c.log.level, LogLevel::info);
  EXPECT_EQ(c.log.format, LogFormat::text);
  EXPECT_TRUE(c.bus.config->empty());
}

TEST(HostConfig, ParsesEverySection) {
  auto c = parse_config(R"(
[server]
listen = "0.0.0.0:${PORT:-8080}"
[log]
level = "debug"
format = "json"
[plugins]
directories = ["/opt/a", "/opt/b"]
[bus]
plugin = "bus-${BUS_TYPE:-gochannel}"
[bus.config]
url = "${NATS_URL:-nats://127.0.0.1:4222}"
[storage]
plugin = "/abs/storage.so"
[[features]]
plugin = "feature-reactions"
[[features]]
plugin = "feature-pins"
[features.config]
max = 50
)",
                        "test.toml", env({{"PORT", "9000"}, {"BUS_TYPE", "nats"}}));
  EXPECT_EQ(c.server.listen, "0.0.0.0:9000");
  EXPECT_EQ(c.log.level, LogLevel::debug);
  EXPECT_EQ(c.log.format, LogFormat::json);
  ASSERT_EQ(c.plugin_directories.size(), 2u);
  EXPECT_EQ(c.plugin_directories[1], "/opt/b");
  EXPECT_EQ(c.bus.plugin, "bus-nats");
  EXPECT_EQ(c.bus.config->get("url")->value<std::string>(), "nats://127.0.0.1:4222");
  EXPECT_EQ(c.storage.plugin, "/abs/storage.so");
  ASSERT_EQ(c.features.size(), 2u);
  EXPECT_EQ(c.features[1].plugin, "feature-pins");
  EXPECT_EQ(c.features[1].key_path, "features[1]");
  EXPECT_EQ(c.features[1].config_path, "features[1].config");
  EXPECT_EQ(c.features[1].config->get("max")->value<int64_t>(), 50);
}

TEST(HostConfig, LogLevelComesFromTheEnvironmentWhenTheFileIsSilent) {
  auto c = parse_config(kMinimal, "test.toml", env({{"LOG_LEVEL", "warn"}}));
  EXPECT_EQ(c.log.level, LogLevel::warn);
}

TEST(HostConfig, SyntaxErrorNamesFileLineAndColumn) {
  auto p = problems("[bus]\nplugin = \"x\"\n[storage\nplugin = \"y\"\n");
  ASSERT_EQ(p.size(), 1u);
  EXPECT_TRUE(p[0].starts_with("test.toml:3:")) << p[0];
  EXPECT_TRUE(has(p, "TOML syntax error")) << p[0];
}

TEST(HostConfig, UnknownKeysAreRejectedWithTheirPosition) {
  auto p = problems(std::string(kMinimal) + "[server]\nlisten = \"x:1\"\nlisen = \"typo\"\n");
  EXPECT_TRUE(has(p, "test.toml:8:1: server.lisen: unknown key")) << all(p);
  p = problems("bogus = 1\n" + std::string(kMinimal));
  EXPECT_TRUE(has(p, "test.toml:1:1: bogus: unknown key")) << all(p);
  p = problems("[bus]\nplugin = \"b\"\nplugn = \"c\"\n[storage]\nplugin = \"s\"\n");
  EXPECT_TRUE(has(p, "test.toml:3:1: bus.plugn: unknown key")) << all(p);
}

TEST(HostConfig, WrongTypesAreRejectedWithTheirPosition) {
  auto p = problems("[bus]\nplugin = 42\n[storage]\nplugin = \"s\"\n");
  EXPECT_TRUE(has(p, "test.toml:2:10: bus.plugin: expected a string, got integer")) << all(p);
  p = problems(std::string(kMinimal) + "[log]\nlevel = \"loud\"\n");
  EXPECT_TRUE(has(p, "log.level: unknown level \"loud\"")) << all(p);
  p = problems(std::string(kMinimal) + "[plugins]\ndirectories = \"/one\"\n");
  EXPECT_TRUE(has(p, "plugins.directories: expected an array of strings")) << all(p);
  p = problems("features = 3\n" + std::string(kMinimal));
  EXPECT_TRUE(has(p, "features: expected an array of tables")) << all(p);
}

TEST(HostConfig, MissingRequiredValuesAreNamed) {
  auto p = problems("[bus]\nplugin = \"b\"\n");
  EXPECT_TRUE(has(p, "test.toml: storage: missing required table [storage]")) << all(p);
  p = problems("[bus]\n[storage]\nplugin = \"s\"\n");
  EXPECT_TRUE(has(p, "test.toml:1:1: bus: missing required key \"plugin\"")) << all(p);
}

TEST(HostConfig, ReportsEveryProblemAtOnce) {
  auto p = problems("[bus]\nplugin = 1\n[log]\nformat = \"xml\"\nextra = true\n");
  EXPECT_GE(p.size(), 4u) << all(p);  // bus.plugin type, log.format, log.extra, missing storage
}

TEST(HostConfig, UnsetVariableIsAnErrorAtItsPosition) {
  auto p = problems("[bus]\nplugin = \"bus-nats\"\n[bus.config]\nurl = \"${NATS_URL}\"\n[storage]\nplugin = \"s\"\n");
  EXPECT_TRUE(has(p, "test.toml:4:7: bus.config.url: environment variable NATS_URL is not set")) << all(p);
}

TEST(PluginTable, ReadsTypedValuesAndReportsWrongTypesWithPosition) {
  auto c = parse_config(std::string(kMinimal) + "[storage.config]\npath = \"/data/x.db\"\nbatch = 64\nratio = 0.5\n"
                                                "fsync = true\nhosts = [\"a\", \"b\"]\nbad = \"text\"\n",
                        "test.toml", env());
  PluginTable t(c.storage.config, "storage.config", "test.toml");
  EXPECT_EQ(t.string("path"), "/data/x.db");
  EXPECT_EQ(t.integer("batch"), 64);
  EXPECT_EQ(t.number("batch"), 64.0);
  EXPECT_EQ(t.number("ratio"), 0.5);
  EXPECT_EQ(t.boolean("fsync"), true);
  EXPECT_EQ(t.strings("hosts"), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(t.string("absent"), std::nullopt);
  EXPECT_EQ(t.integer_or("absent", 7), 7);
  try {
    t.integer("bad");
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_STREQ(e.what(), "test.toml:12:7: storage.config.bad: expected an integer");
  }
}

TEST(PluginTable, RejectsKeysThePluginNeverRead) {
  auto c = parse_config(std::string(kMinimal) + "[storage.config]\npath = \"x\"\npaht = \"typo\"\n", "test.toml", env());
  PluginTable t(c.storage.config, "storage.config", "test.toml");
  t.string("path");
  try {
    t.reject_unread_keys("storage-sqlite");
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_STREQ(e.what(), "test.toml:8:1: storage.config.paht: unknown key for storage-sqlite (it reads: path)");
  }
  t.string("paht");
  EXPECT_NO_THROW(t.reject_unread_keys("storage-sqlite"));
}

}  // namespace
}  // namespace switchboard::host
