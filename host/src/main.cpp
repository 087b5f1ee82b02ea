// switchboard: the host. Verbs: serve (default), check, reload, plugins, token.
#include <chrono>
#include <cstring>
#include <iostream>
#include <optional>
#include <string>

#include "cli/commands.hpp"

namespace {

constexpr const char* kUsage = R"(usage: switchboard [serve] [--config FILE]   run the host (default config: config/switchboard.toml)
       switchboard check --config FILE [--running]
                                               load config and plugins, report every problem;
                                               --running: and what the running host would do with it
       switchboard reload --config FILE [--dry-run]
                                               the running host reloads FILE ([[features]] live;
                                               same as SIGHUP); --dry-run: only say what would change
       switchboard plugins [--config FILE]     list the plugins found: kind, name, version, SDK
       switchboard token --config FILE --user USER [--ttl 1h]
                                               mint a token for development (ttl: 90s, 30m, 12h, 7d)
)";

// "90s", "30m", "12h", "7d" or plain seconds.
std::optional<std::chrono::seconds> parse_ttl(const std::string& text) {
  if (text.empty()) return std::nullopt;
  std::size_t used = 0;
  long long n = 0;
  try {
    n = std::stoll(text, &used);
  } catch (...) {
    return std::nullopt;
  }
  if (n <= 0) return std::nullopt;
  std::string unit = text.substr(used);
  long long scale = unit.empty() || unit == "s" ? 1 : unit == "m" ? 60 : unit == "h" ? 3600 : unit == "d" ? 86400 : 0;
  if (!scale) return std::nullopt;
  return std::chrono::seconds(n * scale);
}

int usage(const std::string& problem) {
  if (!problem.empty()) std::cerr << "switchboard: " << problem << "\n";
  std::cerr << kUsage;
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::string verb = "serve";
  std::optional<std::string> config;
  std::optional<std::string> user;
  std::string ttl = "1h";
  bool running = false;
  bool dry_run = false;
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
    } else if (arg == "--user" || arg == "--ttl") {
      if (i + 1 >= argc) return usage(arg + " needs a value");
      (arg == "--user" ? user.emplace() : ttl) = argv[++i];
    } else if (arg == "--running") {
      running = true;
    } else if (arg == "--dry-run") {
      dry_run = true;
    } else if (arg.rfind("--config=", 0) == 0) {
      config = arg.substr(std::strlen("--config="));
    } else {
      return usage("unknown argument \"" + arg + "\"");
    }
  }
  if (verb == "serve") return switchboard::host::run_serve(config.value_or("config/switchboard.toml"));
  if (verb == "check") {
    if (!config) return usage("check needs --config FILE");
    return switchboard::host::run_check(*config, running);
  }
  if (verb == "reload") {
    if (!config) return usage("reload needs --config FILE (the file the host runs with)");
    return switchboard::host::run_reload(*config, dry_run);
  }
  if (verb == "token") {
    if (!config) return usage("token needs --config FILE");
    if (!user || user->empty()) return usage("token needs --user USER");
    auto seconds = parse_ttl(ttl);
    if (!seconds) return usage("bad --ttl \"" + ttl + "\" (e.g. 90s, 30m, 12h, 7d)");
    return switchboard::host::run_token(*config, *user, *seconds);
  }
  if (verb == "plugins") {
    return switchboard::host::run_plugins(config ? std::optional<std::filesystem::path>(*config) : std::nullopt);
  }
  return usage("unknown verb \"" + verb + "\"");
}
