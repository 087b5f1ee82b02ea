// libFuzzer: the host's TOML config loader on arbitrary text. Properties: it
// either returns a config or throws ConfigProblems naming the file; nothing
// else escapes, nothing crashes.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "config/host_config.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto env = [](std::string_view name) -> std::optional<std::string> {
    if (name == "PORT") return std::string("8080");
    return std::nullopt;
  };
  try {
    auto config = switchboard::host::parse_config(text, "fuzz.toml", env);
    (void)config;
  } catch (const switchboard::host::ConfigProblems& e) {
    if (std::string_view(e.what()).find("fuzz.toml") == std::string_view::npos) std::abort();
  }
  return 0;
}
