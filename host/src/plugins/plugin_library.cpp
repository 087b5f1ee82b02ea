#include "plugins/plugin_library.hpp"

#include <dlfcn.h>
#include <sys/stat.h>

#include <cstring>
#include <map>
#include <mutex>
#include <optional>

#include <boost/dll/shared_library.hpp>

#include "plugins/plugin_file.hpp"
#include "switchboard/bus.hpp"
#include "switchboard/feature.hpp"

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

// Every shared struct as this host was compiled (a feature's set is all of them).
SharedSizes host_shared_sizes() {
  SharedSizes all = shared_sizes_of(static_cast<const Feature*>(nullptr));
  SharedSizes bus = shared_sizes_of(static_cast<const Bus*>(nullptr));
  for (std::size_t i = 0; i < kSharedStructSlots; ++i) {
    if (all.size[i] == 0) all.size[i] = bus.size[i];
  }
  return all;
}

}  // namespace

std::string_view shared_struct_name(SharedStruct which) {
  static constexpr std::string_view names[] = {
      "Error",         "Health",       "Conversation", "Member",        "Message",           "Event",
      "EventDraft",    "Record",       "ConversationDraft", "ConversationCreated", "ConversationPage",
      "MemberChange",  "MessageDraft", "MessageWrite", "EventQuery",    "EventPage",         "EventCount",
      "RecordChange",  "RecordOutcome", "RecordQuery", "Caller",        "Command",           "HttpRoute",
      "HttpRequest",   "HttpResponse", "MessageDecoration"};
  static_assert(std::size(names) == static_cast<std::size_t>(SharedStruct::count));
  auto i = static_cast<std::size_t>(which);
  return i < std::size(names) ? names[i] : std::string_view("an unknown struct");
}

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
  info.sdk_major = d.sdk_major;
  info.sdk_minor = d.sdk_minor;
  info.toolchain = toolchain(d.compiler_id, d.compiler_major, d.compiler_minor, d.compiler_patch, d.cxx11_abi);
  std::string who = "plugin \"" + info.name + "\" " + info.version;
  auto kind = static_cast<PluginKind>(d.kind);
  if (kind != PluginKind::bus && kind != PluginKind::storage && kind != PluginKind::feature) {
    refuse(file, who + " declares unknown kind " + std::to_string(d.kind));
  }
  info.kind = kind;
  const std::string host_sdk = std::to_string(SWITCHBOARD_SDK_VERSION_MAJOR) + "." +
                               std::to_string(SWITCHBOARD_SDK_VERSION_MINOR);
  const std::string plugin_sdk = std::to_string(d.sdk_major) + "." + std::to_string(d.sdk_minor);
  if (d.sdk_major != SWITCHBOARD_SDK_VERSION_MAJOR) {
    refuse(file, who + " was built against SDK " + plugin_sdk + ", this host runs SDK " + host_sdk +
                     " and loads plugins of SDK " + std::to_string(SWITCHBOARD_SDK_VERSION_MAJOR) + ".0 to " + host_sdk +
                     ": rebuild the plugin against SDK " + std::to_string(SWITCHBOARD_SDK_VERSION_MAJOR) + ".x");
  }
  if (d.sdk_minor > SWITCHBOARD_SDK_VERSION_MINOR) {
    refuse(file, who + " was built against SDK " + plugin_sdk + ", newer than this host's SDK " + host_sdk +
                     ": upgrade the host, or build the plugin against SDK " + host_sdk + " or older");
  }
  // The C++ ABI is stable within one compiler's major version; across
  // compilers or majors, std:: types and vtables may not match.
  if (d.compiler_id != SWITCHBOARD_COMPILER_ID || d.compiler_major != SWITCHBOARD_COMPILER_MAJOR ||
      d.cxx11_abi != SWITCHBOARD_CXX11_ABI) {
    refuse(file, who + " was built with " + info.toolchain + ", this host with " + host_toolchain() +
                     ": rebuild the plugin with the host's toolchain");
  }
  // Structs passed by value must have the host's layout (a plugin built
  // with, say, _GLIBCXX_DEBUG has other std:: sizes). 0: not in its interface.
  const SharedSizes host_sizes = host_shared_sizes();
  for (std::size_t i = 0; i < static_cast<std::size_t>(SharedStruct::count); ++i) {
    std::uint32_t theirs = d.struct_sizes.size[i];
    if (theirs != 0 && theirs != host_sizes.size[i]) {
      refuse(file, who + ": struct " + std::string(shared_struct_name(static_cast<SharedStruct>(i))) + " is " +
                       std::to_string(theirs) + " bytes in the plugin, " + std::to_string(host_sizes.size[i]) +
                       " in this host: rebuild the plugin with the host's toolchain and standard library settings");
    }
  }
  if (!d.exports_factory) {
    refuse(file, who + " has no " + kFactorySymbol + " symbol (export it with SWITCHBOARD_PLUGIN)");
  }
  return info;
}

std::shared_ptr<PluginLibrary> PluginLibrary::open(const std::filesystem::path& file) { return open(inspect(file)); }

namespace {

// The files this process has loaded: a library stays mapped (RTLD_NODELETE)
// and dlopen of its path gives the mapped one back, so a file replaced since
// would be judged by its new descriptor but run as the old code.
struct FileIdentity {
  dev_t device = 0;
  ino_t inode = 0;
  std::int64_t mtime_ns = 0;
  off_t size = 0;
  bool operator==(const FileIdentity&) const = default;
};

std::optional<FileIdentity> identity_of(const std::filesystem::path& file) {
  struct stat st {};
  if (::stat(file.c_str(), &st) != 0) return std::nullopt;
  return FileIdentity{st.st_dev, st.st_ino, static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec,
                      st.st_size};
}

std::mutex loaded_mutex;
std::map<std::string, FileIdentity> loaded_files;

}  // namespace

std::shared_ptr<PluginLibrary> PluginLibrary::open(const PluginInfo& inspected) {
  const std::filesystem::path& file = inspected.file;
  std::error_code canon_error;
  const std::string key = std::filesystem::weakly_canonical(file, canon_error).string();
  const auto identity = identity_of(file);
  {
    std::lock_guard lock(loaded_mutex);
    if (auto it = loaded_files.find(key); it != loaded_files.end() && identity && !(it->second == *identity)) {
      refuse(file, "the file changed since this host loaded it, and the host still runs the code it loaded then: "
                   "restart the host to upgrade the plugin");
    }
  }
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
  if (identity) {
    std::lock_guard lock(loaded_mutex);
    loaded_files.emplace(key, *identity);
  }
  return self;
}

std::unique_ptr<Plugin> PluginLibrary::create(PluginContext& context) const {
  return factory_(context);
}

}  // namespace switchboard::host
