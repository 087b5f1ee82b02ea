#include "plugins/plugin_set.hpp"

#include <map>

#include "metrics/metrics_registry.hpp"
#include "plugins/plugin_context.hpp"

namespace switchboard::host {

namespace {

std::string join(const std::vector<std::string>& lines) {
  std::string out;
  for (const auto& l : lines) out += (out.empty() ? "" : "\n") + l;
  return out;
}

// Destroyed in reverse order of declaration: the context (host code) first,
// then the library, so nothing of the plugin runs after its code is unmapped.
struct Keepalive {
  std::shared_ptr<PluginLibrary> library;
  std::shared_ptr<HostPluginContext> context;
};

template <class T>
LoadedPlugin<T> load_one(const PluginCatalog& catalog, PluginKind kind, const PluginDeclaration& decl,
                         const HostConfig& config, HostServices& services) {
  std::filesystem::path file = catalog.resolve(decl.plugin);
  LoadedPlugin<T> loaded;
  auto object = create_plugin(file, kind, decl, config.file, services, &loaded.info);
  loaded.object = std::static_pointer_cast<T>(object);
  return loaded;
}

}  // namespace

PluginProblems::PluginProblems(std::vector<std::string> lines) : std::runtime_error(join(lines)), lines_(std::move(lines)) {}

std::shared_ptr<Plugin> create_plugin(const std::filesystem::path& file, PluginKind expected,
                                      const PluginDeclaration& decl, const std::filesystem::path& config_file,
                                      HostServices& services, PluginInfo* info_out) {
  // Kind and name are judged from the file, before the library is loaded.
  const PluginInfo info = PluginLibrary::inspect(file);
  if (info.kind != expected) {
    throw PluginLoadError(file.string() + ": plugin \"" + info.name + "\" is a " + std::string(to_string(info.kind)) +
                          " plugin, but " + decl.where + ": " + decl.key_path + " needs a " +
                          std::string(to_string(expected)) + " plugin");
  }
  // A name given in the config must be the plugin's own, so that a renamed
  // file cannot silently stand in for another plugin.
  bool by_name = decl.plugin.find('/') == std::string::npos && !decl.plugin.ends_with(".so");
  if (by_name && info.name != decl.plugin) {
    throw PluginLoadError(file.string() + ": the file is named for \"" + decl.plugin + "\" but holds plugin \"" +
                          info.name + "\"");
  }
  auto library = PluginLibrary::open(info);
  // A plugin's metrics live in its own namespace (switchboard_<plugin>_…);
  // a name another owner holds is refused when the plugin registers it.
  auto* registry = dynamic_cast<MetricsRegistry*>(&services.metrics);
  Metrics& metrics = registry ? registry->for_plugin(info.name) : services.metrics;
  auto context = std::make_shared<HostPluginContext>(services.log, info.name, decl.config, decl.config_path,
                                                     config_file, decl.where, services.clock, metrics);
  std::unique_ptr<Plugin> made;
  try {
    made = library->create(*context);
  } catch (const ConfigError& e) {
    // Rethrown as a copy made by the host: the original's vtable lives in the
    // plugin, which may be unloaded before anyone reads the message.
    throw ConfigError(e.what());
  } catch (const std::exception& e) {
    throw PluginLoadError(decl.where + ": " + decl.key_path + ": plugin \"" + info.name + "\" failed to start: " +
                          e.what());
  } catch (...) {
    throw PluginLoadError(decl.where + ": " + decl.key_path + ": plugin \"" + info.name +
                          "\" failed to start with an unknown exception");
  }
  if (!made) {
    throw PluginLoadError(file.string() + ": plugin \"" + info.name + "\" factory returned nothing");
  }
  Plugin* raw = made.release();
  std::shared_ptr<Plugin> object(raw, [keep = Keepalive{library, context}](Plugin* p) { delete p; });
  // Checked after creation: a plugin may read its keys in its constructor.
  context->table().reject_unread_keys(info.name);
  if (info_out) *info_out = info;
  return object;
}

std::unique_ptr<PluginSet> PluginSet::load(const HostConfig& config, HostServices& services) {
  PluginCatalog catalog(config.plugin_directories.empty() ? PluginCatalog::default_directories()
                                                          : config.plugin_directories);
  std::unique_ptr<PluginSet> set(new PluginSet());
  std::vector<std::string> problems;
  auto attempt = [&](auto&& step) {
    try {
      step();
    } catch (const std::exception& e) {
      problems.emplace_back(e.what());
    }
  };
  attempt([&] { set->storage_ = load_one<Storage>(catalog, PluginKind::storage, config.storage, config, services); });
  attempt([&] { set->bus_ = load_one<Bus>(catalog, PluginKind::bus, config.bus, config, services); });
  for (const auto& decl : config.features) {
    attempt([&] {
      set->features_.push_back(load_one<Feature>(catalog, PluginKind::feature, decl, config, services));
    });
  }

  std::map<std::string, std::filesystem::path> names;
  auto claim = [&](const PluginInfo& info) {
    if (info.name.empty()) return;
    auto [it, fresh] = names.emplace(info.name, info.file);
    if (!fresh) {
      problems.push_back("two plugins are named \"" + info.name + "\": " + it->second.string() + " and " +
                         info.file.string());
    }
  };
  if (set->storage_.object) claim(set->storage_.info);
  if (set->bus_.object) claim(set->bus_.info);
  for (const auto& f : set->features_) claim(f.info);

  if (!problems.empty()) throw PluginProblems(std::move(problems));
  return set;
}

PluginSet::~PluginSet() {
  // Features use the bus and storage; the bus delivers into the host, which
  // reads storage. Tear down in that order.
  while (!features_.empty()) features_.pop_back();
  bus_.object.reset();
  storage_.object.reset();
}

}  // namespace switchboard::host
