// The `switchboard` verbs. Each returns the process exit code:
// 0 success, 1 a problem in the config or the plugins, 2 bad usage.
#pragma once

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>

namespace switchboard::host {

int run_serve(const std::filesystem::path& config_file);
// `against_running`: also ask the host running with this config what a
// reload of it would do (a dry run).
int run_check(const std::filesystem::path& config_file, bool against_running = false);
// Asks the host running with this config to reload it (SIGHUP's reload),
// after checking the file here; `dry_run`: only say what would change.
int run_reload(const std::filesystem::path& config_file, bool dry_run);
int run_plugins(const std::optional<std::filesystem::path>& config_file);
int run_token(const std::filesystem::path& config_file, const std::string& user, std::chrono::seconds ttl);

}  // namespace switchboard::host
