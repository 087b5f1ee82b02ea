// A plugin's descriptor, read from its ELF file without mapping it: the host
// checks a plugin before any of its code (static constructors included)
// runs, and `switchboard plugins` lists a directory without running any.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <variant>

#include "switchboard/plugin.hpp"

namespace switchboard::host {

// The descriptor's fields as the file holds them, not yet judged against
// this host (kind, SDK ABI, toolchain: PluginLibrary does that).
struct DescriptorFields {
  std::uint32_t layout = 0;
  std::uint32_t sdk_major = 0;
  std::uint32_t sdk_minor = 0;
  std::uint32_t kind = 0;
  std::string name;
  std::string version;
  std::string compiler_id;
  std::uint32_t compiler_major = 0;
  std::uint32_t compiler_minor = 0;
  std::uint32_t compiler_patch = 0;
  std::uint32_t cxx11_abi = 0;
  SharedSizes struct_sizes{};
  bool exports_factory = false;  // its dynamic symbols define kFactorySymbol
};

// Why a file holds no readable descriptor, in words for an operator
// ("not an ELF file", "built for aarch64, this host is x86-64", ...).
struct DescriptorProblem {
  std::string why;
};

// Parses the bytes of a whole file. Never reads outside `file`, whatever it
// holds (it is fuzzed).
std::variant<DescriptorFields, DescriptorProblem> parse_plugin_file(std::string_view file);

// Maps `path` read-only (not as code) and parses it. Errors opening or
// mapping come back as a DescriptorProblem too.
std::variant<DescriptorFields, DescriptorProblem> read_plugin_file(const std::filesystem::path& path);

}  // namespace switchboard::host
