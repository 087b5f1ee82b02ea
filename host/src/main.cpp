// switchboard: the host. Verbs: serve (default), check, plugins.
#include <cstring>
#include <iostream>
#include <optional>
#include <string>

#include "cli/commands.hpp"

namespace {

constexpr const char* kUsage = R"(usage: switchboard [serve] [--config FILE]   run the host (default config: config/switchboard.toml)
       switchboard check --config FILE         load config and plugins, report every problem
       switchboard plugins [--config FILE]     list the plugins found, with kind, name, version and ABI
)";

int usage(const std::string& problem) {
  if (!problem.empty()) std::cerr << "switchboard: " << problem << "\n";
  std::cerr << kUsage;
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::string verb = "serve";
  std::optional<std::string> config;
  int i = 1;
  if (i < argc && argv[i][0] != '-') verb = argv[i++];
  for (; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::cout << kUsage;
      return 0;
    }
    if (arg == "--config" || arg == "-c") {
      if (i + 1 >= argc) return usage("--config needs a file");
      config = argv[++i];
    } else if (arg.rfind("--config=", 0) == 0) {
      config = arg.substr(std::strlen("--config="));
    } else {
      return usage("unknown argument \"" + arg + "\"");
    }
  }
  if (verb == "serve") return switchboard::host::run_serve(config.value_or("config/switchboard.toml"));
  if (verb == "check") {
    if (!config) return usage("check needs --config FILE");
    return switchboard::host::run_check(*config);
  }
  if (verb == "plugins") {
    return switchboard::host::run_plugins(config ? std::optional<std::filesystem::path>(*config) : std::nullopt);
  }
  return usage("unknown verb \"" + verb + "\"");
}
