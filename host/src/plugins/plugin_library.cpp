#include "plugins/plugin_library.hpp"

#include <dlfcn.h>

#include <cstring>

#include <boost/dll/shared_library.hpp>

namespace switchboard::host {

namespace {

std::string toolchain(std::string_view id, std::uint32_t major, std::uint32_t minor, std::uint32_t patch,
                      std::uint32_t cxx11_abi) {
  return std::string(id) + " " + std::to_string(major) + "." + std::to_string(minor) + "." + std::to_string(patch) +
         ", cxx11 ABI " + std::to_string(cxx11_abi);
}

// Descriptor strings live in the plugin; never read past a sane length.
std::string bounded(const char* s) {
  if (s == nullptr) return {};
  return std::string(s, strnlen(s, 256));
}

[[noreturn]] void refuse(const std::filesystem::path& file, const std::string& why) {
  throw PluginLoadError(file.string() + ": " + why);
}

}  // namespace

std::string host_toolchain() {
  return toolchain(SWITCHBOARD_COMPILER_ID, SWITCHBOARD_COMPILER_MAJOR, SWITCHBOARD_COMPILER_MINOR,
                   SWITCHBOARD_COMPILER_PATCH, SWITCHBOARD_CXX11_ABI);
}

PluginLibrary::~PluginLibrary() = default;

std::shared_ptr<PluginLibrary> PluginLibrary::open(const std::filesystem::path& file) {
  std::error_code exists_error;
  if (!std::filesystem::is_regular_file(file, exists_error)) {
    refuse(file, "no such plugin file");
  }
  std::shared_ptr<PluginLibrary> self(new PluginLibrary());
  self->info_.file = file;
  self->library_ = std::make_unique<boost::dll::shared_library>();
  boost::dll::fs::error_code ec;
  // rtld_now: an unresolved symbol is reported here, naming it, rather than
  // crashing the host the first time the code runs.
  self->library_->load(file.string(), boost::dll::load_mode::rtld_now | boost::dll::load_mode::rtld_local, ec);
  if (ec) {
    const char* detail = dlerror();
    refuse(file, "cannot load: " + (detail ? std::string(detail) : ec.message()));
  }
  if (!self->library_->has(kDescriptorSymbol)) {
    refuse(file, std::string("not a Switchboard plugin (no ") + kDescriptorSymbol +
                     " symbol; export one with SWITCHBOARD_PLUGIN)");
  }
  const auto& d = self->library_->get_alias<const PluginDescriptor>(kDescriptorSymbol);
  if (std::memcmp(d.magic, kDescriptorMagic, sizeof d.magic) != 0) {
    refuse(file, "not a Switchboard plugin (its descriptor has a bad magic number)");
  }
  if (d.layout != 1) {
    refuse(file, "plugin descriptor layout " + std::to_string(d.layout) + ", this host reads layout 1");
  }
  PluginInfo& info = self->info_;
  info.name = bounded(d.name);
  info.version = bounded(d.version);
  info.sdk_abi = d.sdk_abi;
  info.toolchain = toolchain(bounded(d.compiler_id), d.compiler_major, d.compiler_minor, d.compiler_patch, d.cxx11_abi);
  std::string who = "plugin \"" + info.name + "\" " + info.version;
  if (d.kind != PluginKind::bus && d.kind != PluginKind::storage && d.kind != PluginKind::feature) {
    refuse(file, who + " declares unknown kind " + std::to_string(static_cast<std::uint32_t>(d.kind)));
  }
  info.kind = d.kind;
  if (d.sdk_abi != SWITCHBOARD_SDK_ABI_VERSION) {
    refuse(file, who + " was built for SDK ABI " + std::to_string(d.sdk_abi) + ", this host loads SDK ABI " +
                     std::to_string(SWITCHBOARD_SDK_ABI_VERSION) + " (SDK " SWITCHBOARD_SDK_VERSION
                     "): rebuild the plugin against this host's SDK");
  }
  // The C++ ABI is stable within one compiler's major version; across
  // compilers or majors, std:: types and vtables may not match.
  if (bounded(d.compiler_id) != SWITCHBOARD_COMPILER_ID || d.compiler_major != SWITCHBOARD_COMPILER_MAJOR ||
      d.cxx11_abi != SWITCHBOARD_CXX11_ABI) {
    refuse(file, who + " was built with " + info.toolchain + ", this host with " + host_toolchain() +
                     ": rebuild the plugin with the host's toolchain");
  }
  if (!self->library_->has(kFactorySymbol)) {
    refuse(file, who + " has no " + kFactorySymbol + " symbol (export it with SWITCHBOARD_PLUGIN)");
  }
  self->factory_ = &self->library_->get_alias<PluginFactory>(kFactorySymbol);
  // Accepted: the library stays mapped until the process exits, even after
  // its objects are destroyed and the handle is closed. A plugin's code may
  // still be referenced then: a std::function it built, held in a storage
  // queue or an io_context, or a thread it started and detached.
  if (void* pinned = dlopen(file.c_str(), RTLD_NOW | RTLD_NOLOAD | RTLD_NODELETE)) {
    dlclose(pinned);  // drops the extra reference; RTLD_NODELETE stays
  } else {
    const char* detail = dlerror();
    refuse(file, "cannot pin the library in memory: " + std::string(detail ? detail : "dlopen failed"));
  }
  return self;
}

std::unique_ptr<Plugin> PluginLibrary::create(PluginContext& context) const {
  return factory_(context);
}

}  // namespace switchboard::host
