// ${VAR} and ${VAR:-default} in config strings, so deployments keep the
// seeds' environment conventions (PORT, NATS_URL, DATABASE_URL, BUS_TYPE).
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace switchboard::host {

using EnvLookup = std::function<std::optional<std::string>(const std::string& name)>;

EnvLookup process_environment();

// Expands every ${NAME} and ${NAME:-default} in `text`; "$${" stands for a
// literal "${". Throws std::invalid_argument naming the variable when one is
// unset and has no default, or when the syntax is broken.
std::string interpolate(std::string_view text, const EnvLookup& env);

}  // namespace switchboard::host
