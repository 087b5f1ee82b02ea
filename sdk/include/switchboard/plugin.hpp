// What every plugin is: a descriptor the host reads before trusting the
// library, and a factory that builds the plugin object from a PluginContext.
#pragma once

#include <cstdint>
#include <memory>
#include <string_view>
#include <type_traits>

#include <boost/dll/alias.hpp>

#include "switchboard/abi.hpp"
#include "switchboard/services.hpp"

namespace switchboard {

enum class PluginKind : std::uint32_t { bus = 1, storage = 2, feature = 3 };

constexpr std::string_view to_string(PluginKind kind) noexcept {
  switch (kind) {
    case PluginKind::bus: return "bus";
    case PluginKind::storage: return "storage";
    case PluginKind::feature: return "feature";
  }
  return "unknown";
}

inline constexpr char kDescriptorMagic[8] = {'S', 'W', 'B', 'P', 'L', 'U', 'G', '1'};

// Plain data with a fixed layout, so a host can read it from a plugin built
// against any SDK version and explain a mismatch instead of crashing.
struct PluginDescriptor {
  char magic[8];
  std::uint32_t layout;  // layout version of this struct: 1
  std::uint32_t sdk_abi;
  PluginKind kind;
  const char* name;
  const char* version;
  const char* compiler_id;
  std::uint32_t compiler_major;
  std::uint32_t compiler_minor;
  std::uint32_t compiler_patch;
  std::uint32_t cxx11_abi;
};

constexpr PluginDescriptor make_descriptor(PluginKind kind, const char* name, const char* version) {
  return PluginDescriptor{
      {'S', 'W', 'B', 'P', 'L', 'U', 'G', '1'},
      1,
      SWITCHBOARD_SDK_ABI_VERSION,
      kind,
      name,
      version,
      SWITCHBOARD_COMPILER_ID,
      SWITCHBOARD_COMPILER_MAJOR,
      SWITCHBOARD_COMPILER_MINOR,
      SWITCHBOARD_COMPILER_PATCH,
      SWITCHBOARD_CXX11_ABI,
  };
}

// What the host hands a plugin's factory. The references stay valid for as
// long as the plugin object lives.
class SWITCHBOARD_API PluginContext {
 public:
  virtual ~PluginContext() = default;
  virtual Logger& logger() = 0;
  virtual const PluginConfig& config() = 0;
  virtual Clock& clock() = 0;
  virtual Metrics& metrics() = 0;
};

// Base of Bus, Storage and Feature. The host destroys every plugin object
// before it unloads the library that made it.
class SWITCHBOARD_API Plugin {
 public:
  virtual ~Plugin() = default;
};

// A factory may throw ConfigError (bad config) or any std::exception (cannot
// start); the host reports it and refuses to start.
using PluginFactory = std::unique_ptr<Plugin>(PluginContext&);

inline constexpr const char* kDescriptorSymbol = "switchboard_plugin_descriptor";
inline constexpr const char* kFactorySymbol = "switchboard_plugin_create";

}  // namespace switchboard

// Exports a plugin. Use once per plugin library, at namespace scope:
//   SWITCHBOARD_PLUGIN(storage, "storage-sqlite", "1.0.0", sqlite::SqliteStorage)
// KIND is bus, storage or feature; CLASS derives from the matching interface
// (include its header first) and has a constructor taking PluginContext&.
#define SWITCHBOARD_PLUGIN(KIND, NAME, VERSION, CLASS)                                           \
  namespace switchboard_plugin_export {                                                         \
  namespace {                                                                                   \
  static_assert(::switchboard::plugin_kind_of(static_cast<const CLASS*>(nullptr)) ==            \
                    ::switchboard::PluginKind::KIND,                                            \
                "SWITCHBOARD_PLUGIN: CLASS does not implement the plugin kind " #KIND);         \
  std::unique_ptr<::switchboard::Plugin> create(::switchboard::PluginContext& context) {        \
    return std::make_unique<CLASS>(context);                                                    \
  }                                                                                             \
  constexpr ::switchboard::PluginDescriptor descriptor =                                        \
      ::switchboard::make_descriptor(::switchboard::PluginKind::KIND, NAME, VERSION);           \
  }                                                                                             \
  }                                                                                             \
  BOOST_DLL_ALIAS(switchboard_plugin_export::create, switchboard_plugin_create)                 \
  BOOST_DLL_ALIAS(switchboard_plugin_export::descriptor, switchboard_plugin_descriptor)
