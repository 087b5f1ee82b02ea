// The loader against real shared libraries, good and deliberately broken.
#include <dlfcn.h>
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>

#include "metrics/metrics_registry.hpp"
#include "plugins/plugin_context.hpp"
#include "plugins/plugin_set.hpp"
#include "support/process.hpp"

namespace switchboard::host {
namespace {

namespace fs = std::filesystem;

std::string plugin(const std::string& name) { return std::string(SWITCHBOARD_PLUGIN_DIR) + "/" + name + ".so"; }
std::string test_plugin(const std::string& name) { return std::string(TEST_PLUGIN_DIR) + "/" + name + ".so"; }

std::string open_error(const std::string& file) {
  try {
    PluginLibrary::open(file);
  } catch (const PluginLoadError& e) {
    return e.what();
  }
  ADD_FAILURE() << file << " was accepted";
  return {};
}

#define EXPECT_CONTAINS(haystack, needle) \
  EXPECT_NE(std::string(haystack).find(needle), std::string::npos) << "in: " << (haystack)

TEST(PluginLibrary, ReadsTheDescriptorOfAGoodPlugin) {
  auto lib = PluginLibrary::open(plugin("bus-gochannel"));
  EXPECT_EQ(lib->info().kind, PluginKind::bus);
  EXPECT_EQ(lib->info().name, "bus-gochannel");
  EXPECT_EQ(lib->info().sdk_major, SWITCHBOARD_SDK_VERSION_MAJOR);
  EXPECT_EQ(lib->info().sdk_minor, SWITCHBOARD_SDK_VERSION_MINOR);
  EXPECT_EQ(lib->info().toolchain, host_toolchain());
  EXPECT_FALSE(lib->info().version.empty());
}

TEST(PluginLibrary, RefusesAnotherSdkAbiNamingBothSides) {
  std::string e = open_error(test_plugin("test-wrong-abi"));
  EXPECT_CONTAINS(e, test_plugin("test-wrong-abi") + ": plugin \"test-wrong-abi\" 9.9.9");
  const std::string host_sdk =
      std::to_string(SWITCHBOARD_SDK_VERSION_MAJOR) + "." + std::to_string(SWITCHBOARD_SDK_VERSION_MINOR);
  EXPECT_CONTAINS(e, "was built against SDK " + std::to_string(SWITCHBOARD_SDK_VERSION_MAJOR + 1) + "." +
                         std::to_string(SWITCHBOARD_SDK_VERSION_MINOR) + ", this host runs SDK " + host_sdk);
  EXPECT_CONTAINS(e, "rebuild the plugin against SDK " + std::to_string(SWITCHBOARD_SDK_VERSION_MAJOR) + ".x");
  EXPECT_EQ(e.find('\n'), std::string::npos) << "one line";
}

TEST(PluginLibrary, RefusesAnotherToolchainNamingBothSides) {
  std::string e = open_error(test_plugin("test-wrong-toolchain"));
  EXPECT_CONTAINS(e, "was built with gcc " + std::to_string(SWITCHBOARD_COMPILER_MAJOR - 1) + ".3.");
  EXPECT_CONTAINS(e, "this host with " + host_toolchain());
}

TEST(PluginLibrary, RefusesAPluginWithoutFactory) {
  EXPECT_CONTAINS(open_error(test_plugin("test-missing-factory")), "has no switchboard_plugin_create symbol");
}

TEST(PluginLibrary, RefusesAPluginWithAnUnresolvedSymbolNamingIt) {
  std::string e = open_error(test_plugin("test-missing-symbol"));
  EXPECT_CONTAINS(e, "cannot load");
  EXPECT_CONTAINS(e, "switchboard_test_symbol_nobody_defines");
}

TEST(PluginLibrary, RefusesLibrariesThatAreNotPlugins) {
  EXPECT_CONTAINS(open_error(test_plugin("test-not-a-plugin")), "not a Switchboard plugin");
  EXPECT_CONTAINS(open_error(test_plugin("test-not-a-library")), "not an ELF shared library");
  EXPECT_CONTAINS(open_error("/nonexistent/plugin.so"), "/nonexistent/plugin.so: no such plugin file");
}

// Each test-runs-on-load-* plugin leaves a trace file when its code runs (its
// static constructor): a refused plugin must leave none.
class RunsOnLoad {
 public:
  RunsOnLoad() { setenv("SWITCHBOARD_TEST_SIDE_EFFECT_DIR", traces_.path().c_str(), 1); }
  ~RunsOnLoad() { unsetenv("SWITCHBOARD_TEST_SIDE_EFFECT_DIR"); }
  static std::string file(const std::string& name) { return test_plugin("test-runs-on-load-" + name); }
  bool ran(const std::string& name) const {
    return fs::exists(traces_.path() + "/test-runs-on-load-" + name + ".ran");
  }

 private:
  testing::TempDir traces_;
};

bool loaded(const std::string& file) {
  void* handle = dlopen(file.c_str(), RTLD_LAZY | RTLD_NOLOAD);
  if (handle) dlclose(handle);
  return handle != nullptr;
}

TEST(PluginLibrary, ALoadedPluginsCodeRunsAndLeavesItsTrace) {
  RunsOnLoad trace;  // the control: the trace shows when code runs
  EXPECT_FALSE(trace.ran("loads"));
  auto lib = PluginLibrary::open(RunsOnLoad::file("loads"));
  EXPECT_TRUE(trace.ran("loads"));
}

TEST(PluginLibrary, ARefusedPluginRunsNoCode) {
  RunsOnLoad trace;
  const std::pair<const char*, std::string> cases[] = {
      {"wrong-abi", "was built against SDK " + std::to_string(SWITCHBOARD_SDK_VERSION_MAJOR + 1) + "."},
      {"newer-minor", "newer than this host's SDK " + std::to_string(SWITCHBOARD_SDK_VERSION_MAJOR) + "." +
                          std::to_string(SWITCHBOARD_SDK_VERSION_MINOR) + ": upgrade the host"},
      {"wrong-struct-size", "struct Health is " + std::to_string(sizeof(Health) + 8) + " bytes in the plugin, " +
                                std::to_string(sizeof(Health)) + " in this host"},
      {"wrong-toolchain", "was built with gcc " + std::to_string(SWITCHBOARD_COMPILER_MAJOR - 1) + "."},
      {"unknown-kind", "declares unknown kind 9"},
      {"no-factory", "has no switchboard_plugin_create symbol"},
      {"not-a-plugin", "not a Switchboard plugin (no .switchboard_plugin section"},
  };
  for (const auto& [name, why] : cases) {
    std::string file = RunsOnLoad::file(name);
    EXPECT_CONTAINS(open_error(file), file + ": ");
    EXPECT_CONTAINS(open_error(file), why);
    EXPECT_FALSE(trace.ran(name)) << name << ": its code ran although it was refused";
    EXPECT_FALSE(loaded(file)) << name << ": mapped although it was refused";
  }
}

TEST(PluginLibrary, InspectReadsTheDescriptorFromTheFileAlone) {
  RunsOnLoad trace;
  PluginInfo info = PluginLibrary::inspect(RunsOnLoad::file("loads"));
  EXPECT_EQ(info.name, "test-runs-on-load-loads");
  EXPECT_EQ(info.kind, PluginKind::bus);
  EXPECT_EQ(info.version, "1.0.0");
  EXPECT_EQ(info.toolchain, host_toolchain());
  EXPECT_FALSE(trace.ran("loads"));
}

TEST(PluginLibrary, RefusesFilesThatAreNotPluginsForThisMachine) {
  testing::TempDir tmp;
  EXPECT_CONTAINS(open_error(tmp.file("empty.so", "")), "an empty file");
  EXPECT_CONTAINS(open_error(tmp.file("text.so", "#!/bin/sh\necho hi\n")), "not an ELF shared library");
  // The host's own executable: an ELF file, but no shared library plugin.
  std::string self = fs::read_symlink("/proc/self/exe");
  std::string e = open_error(self);
  EXPECT_TRUE(e.find("an executable, not a shared library") != std::string::npos ||
              e.find("not a Switchboard plugin") != std::string::npos)
      << e;
  // A plugin header rewritten for another machine (EM_AARCH64 = 183, or x86-64 = 62).
  std::ifstream in(plugin("bus-gochannel"), std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), {});
  ASSERT_GT(bytes.size(), 64u);
  std::uint16_t other = bytes[18] == 62 ? 183 : 62;
  std::memcpy(bytes.data() + 18, &other, 2);
  e = open_error(tmp.file("other-machine.so", bytes));
  EXPECT_CONTAINS(e, other == 183 ? "built for aarch64, this host is x86-64" : "built for x86-64, this host is aarch64");
}

class PluginSetTest : public ::testing::Test {
 protected:
  HostConfig config(const std::string& text) { return parse_config(text, "test.toml", process_environment()); }

  std::vector<std::string> load_problems(const std::string& text) {
    try {
      PluginSet::load(config(text), services);
    } catch (const PluginProblems& e) {
      return e.lines();
    }
    ADD_FAILURE() << "loaded:\n" << text;
    return {};
  }

  std::string dirs() { return "[plugins]\ndirectories = [\"" + std::string(SWITCHBOARD_PLUGIN_DIR) + "\"]\n"; }

  std::shared_ptr<LogSink> sink = std::make_shared<LogSink>(LogLevel::error, LogFormat::text);
  SystemClock clock;
  MetricsRegistry metrics;
  HostServices services{sink, clock, metrics};
  testing::TempDir tmp;
};

std::string joined(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& l : v) out += l + "\n";
  return out;
}

TEST_F(PluginSetTest, LoadsTheEmbeddedDefaultWithFeatures) {
  auto set = PluginSet::load(config(dirs() + "[bus]\nplugin = \"bus-gochannel\"\n[storage]\nplugin = \"storage-sqlite\"\n"
                                             "[storage.config]\npath = \"" + tmp.path() + "/db\"\n"
                                             "[[features]]\nplugin = \"" + test_plugin("test-echo-feature") + "\"\n"),
                             services);
  EXPECT_EQ(set->bus_plugin().info.name, "bus-gochannel");
  EXPECT_EQ(set->storage_plugin().info.name, "storage-sqlite");
  ASSERT_EQ(set->features().size(), 1u);
  EXPECT_EQ(set->features()[0].object->command_types(), std::vector<std::string>{"echo"});
  EXPECT_TRUE(set->storage().health().ok);
}

TEST_F(PluginSetTest, RefusesAPluginOfTheWrongKind) {
  auto p = load_problems(dirs() + "[bus]\nplugin = \"storage-sqlite\"\n[storage]\nplugin = \"storage-sqlite\"\n"
                                  "[storage.config]\npath = \"" + tmp.path() + "/db\"\n");
  ASSERT_FALSE(p.empty());
  EXPECT_CONTAINS(joined(p), "plugin \"storage-sqlite\" is a storage plugin, but test.toml:3:1: bus needs a bus plugin");
}

TEST_F(PluginSetTest, RefusesTwoPluginsWithTheSameName) {
  std::string echo = test_plugin("test-echo-feature");
  auto p = load_problems(dirs() + "[bus]\nplugin = \"bus-gochannel\"\n[storage]\nplugin = \"storage-sqlite\"\n"
                                  "[storage.config]\npath = \"" + tmp.path() + "/db\"\n"
                                  "[[features]]\nplugin = \"" + echo + "\"\n[[features]]\nplugin = \"" + echo + "\"\n");
  EXPECT_CONTAINS(joined(p), "two plugins are named \"test-echo-feature\": " + echo + " and " + echo);
}

TEST_F(PluginSetTest, RefusesAPluginFoundTwiceInTheDirectories) {
  fs::create_directories(tmp.path() + "/a");
  fs::create_directories(tmp.path() + "/b");
  fs::copy_file(plugin("bus-gochannel"), tmp.path() + "/a/bus-gochannel.so");
  fs::copy_file(plugin("bus-gochannel"), tmp.path() + "/b/bus-gochannel.so");
  auto p = load_problems("[plugins]\ndirectories = [\"" + tmp.path() + "/a\", \"" + tmp.path() + "/b\", \"" +
                         SWITCHBOARD_PLUGIN_DIR + "\"]\n[bus]\nplugin = \"bus-gochannel\"\n[storage]\n"
                         "plugin = \"storage-sqlite\"\n[storage.config]\npath = \"" + tmp.path() + "/db\"\n");
  EXPECT_CONTAINS(joined(p), "plugin \"bus-gochannel\" is found twice: " + tmp.path() + "/a/bus-gochannel.so and " +
                                 tmp.path() + "/b/bus-gochannel.so");
}

TEST_F(PluginSetTest, RefusesAFileNamedForAnotherPlugin) {
  fs::copy_file(plugin("bus-gochannel"), tmp.path() + "/bus-impostor.so");
  auto p = load_problems("[plugins]\ndirectories = [\"" + tmp.path() + "\", \"" + SWITCHBOARD_PLUGIN_DIR +
                         "\"]\n[bus]\nplugin = \"bus-impostor\"\n[storage]\nplugin = \"storage-sqlite\"\n"
                         "[storage.config]\npath = \"" + tmp.path() + "/db\"\n");
  EXPECT_CONTAINS(joined(p), "the file is named for \"bus-impostor\" but holds plugin \"bus-gochannel\"");
}

TEST_F(PluginSetTest, ReportsAMissingPluginWithTheDirectoriesSearched) {
  auto p = load_problems(dirs() + "[bus]\nplugin = \"bus-carrier-pigeon\"\n[storage]\nplugin = \"storage-sqlite\"\n"
                                  "[storage.config]\npath = \"" + tmp.path() + "/db\"\n");
  EXPECT_CONTAINS(joined(p), "plugin \"bus-carrier-pigeon\" not found (looked for bus-carrier-pigeon.so in: " +
                                 std::string(SWITCHBOARD_PLUGIN_DIR) + ")");
}

TEST_F(PluginSetTest, ReportsUnknownAndIllTypedPluginConfigKeys) {
  auto p = load_problems(dirs() + "[bus]\nplugin = \"bus-gochannel\"\n[bus.config]\nqueue_bytes = \"big\"\n"
                                  "[storage]\nplugin = \"storage-sqlite\"\n[storage.config]\npath = \"" + tmp.path() +
                         "/db\"\npaht = \"typo\"\n");
  std::string all = joined(p);
  EXPECT_CONTAINS(all, "test.toml:6:15: bus.config.queue_bytes: expected an integer");
  EXPECT_CONTAINS(all, "test.toml:11:1: storage.config.paht: unknown key for storage-sqlite (it reads:");
}

TEST_F(PluginSetTest, ReportsAFactoryThatFails) {
  auto p = load_problems(dirs() + "[bus]\nplugin = \"" + test_plugin("test-throwing-bus") +
                         "\"\n[bus.config]\nurl = \"nats://127.0.0.1:1\"\n[storage]\nplugin = \"storage-sqlite\"\n"
                         "[storage.config]\npath = \"" + tmp.path() + "/db\"\n");
  EXPECT_CONTAINS(joined(p),
                  "test.toml:3:1: bus: plugin \"test-throwing-bus\" failed to start: cannot connect to nats://127.0.0.1:1");
}

TEST_F(PluginSetTest, APluginOfTheWrongKindIsRefusedBeforeItsCodeRuns) {
  RunsOnLoad trace;
  std::string bus = RunsOnLoad::file("wrong-kind");
  auto p = load_problems(dirs() + "[bus]\nplugin = \"bus-gochannel\"\n[storage]\nplugin = \"" + bus + "\"\n");
  EXPECT_CONTAINS(joined(p), "plugin \"test-runs-on-load-wrong-kind\" is a bus plugin, but test.toml:5:1: storage needs a "
                             "storage plugin");
  EXPECT_FALSE(trace.ran("wrong-kind"));
  EXPECT_FALSE(loaded(bus));
}

TEST_F(PluginSetTest, AnAcceptedLibraryStaysMappedAfterItsLastObject) {
  // Code of a plugin may still be referenced after its objects are gone (a
  // std::function it built, queued in another plugin): it is never unmapped.
  std::string echo = test_plugin("test-echo-feature");
  ASSERT_FALSE(loaded(echo));
  auto set = PluginSet::load(config(dirs() + "[bus]\nplugin = \"bus-gochannel\"\n[storage]\nplugin = \"storage-sqlite\"\n"
                                             "[storage.config]\npath = \"" + tmp.path() + "/db\"\n"
                                             "[[features]]\nplugin = \"" + echo + "\"\n"),
                             services);
  std::shared_ptr<Feature> kept = set->features()[0].object;
  std::function<std::vector<std::string>()> made_by_plugin = [kept] { return kept->command_types(); };
  set.reset();
  EXPECT_TRUE(loaded(echo)) << "unloaded while an object it made is alive";
  EXPECT_EQ(kept->command_types(), std::vector<std::string>{"echo"});
  kept.reset();
  made_by_plugin = nullptr;
  EXPECT_TRUE(loaded(echo)) << "an accepted plugin was unmapped";
}

TEST_F(PluginSetTest, ARefusedLibraryIsNotKeptMapped) {
  std::string wrong = test_plugin("test-wrong-abi");
  EXPECT_FALSE(open_error(wrong).empty());
  EXPECT_FALSE(loaded(wrong)) << "a refused plugin stayed mapped";
}

}  // namespace
}  // namespace switchboard::host
