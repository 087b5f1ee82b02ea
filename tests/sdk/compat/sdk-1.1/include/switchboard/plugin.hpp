// What every plugin is: a descriptor the host reads before trusting the
// library, and a factory that builds the plugin object from a PluginContext.
#pragma once

#include <cstddef>
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

// The ELF section that holds a plugin's descriptor. The host reads it from
// the file, before it maps the library: a plugin it refuses never runs a
// line of its code (not even static constructors).
#define SWITCHBOARD_DESCRIPTOR_SECTION ".switchboard_plugin"
inline constexpr const char* kDescriptorSection = SWITCHBOARD_DESCRIPTOR_SECTION;

inline constexpr std::uint32_t kDescriptorLayout = 2;
inline constexpr std::size_t kDescriptorNameBytes = 64;     // plugin name, NUL included
inline constexpr std::size_t kDescriptorVersionBytes = 32;  // plugin version, NUL included

// The structs that cross between host and plugin by value, by a frozen
// index (new ones are appended). Their sizes as the plugin was compiled are
// in its descriptor; the host refuses a plugin whose sizes differ from its
// own (another standard library build, say), before loading it.
enum class SharedStruct : std::uint32_t {
  error,
  health,
  conversation,
  member,
  message,
  event,
  event_draft,
  record,
  conversation_draft,
  conversation_created,
  conversation_page,
  member_change,
  message_draft,
  message_write,
  event_query,
  event_page,
  event_count,
  record_change,
  record_outcome,
  record_query,
  caller,
  command,
  http_route,
  http_request,
  http_response,
  message_decoration,
  count
};
inline constexpr std::size_t kSharedStructSlots = 32;
static_assert(static_cast<std::size_t>(SharedStruct::count) <= kSharedStructSlots);

// Sizes by SharedStruct; 0: not part of that plugin kind's interface.
struct SharedSizes {
  std::uint32_t size[kSharedStructSlots];
};

namespace detail {
template <class T>
constexpr void record_size(SharedSizes& s, SharedStruct which) {
  s.size[static_cast<std::size_t>(which)] = static_cast<std::uint32_t>(sizeof(T));
}
}  // namespace detail

// Plain data with a fixed layout and no pointers (nothing to relocate), so a
// host reads it from the file of a plugin built against any SDK version and
// explains a mismatch instead of crashing. Later layouts only append fields
// and say so in `size`; a host reads the fields it knows.
struct PluginDescriptor {
  char magic[8];
  std::uint32_t layout;  // kDescriptorLayout when built
  std::uint32_t size;    // sizeof(PluginDescriptor) when built
  std::uint32_t sdk_major;
  std::uint32_t sdk_minor;  // the SDK the plugin was built against: its interfaces' revision
  PluginKind kind;
  std::uint32_t compiler_major;
  std::uint32_t compiler_minor;
  std::uint32_t compiler_patch;
  std::uint32_t cxx11_abi;
  char name[kDescriptorNameBytes];
  char version[kDescriptorVersionBytes];
  char compiler_id[16];
  std::uint32_t reserved;
  SharedSizes struct_sizes;
};
static_assert(sizeof(PluginDescriptor) == 288, "the descriptor layout is part of the file format");

namespace detail {
template <std::size_t N>
constexpr void copy_text(char (&to)[N], const char* from) {
  std::size_t i = 0;
  for (; from[i] != '\0' && i + 1 < N; ++i) to[i] = from[i];
  for (; i < N; ++i) to[i] = '\0';
}
}  // namespace detail

constexpr PluginDescriptor make_descriptor(PluginKind kind, const char* name, const char* version,
                                           const SharedSizes& sizes = {}) {
  PluginDescriptor d{};
  for (std::size_t i = 0; i < sizeof d.magic; ++i) d.magic[i] = kDescriptorMagic[i];
  d.layout = kDescriptorLayout;
  d.size = sizeof(PluginDescriptor);
  d.sdk_major = SWITCHBOARD_SDK_VERSION_MAJOR;
  d.sdk_minor = SWITCHBOARD_SDK_VERSION_MINOR;
  d.kind = kind;
  d.struct_sizes = sizes;
  d.compiler_major = SWITCHBOARD_COMPILER_MAJOR;
  d.compiler_minor = SWITCHBOARD_COMPILER_MINOR;
  d.compiler_patch = SWITCHBOARD_COMPILER_PATCH;
  d.cxx11_abi = SWITCHBOARD_CXX11_ABI;
  detail::copy_text(d.name, name);
  detail::copy_text(d.version, version);
  detail::copy_text(d.compiler_id, SWITCHBOARD_COMPILER_ID);
  return d;
}

// Places a descriptor in the plugin file's descriptor section, kept by the
// linker even though no code refers to it.
#define SWITCHBOARD_DESCRIPTOR_ATTRIBUTES \
  __attribute__((section(SWITCHBOARD_DESCRIPTOR_SECTION), used, retain, aligned(8)))

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

inline constexpr const char* kFactorySymbol = "switchboard_plugin_create";

}  // namespace switchboard

// Exports a plugin. Use once per plugin library, at namespace scope:
//   SWITCHBOARD_PLUGIN(storage, "storage-sqlite", "1.0.0", sqlite::SqliteStorage)
// KIND is bus, storage or feature; CLASS derives from the matching interface
// (include its header first) and has a constructor taking PluginContext&.
// NAME is at most 63 bytes, VERSION at most 31.
#define SWITCHBOARD_PLUGIN(KIND, NAME, VERSION, CLASS)                                           \
  namespace switchboard_plugin_export {                                                         \
  namespace {                                                                                   \
  static_assert(::switchboard::plugin_kind_of(static_cast<const CLASS*>(nullptr)) ==            \
                    ::switchboard::PluginKind::KIND,                                            \
                "SWITCHBOARD_PLUGIN: CLASS does not implement the plugin kind " #KIND);         \
  static_assert(sizeof(NAME) <= ::switchboard::kDescriptorNameBytes,                            \
                "SWITCHBOARD_PLUGIN: NAME is longer than 63 bytes");                            \
  static_assert(sizeof(VERSION) <= ::switchboard::kDescriptorVersionBytes,                      \
                "SWITCHBOARD_PLUGIN: VERSION is longer than 31 bytes");                         \
  std::unique_ptr<::switchboard::Plugin> create(::switchboard::PluginContext& context) {        \
    return std::make_unique<CLASS>(context);                                                    \
  }                                                                                             \
  SWITCHBOARD_DESCRIPTOR_ATTRIBUTES constinit const ::switchboard::PluginDescriptor descriptor = \
      ::switchboard::make_descriptor(::switchboard::PluginKind::KIND, NAME, VERSION,            \
                                     ::switchboard::shared_sizes_of(static_cast<const CLASS*>(nullptr))); \
  }                                                                                             \
  }                                                                                             \
  BOOST_DLL_ALIAS(switchboard_plugin_export::create, switchboard_plugin_create)
