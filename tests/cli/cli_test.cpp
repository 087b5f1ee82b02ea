// The switchboard and switchboard-contract executables, run as an operator
// or a deploy pipeline would run them.
#include <signal.h>

#include <gtest/gtest.h>

#include <filesystem>

#include "support/process.hpp"

namespace switchboard::testing {
namespace {

using namespace std::chrono_literals;

const std::string kHost = SWITCHBOARD_BIN;
const std::string kContract = CONTRACT_BIN;
const std::string kPlugins = SWITCHBOARD_PLUGIN_DIR;
const std::string kTestPlugins = TEST_PLUGIN_DIR;
const std::string kSource = SOURCE_DIR;
const std::string kAuth = "\n[auth]\nalgorithm = \"HS256\"\nsecret = \"0123456789abcdef0123\"\n";

#define EXPECT_CONTAINS(haystack, needle) \
  EXPECT_NE(std::string(haystack).find(needle), std::string::npos) << "in output:\n" << (haystack)

class CheckCommand : public ::testing::Test {
 protected:
  // A config file with the embedded default, then `extra`.
  std::string config(const std::string& extra, const std::string& bus = "bus-gochannel") {
    return tmp.file("switchboard.toml", "[bus]\nplugin = \"" + bus + "\"\n[storage]\nplugin = \"storage-sqlite\"\n" +
                                            "[storage.config]\npath = \"" + tmp.path() + "/var/db\"\n" + extra + kAuth);
  }
  Finished check(const std::string& file) { return run({kHost, "check", "--config", file}); }

  TempDir tmp;
};

TEST_F(CheckCommand, TheShippedDefaultConfigIsValid) {
  auto r = run({kHost, "check", "--config", kSource + "/config/switchboard.toml"}, {{"SWITCHBOARD_DATA", tmp.path()}});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_CONTAINS(r.output, "ok (bus bus-gochannel");
  EXPECT_CONTAINS(r.output, "storage storage-sqlite");
}

TEST_F(CheckCommand, EachBrokenPluginIsOneLineNamingTheFileAndTheProblem) {
  struct Case {
    std::string plugin, problem;
  };
  for (const auto& c : std::vector<Case>{
           {"test-wrong-abi", "was built against SDK"},
           {"test-wrong-toolchain", "was built with gcc"},
           {"test-missing-factory", "has no switchboard_plugin_create symbol"},
           {"test-missing-symbol", "undefined symbol: switchboard_test_symbol_nobody_defines"},
           {"test-not-a-plugin", "not a Switchboard plugin"},
           {"test-not-a-library", "not an ELF shared library"},
       }) {
    std::string file = kTestPlugins + "/" + c.plugin + ".so";
    auto r = check(config("", file));
    EXPECT_EQ(r.exit_code, 1) << c.plugin;
    auto out = lines(r.output);
    ASSERT_EQ(out.size(), 1u) << r.output;
    EXPECT_TRUE(out[0].starts_with(file + ": ")) << out[0];
    EXPECT_CONTAINS(out[0], c.problem);
  }
}

TEST_F(CheckCommand, APluginOfTheWrongKindIsRefused) {
  auto r = check(config("", "storage-sqlite"));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_CONTAINS(r.output, "plugin \"storage-sqlite\" is a storage plugin, but " + tmp.path() +
                                "/switchboard.toml:1:1: bus needs a bus plugin");
}

TEST_F(CheckCommand, ConfigErrorsNameFileLineColumnAndKey) {
  std::string file = tmp.path() + "/switchboard.toml";
  auto r = check(config("[server]\nlisten = 8080\n"));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_CONTAINS(r.output, file + ":8:10: server.listen: expected a string, got integer");

  r = check(config("[log]\nlevle = \"debug\"\n"));
  EXPECT_CONTAINS(r.output, file + ":8:1: log.levle: unknown key");

  r = check(config("[storage.config]\n"));  // a table defined twice
  EXPECT_CONTAINS(r.output, file + ":7:1: TOML syntax error");
  EXPECT_CONTAINS(r.output, "TOML syntax error");

  r = check(tmp.file("nobus.toml", "[storage]\nplugin = \"storage-sqlite\"\n" + kAuth));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_CONTAINS(r.output, "nobus.toml: bus: missing required table [bus]");

  r = check(tmp.path() + "/absent.toml");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_CONTAINS(r.output, "absent.toml: cannot read config file");
}

TEST_F(CheckCommand, PluginConfigErrorsNameTheirPosition) {
  auto r = check(config("", "bus-gochannel") + "");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::string file = tmp.file("bad.toml", "[bus]\nplugin = \"bus-gochannel\"\n[bus.config]\nqueue_bytes = -5\n"
                                          "[storage]\nplugin = \"storage-sqlite\"\n[storage.config]\npath = \"" +
                                              tmp.path() + "/db\"\nsynchronous = \"sometimes\"\n" + kAuth);
  r = check(file);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_CONTAINS(r.output, file + ":4:15: bus.config.queue_bytes: must be a positive number of bytes");
  EXPECT_CONTAINS(r.output, file + ":9:15: storage.config.synchronous: must be \"full\"");
}

TEST_F(CheckCommand, EnvironmentInterpolationSelectsTheBus) {
  std::string file = tmp.file("env.toml", "[bus]\nplugin = \"bus-${BUS_TYPE:-gochannel}\"\n[storage]\n"
                                          "plugin = \"storage-sqlite\"\n[storage.config]\npath = \"${DATA}/db\"\n" + kAuth);
  auto r = run({kHost, "check", "--config", file}, {{"DATA", tmp.path()}});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  r = run({kHost, "check", "--config", file}, {{"DATA", tmp.path()}, {"BUS_TYPE", "carrier-pigeon"}});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_CONTAINS(r.output, "plugin \"bus-carrier-pigeon\" not found");
}

TEST(HostBinary, HasNoLinkTimeDependencyOnAnyBackend) {
  auto r = run({"ldd", kHost});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  for (const char* backend : {"sqlite", "nats", "pqxx", "libpq"}) {
    EXPECT_EQ(r.output.find(backend), std::string::npos) << "switchboard links " << backend << ":\n" << r.output;
  }
}

TEST(HostBinary, PluginsListsKindNameVersionAndAbi) {
  auto r = run({kHost, "plugins"});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_CONTAINS(r.output, "KIND     NAME");
  EXPECT_CONTAINS(r.output, "bus      bus-gochannel");
  EXPECT_CONTAINS(r.output, "storage  storage-sqlite");
  EXPECT_CONTAINS(r.output, kPlugins + "/bus-gochannel.so");
}

TEST(HostBinary, PluginsReportsBrokenFilesInADirectory) {
  auto r = run({kHost, "plugins"}, {{"SWITCHBOARD_PLUGIN_PATH", kTestPlugins}});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_CONTAINS(r.output, "test-broken-bus");
  EXPECT_CONTAINS(r.output, kTestPlugins + "/test-wrong-abi.so: plugin \"test-wrong-abi\"");
}

TEST(HostBinary, PluginsListsADirectoryWithoutRunningAnyPluginCode) {
  // Each test-runs-on-load-* plugin leaves a file behind when its code runs;
  // "loads" is a good plugin, listed like the others.
  TempDir traces;
  auto r = run({kHost, "plugins"},
               {{"SWITCHBOARD_PLUGIN_PATH", kTestPlugins}, {"SWITCHBOARD_TEST_SIDE_EFFECT_DIR", traces.path()}});
  EXPECT_CONTAINS(r.output, "bus      test-runs-on-load-loads");
  EXPECT_CONTAINS(r.output, kTestPlugins + "/test-runs-on-load-wrong-abi.so: plugin \"test-runs-on-load-wrong-abi\"");
  std::vector<std::string> ran;
  for (const auto& f : std::filesystem::directory_iterator(traces.path())) ran.push_back(f.path().filename());
  EXPECT_TRUE(ran.empty()) << "plugin code ran while listing: " << ran.front();
}

TEST(HostBinary, BadUsageExitsTwo) {
  EXPECT_EQ(run({kHost, "frobnicate"}).exit_code, 2);
  EXPECT_EQ(run({kHost, "check"}).exit_code, 2);
  EXPECT_EQ(run({kHost, "serve", "--bogus"}).exit_code, 2);
}

TEST(HostBinary, ServeStartsAndStopsCleanlyOnSigterm) {
  TempDir tmp;
  Process host({kHost, "serve", "--config", kSource + "/config/switchboard.toml"},
               {{"SWITCHBOARD_DATA", tmp.path()}, {"LOG_LEVEL", "info"}, {"PORT", "0"}});
  ASSERT_TRUE(host.wait_for_output("listening", 20s)) << host.output();
  host.signal(SIGTERM);
  auto r = host.wait(20s);
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_CONTAINS(r.output, "stopping signal=SIGTERM");
  EXPECT_CONTAINS(r.output, "stopped");
  EXPECT_TRUE(std::filesystem::exists(tmp.path() + "/switchboard.db")) << "data is kept under the configured path";
}

TEST(ContractRunner, PassesTheInTreePlugins) {
  for (const char* name : {"bus-gochannel", "storage-sqlite"}) {
    auto r = run({kContract, "--plugin", kPlugins + "/" + name + ".so"}, {}, 120s);
    EXPECT_EQ(r.exit_code, 0) << r.output;
    EXPECT_CONTAINS(r.output, "[  PASSED  ]");
    EXPECT_EQ(r.output.find("FAILED"), std::string::npos) << r.output;
  }
}

TEST(ContractRunner, FailsABrokenBusNamingTheFailingCase) {
  auto r = run({kContract, "--plugin", kTestPlugins + "/test-broken-bus.so"}, {}, 120s);
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_CONTAINS(r.output, "[  FAILED  ] BusContract.NoDeliveryAfterUnsubscribe");
}

TEST(ContractRunner, RefusesAFileThatIsNotAPlugin) {
  auto r = run({kContract, "--plugin", kTestPlugins + "/test-not-a-plugin.so"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_CONTAINS(r.output, "not a Switchboard plugin");
}

TEST(ContractRunner, UsesThePluginTableFromConfig) {
  TempDir tmp;
  std::string table = tmp.file("table.toml", "path = \"${SWITCHBOARD_CONTRACT_DIR}/custom.db\"\nsynchronous = \"normal\"\n");
  auto r = run({kContract, "--plugin", kPlugins + "/storage-sqlite.so", "--config", table,
                "--gtest_filter=*Durable*:*Survives*"});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_CONTAINS(r.output, "StorageContract.EverythingSurvivesCloseAndReopen");
  std::string bad = tmp.file("bad.toml", "path = 42\n");
  r = run({kContract, "--plugin", kPlugins + "/storage-sqlite.so", "--config", bad});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_CONTAINS(r.output, bad + ":1:8: config.path: expected a string");
}

}  // namespace
}  // namespace switchboard::testing
