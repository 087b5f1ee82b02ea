#include "config/interpolation.hpp"

#include <cstdlib>
#include <stdexcept>

namespace switchboard::host {

EnvLookup process_environment() {
  return [](const std::string& name) -> std::optional<std::string> {
    if (const char* value = std::getenv(name.c_str())) return std::string(value);
    return std::nullopt;
  };
}

namespace {

bool valid_name(std::string_view name) {
  if (name.empty()) return false;
  for (char c : name) {
    bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
    if (!ok) return false;
  }
  return !(name.front() >= '0' && name.front() <= '9');
}

}  // namespace

std::string interpolate(std::string_view text, const EnvLookup& env) {
  std::string out;
  out.reserve(text.size());
  std::size_t i = 0;
  while (i < text.size()) {
    if (text.compare(i, 3, "$${") == 0) {
      out += "${";
      i += 3;
      continue;
    }
    if (text.compare(i, 2, "${") != 0) {
      out += text[i++];
      continue;
    }
    std::size_t close = text.find('}', i + 2);
    if (close == std::string_view::npos) {
      throw std::invalid_argument("unterminated \"${\" in \"" + std::string(text) + "\"");
    }
    std::string_view body = text.substr(i + 2, close - i - 2);
    std::string_view name = body;
    std::optional<std::string_view> fallback;
    if (auto sep = body.find(":-"); sep != std::string_view::npos) {
      name = body.substr(0, sep);
      fallback = body.substr(sep + 2);
    }
    if (!valid_name(name)) {
      throw std::invalid_argument("bad variable name \"" + std::string(name) + "\" in \"" + std::string(text) +
                                  "\" (use ${NAME} or ${NAME:-default})");
    }
    auto value = env(std::string(name));
    if (value && !value->empty()) {
      out += *value;
    } else if (fallback) {
      out += *fallback;
    } else if (value) {
      // Set but empty, and no default: the operator asked for exactly that.
    } else {
      throw std::invalid_argument("environment variable " + std::string(name) +
                                  " is not set (give a default with ${" + std::string(name) + ":-value})");
    }
    i = close + 1;
  }
  return out;
}

}  // namespace switchboard::host
