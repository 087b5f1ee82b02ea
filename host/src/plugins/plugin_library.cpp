#include "plugins/plugin_library.hpp"

#include <dlfcn.h>

#include <cstring>

#include <boost/dll/shared_library.hpp>

#include "plugins/plugin_file.hpp"

namespace switchboard::host {

namespace {

std::string toolchain(std::string_view id, std::uint32_t major, std::uint32_t minor, std::uint32_t patch,
                      std::uint32_t cxx11_abi) {
  return std::string(id) + " " + std::to_string(major) + "." + std::to_string(minor) + "." + std::to_string(patch) +
         ", cxx11 ABI " + std::to_string(cxx11_abi);
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

PluginInfo PluginLibrary::inspect(const std::filesystem::path& file) {
  std::error_code exists_error;
  if (!std::filesystem::is_regular_file(file, exists_error)) {
    refuse(file, "no such plugin file");
  }
  auto read = read_plugin_file(file);
  if (auto* p = std::get_if<DescriptorProblem>(&read)) refuse(file, p->why);
  const auto& d = std::get<DescriptorFields>(read);
  PluginInfo info;
  info.file = file;
  info.name = d.name;
  info.version = d.version;
  info.sdk_abi = d.sdk_abi;
  info.toolchain = toolchain(d.compiler_id, d.compiler_major, d.compiler_minor, d.compiler_patch, d.cxx11_abi);
  std::string who = "plugin \"" + info.name + "\" " + info.version;
  auto kind = static_cast<PluginKind>(d.kind);
  if (kind != PluginKind::bus && kind != PluginKind::storage && kind != PluginKind::feature) {
    refuse(file, who + " declares unknown kind " + std::to_string(d.kind));
  }
  info.kind = kind;
  if (d.sdk_abi != SWITCHBOARD_SDK_ABI_VERSION) {
    refuse(file, who + " was built for SDK ABI " + std::to_string(d.sdk_abi) + ", this host loads SDK ABI " +
                     std::to_string(SWITCHBOARD_SDK_ABI_VERSION) + " (SDK " SWITCHBOARD_SDK_VERSION
                     "): rebuild the plugin against this host's SDK");
  }
  // The C++ ABI is stable within one compiler's major version; across
  // compilers or majors, std:: types and vtables may not match.
  if (d.compiler_id != SWITCHBOARD_COMPILER_ID || d.compiler_major != SWITCHBOARD_COMPILER_MAJOR ||
      d.cxx11_abi != SWITCHBOARD_CXX11_ABI) {
    refuse(file, who + " was built with " + info.toolchain + ", this host with " + host_toolchain() +
                     ": rebuild the plugin with the host's toolchain");
  }
  if (!d.exports_factory) {
    refuse(file, who + " has no " + kFactorySymbol + " symbol (export it with SWITCHBOARD_PLUGIN)");
  }
  return info;
}

std::shared_ptr<PluginLibrary> PluginLibrary::open(const std::filesystem::path& file) { return open(inspect(file)); }

std::shared_ptr<PluginLibrary> PluginLibrary::open(const PluginInfo& inspected) {
  const std::filesystem::path& file = inspected.file;
  std::shared_ptr<PluginLibrary> self(new PluginLibrary());
  self->info_ = inspected;
  const std::string who = "plugin \"" + self->info_.name + "\" " + self->info_.version;
  self->library_ = std::make_unique<boost::dll::shared_library>();
  boost::dll::fs::error_code ec;
  // rtld_now: an unresolved symbol is reported here, naming it, rather than
  // crashing the host the first time the code runs.
  self->library_->load(file.string(), boost::dll::load_mode::rtld_now | boost::dll::load_mode::rtld_local, ec);
  if (ec) {
    const char* detail = dlerror();
    refuse(file, "cannot load: " + (detail ? std::string(detail) : ec.message()));
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
