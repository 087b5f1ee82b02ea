// The plugins a config declares, loaded and created: one bus, one storage,
// any number of features. Owns their lifetimes: each object keeps its library
// loaded; on destruction features go first, then the bus, then storage, and
// each library is unloaded only after the last object it made is gone.
#pragma once

#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "config/host_config.hpp"
#include "log/log_sink.hpp"
#include "plugins/plugin_catalog.hpp"
#include "switchboard/bus.hpp"
#include "switchboard/feature.hpp"
#include "switchboard/storage.hpp"

namespace switchboard::host {

// Every problem found while loading, one line each.
class PluginProblems : public std::runtime_error {
 public:
  explicit PluginProblems(std::vector<std::string> lines);
  const std::vector<std::string>& lines() const noexcept { return lines_; }

 private:
  std::vector<std::string> lines_;
};

struct HostServices {
  std::shared_ptr<LogSink> log;
  Clock& clock;
  Metrics& metrics;
};

template <class T>
struct LoadedPlugin {
  std::shared_ptr<T> object;
  PluginInfo info;
};

// Loads a library and creates its object, checking its kind and config.
// `slot` names the config entry ("bus", "features[1]"). Throws
// PluginLoadError or ConfigError (one line each).
std::shared_ptr<Plugin> create_plugin(const std::filesystem::path& file, PluginKind expected,
                                      const PluginDeclaration& declaration, const std::filesystem::path& config_file,
                                      HostServices& services, PluginInfo* info_out);

class PluginSet {
 public:
  // Loads everything and reports every problem at once. Throws PluginProblems.
  static std::unique_ptr<PluginSet> load(const HostConfig& config, HostServices& services);
  ~PluginSet();

  Bus& bus() const { return *bus_.object; }
  Storage& storage() const { return *storage_.object; }
  const LoadedPlugin<Bus>& bus_plugin() const { return bus_; }
  const LoadedPlugin<Storage>& storage_plugin() const { return storage_; }
  const std::vector<LoadedPlugin<Feature>>& features() const { return features_; }

 private:
  PluginSet() = default;
  LoadedPlugin<Storage> storage_;
  LoadedPlugin<Bus> bus_;
  std::vector<LoadedPlugin<Feature>> features_;
};

}  // namespace switchboard::host
