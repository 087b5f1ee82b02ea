// libFuzzer: the reader of plugin descriptors from ELF files (any file in a
// plugin directory). Properties: no crash, no read outside the input (ASan);
// an accepted descriptor's texts fit their fields.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "plugins/plugin_file.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto result = switchboard::host::parse_plugin_file(std::string_view(reinterpret_cast<const char*>(data), size));
  if (const auto* f = std::get_if<switchboard::host::DescriptorFields>(&result)) {
    if (f->name.size() >= switchboard::kDescriptorNameBytes || f->version.size() >= switchboard::kDescriptorVersionBytes ||
        f->compiler_id.size() >= 16) {
      std::abort();
    }
  } else if (std::get<switchboard::host::DescriptorProblem>(result).why.empty()) {
    std::abort();  // every refusal says why
  }
  return 0;
}
