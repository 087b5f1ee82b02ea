// switchboard-contract: loads a plugin exactly as the host does and runs the
// contract suite for its kind.
//   switchboard-contract --plugin PATH [--config TABLE.toml] [--gtest_...]
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <iostream>

#include "config/host_config.hpp"
#include "metrics/metrics_registry.hpp"
#include "plugins/plugin_context.hpp"
#include "plugins/plugin_set.hpp"
#include "switchboard/contract/plugin_under_test.hpp"

namespace fs = std::filesystem;
using namespace switchboard;
using namespace switchboard::host;

namespace {

constexpr const char* kUsage =
    "usage: switchboard-contract --plugin PATH [--config TABLE.toml] [GoogleTest flags]\n"
    "  Runs the contract suite for the plugin's kind (bus or storage).\n"
    "  TABLE.toml holds the plugin's own table, as under [bus.config] or [storage.config];\n"
    "  ${VAR} and ${VAR:-default} are expanded. Relative paths in it are relative to a\n"
    "  fresh temporary directory (also in $SWITCHBOARD_CONTRACT_DIR), removed afterwards.\n";

class LoadedPluginUnderTest final : public contract::PluginUnderTest {
 public:
  LoadedPluginUnderTest(fs::path file, PluginDeclaration declaration)
      : file_(std::move(file)),
        declaration_(std::move(declaration)),
        sink_(std::make_shared<LogSink>(LogLevel::warn, LogFormat::text)),
        services_{sink_, clock_, metrics_} {}

  std::shared_ptr<Bus> make_bus() override { return make<Bus>(PluginKind::bus); }
  std::shared_ptr<Storage> make_storage() override { return make<Storage>(PluginKind::storage); }
  std::uint32_t sdk_minor() const override { return PluginLibrary::inspect(file_).sdk_minor; }

 private:
  template <class T>
  std::shared_ptr<T> make(PluginKind kind) {
    return std::static_pointer_cast<T>(create_plugin(file_, kind, declaration_, declaration_.where, services_, nullptr));
  }

  fs::path file_;
  PluginDeclaration declaration_;
  std::shared_ptr<LogSink> sink_;
  SystemClock clock_;
  MetricsRegistry metrics_;
  HostServices services_;
};

}  // namespace

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  std::string plugin_arg;
  std::string config_arg;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if ((arg == "--plugin" || arg == "--config") && i + 1 < argc) {
      (arg == "--plugin" ? plugin_arg : config_arg) = argv[++i];
    } else if (arg == "--help" || arg == "-h") {
      std::cout << kUsage;
      return 0;
    } else {
      std::cerr << "switchboard-contract: unknown argument \"" << arg << "\"\n" << kUsage;
      return 2;
    }
  }
  if (plugin_arg.empty()) {
    std::cerr << "switchboard-contract: --plugin is required\n" << kUsage;
    return 2;
  }

  fs::path plugin = fs::absolute(plugin_arg);
  fs::path config_file = config_arg.empty() ? fs::path() : fs::absolute(config_arg);
  // Each run gets its own directory so file-backed plugins start clean.
  fs::path dir = fs::temp_directory_path() / ("switchboard-contract-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  fs::current_path(dir);
  ::setenv("SWITCHBOARD_CONTRACT_DIR", dir.c_str(), 1);
  auto cleanup = [&dir] {
    std::error_code ec;
    fs::current_path(fs::temp_directory_path(), ec);
    fs::remove_all(dir, ec);
  };
  PluginDeclaration declaration;
  declaration.key_path = "contract";
  declaration.plugin = plugin.string();
  declaration.config_path = "config";
  try {
    if (!config_file.empty()) {
      declaration.config = load_table(config_file);
      declaration.where = config_file.string();
    } else {
      declaration.config = std::make_shared<const toml::table>();
      declaration.where = "(no --config)";
    }
  } catch (const ConfigProblems& e) {
    for (const auto& line : e.lines()) std::cerr << line << '\n';
    cleanup();
    return 1;
  }

  PluginKind kind;
  try {
    kind = PluginLibrary::open(plugin)->info().kind;
  } catch (const PluginLoadError& e) {
    std::cerr << e.what() << '\n';
    cleanup();
    return 1;
  }
  if (kind == PluginKind::feature) {
    std::cerr << plugin.string() << ": feature plugins have no contract suite yet\n";
    cleanup();
    return 1;
  }

  std::string suite = kind == PluginKind::bus ? "BusContract.*" : "StorageContract.*";
  std::string filter = ::testing::GTEST_FLAG(filter);
  ::testing::GTEST_FLAG(filter) = filter == "*" ? suite : suite + ":" + filter;

  LoadedPluginUnderTest under_test(plugin, declaration);
  contract::set_plugin_under_test(&under_test);
  int result = 1;
  try {
    // Fail fast, with one clear line, if the plugin cannot even be created.
    (kind == PluginKind::bus ? static_cast<std::shared_ptr<Plugin>>(under_test.make_bus())
                             : static_cast<std::shared_ptr<Plugin>>(under_test.make_storage()))
        .reset();
    std::cout << "switchboard-contract: " << to_string(kind) << " plugin " << plugin.string() << '\n';
    result = RUN_ALL_TESTS();
  } catch (const std::exception& e) {
    std::cerr << e.what() << '\n';
  }
  contract::set_plugin_under_test(nullptr);
  cleanup();
  return result;
}
