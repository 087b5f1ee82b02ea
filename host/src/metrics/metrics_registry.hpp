// The process's metrics, shared by the host and its plugins, rendered as
// Prometheus text on /metrics. Updates are lock-free; only registration locks.
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "switchboard/services.hpp"

namespace switchboard::host {

class MetricsRegistry final : public Metrics {
 public:
  MetricsRegistry();
  ~MetricsRegistry() override;
  // The host's own metrics.
  Counter& counter(std::string_view name, std::string_view help) override;
  Gauge& gauge(std::string_view name, std::string_view help) override;
  Histogram& histogram(std::string_view name, std::string_view help) override;

  // The registry as the plugin `plugin` sees it: every name it registers is
  // namespaced with the plugin's name, `-` and `.` becoming `_`
  // ("commit_seconds" from storage-sqlite is storage_sqlite_commit_seconds,
  // shown as switchboard_storage_sqlite_commit_seconds); a name that already
  // begins with that namespace is kept as it is. Asking twice for a name gives
  // the same metric to the same owner; a name the host or another plugin
  // registered is refused (std::invalid_argument naming both owners).
  // Owned by the registry; valid for its lifetime.
  Metrics& for_plugin(std::string_view plugin);
  // "storage-sqlite" → "storage_sqlite_".
  static std::string plugin_namespace(std::string_view plugin);

  // A family of series valued 1, one per label set (e.g. the loaded plugins:
  // plugins{kind="feature",name="feature-pins",version="0.1.0"} 1), shown
  // as a gauge. Replaces what the family showed before.
  using Labels = std::vector<std::pair<std::string, std::string>>;
  void set_info(std::string_view name, std::string_view help, std::vector<Labels> series);

  // Prometheus text exposition format, every name prefixed with "switchboard_".
  std::string render() const;

 private:
  struct Entry;
  class PluginScope;
  Entry& find_or_add(std::string_view name, std::string_view help, int kind, std::string_view owner);

  mutable std::mutex mutex_;
  std::map<std::string, std::unique_ptr<Entry>, std::less<>> entries_;
  std::map<std::string, std::unique_ptr<PluginScope>, std::less<>> scopes_;
  struct Info {
    std::string help;
    std::vector<Labels> series;
  };
  std::map<std::string, Info, std::less<>> infos_;
};

}  // namespace switchboard::host
