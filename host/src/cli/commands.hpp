// The `switchboard` verbs. Each returns the process exit code:
// 0 success, 1 a problem in the config or the plugins, 2 bad usage.
#pragma once

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>

namespace switchboard::host {

int run_serve(const std::filesystem::path& config_file);
int run_check(const std::filesystem::path& config_file);
int run_plugins(const std::optional<std::filesystem::path>& config_file);
int run_token(const std::filesystem::path& config_file, const std::string& user, std::chrono::seconds ttl);

}  // namespace switchboard::host
