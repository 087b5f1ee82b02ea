#include "cli/commands.hpp"

#include <signal.h>

#include <cstdio>
#include <iostream>

#include <boost/json/parse.hpp>

#include "cli/admin_client.hpp"
#include "config/host_config.hpp"
#include "metrics/metrics_registry.hpp"
#include "plugins/plugin_context.hpp"
#include "plugins/plugin_set.hpp"
#include "server/server.hpp"

namespace switchboard::host {

namespace {

void print_lines(const std::vector<std::string>& lines) {
  for (const auto& line : lines) std::cerr << line << '\n';
}

std::optional<HostConfig> read_config(const std::filesystem::path& file) {
  try {
    return load_config(file);
  } catch (const ConfigProblems& e) {
    print_lines(e.lines());
    return std::nullopt;
  }
}

// Loads every plugin, or prints every problem and returns nothing.
std::unique_ptr<PluginSet> load_plugins(const HostConfig& config, HostServices& services) {
  try {
    return PluginSet::load(config, services);
  } catch (const PluginProblems& e) {
    print_lines(e.lines());
    return nullptr;
  }
}

std::string describe(const PluginInfo& info) {
  return std::string(to_string(info.kind)) + " " + info.name + " " + info.version;
}

}  // namespace

namespace {

// Prints the host's answer to POST /admin/reload; 0 if it applied (or would).
int report_reload(const HostConfig& config, bool dry_run) {
  std::string error;
  auto answer = ask_reload(config, dry_run, error);
  if (!answer) {
    std::cerr << error << "\n";
    return 1;
  }
  std::string text = answer->body;
  std::error_code ec;
  auto parsed = boost::json::parse(answer->body, ec);
  if (!ec && parsed.is_object()) {
    const auto& o = parsed.as_object();
    for (const char* key : {"changes", "error"}) {
      if (const auto* v = o.if_contains(key); v && v->is_string()) text = std::string(v->as_string());
    }
    if (const auto* e = o.if_contains("error"); e && e->is_object() && e->as_object().contains("message")) {
      text = std::string(e->as_object().at("message").as_string());
    }
  }
  std::string where = admin_address(config.server.listen);
  if (answer->status == 200) {
    std::cout << where << ": " << (dry_run ? "a reload would apply: " : "reload applied: ") << text << "\n";
    return 0;
  }
  std::cerr << where << ": " << (dry_run ? "a reload would be refused: " : "reload refused: ") << text << "\n";
  return 1;
}

}  // namespace

int run_reload(const std::filesystem::path& config_file, bool dry_run) {
  // The file's problems here, all at once, before the host reads it.
  auto config = read_config(config_file);
  if (!config) return 1;
  return report_reload(*config, dry_run);
}

int run_check(const std::filesystem::path& config_file, bool against_running) {
  auto config = read_config(config_file);
  if (!config) return 1;
  bool files_ok = true;
  try {
    load_auth(*config);
  } catch (const ConfigError& e) {
    std::cerr << e.what() << '\n';
    files_ok = false;
  }
  try {
    check_server_files(*config);
  } catch (const std::exception& e) {
    std::cerr << e.what() << '\n';
    files_ok = false;
  }
  // Plugins log at warn and above only: check's output is its verdict.
  auto sink = std::make_shared<LogSink>(LogLevel::warn, config->log.format);
  SystemClock clock;
  MetricsRegistry metrics;
  HostServices services{sink, clock, metrics};
  auto plugins = load_plugins(*config, services);
  if (!plugins || !files_ok) return 1;
  std::string summary = describe(plugins->bus_plugin().info) + ", " + describe(plugins->storage_plugin().info);
  for (const auto& f : plugins->features()) summary += ", " + describe(f.info);
  std::cout << config_file.string() << ": ok (" << summary << ")\n";
  return against_running ? report_reload(*config, true) : 0;
}

int run_plugins(const std::optional<std::filesystem::path>& config_file) {
  std::vector<std::filesystem::path> dirs;
  if (config_file) {
    auto config = read_config(*config_file);
    if (!config) return 1;
    dirs = config->plugin_directories;
  }
  if (dirs.empty()) dirs = PluginCatalog::default_directories();
  PluginCatalog catalog(dirs);
  auto entries = catalog.scan();
  std::printf("%-8s %-24s %-10s %-5s %s\n", "KIND", "NAME", "VERSION", "SDK", "FILE");
  int broken = 0;
  for (const auto& e : entries) {
    if (e.info) {
      std::string sdk = std::to_string(e.info->sdk_major) + "." + std::to_string(e.info->sdk_minor);
      std::printf("%-8s %-24s %-10s %-5s %s\n", std::string(to_string(e.info->kind)).c_str(), e.info->name.c_str(),
                  e.info->version.c_str(), sdk.c_str(), e.file.c_str());
    } else {
      ++broken;
      std::fprintf(stderr, "%s\n", e.error.c_str());
    }
  }
  if (entries.empty()) {
    std::string searched;
    for (const auto& d : dirs) searched += (searched.empty() ? "" : ", ") + d.string();
    std::fprintf(stderr, "no plugins found in: %s\n", searched.c_str());
  }
  return broken ? 1 : 0;
}

int run_serve(const std::filesystem::path& config_file) {
  // Block the stop signals before any thread exists, so every thread the
  // plugins start inherits the mask and only sigwait in serve() receives them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGHUP);  // reload, not stop
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  // A client vanishing mid-write must not kill the process.
  signal(SIGPIPE, SIG_IGN);

  auto config = read_config(config_file);
  if (!config) return 1;
  try {
    load_auth(*config);
  } catch (const ConfigError& e) {
    std::cerr << e.what() << '\n';
    return 1;
  }
  auto sink = std::make_shared<LogSink>(config->log.level, config->log.format);
  SystemClock clock;
  MetricsRegistry metrics;
  HostServices services{sink, clock, metrics};
  auto plugins = load_plugins(*config, services);
  if (!plugins) return 1;
  int code = serve(*config, *plugins, services, metrics, stop_signals);
  plugins.reset();
  return code;
}

int run_token(const std::filesystem::path& config_file, const std::string& user, std::chrono::seconds ttl) {
  auto config = read_config(config_file);
  if (!config) return 1;
  try {
    TokenVerifier verifier = load_auth(*config);
    std::cout << verifier.mint(user, ttl, SystemClock().now_ms()) << '\n';
    return 0;
  } catch (const std::exception& e) {
    std::cerr << e.what() << '\n';
    return 1;
  }
}

}  // namespace switchboard::host
