// One plugin shared library: its descriptor read from the file and checked
// against this host, then opened with Boost.DLL.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>

#include "switchboard/plugin.hpp"

namespace boost::dll {
class shared_library;
}

namespace switchboard::host {

// One line naming the file and the problem, and both sides of a mismatch.
class PluginLoadError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct PluginInfo {
  std::filesystem::path file;
  PluginKind kind = PluginKind::bus;
  std::string name;
  std::string version;
  std::uint32_t sdk_major = 0;
  std::uint32_t sdk_minor = 0;  // its interfaces' revision: the host calls nothing added after it
  std::string toolchain;  // "gcc 12.2.0, cxx11 ABI 1"
};

// "gcc 12.2.0, cxx11 ABI 1": what this host was built with.
std::string host_toolchain();

// The name of a SharedStruct ("Message"), for messages.
std::string_view shared_struct_name(SharedStruct which);

class PluginLibrary {
 public:
  // Reads the file's descriptor and checks it against this host (kind,
  // SDK ABI, toolchain) without loading it: no plugin code runs. Throws
  // PluginLoadError.
  static PluginInfo inspect(const std::filesystem::path& file);
  // inspect(), then loads the library. Throws PluginLoadError.
  static std::shared_ptr<PluginLibrary> open(const std::filesystem::path& file);
  // Loads a library inspect() accepted.
  static std::shared_ptr<PluginLibrary> open(const PluginInfo& inspected);
  ~PluginLibrary();

  const PluginInfo& info() const noexcept { return info_; }
  // Calls the plugin's factory. Exceptions from it propagate unchanged.
  std::unique_ptr<Plugin> create(PluginContext& context) const;

 private:
  PluginLibrary() = default;
  std::unique_ptr<boost::dll::shared_library> library_;
  PluginFactory* factory_ = nullptr;
  PluginInfo info_;
};

}  // namespace switchboard::host
