// The process's metrics, shared by the host and its plugins, rendered as
// Prometheus text on /metrics. Updates are lock-free; only registration locks.
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "switchboard/services.hpp"

namespace switchboard::host {

class MetricsRegistry final : public Metrics {
 public:
  MetricsRegistry();
  ~MetricsRegistry() override;
  Counter& counter(std::string_view name, std::string_view help) override;
  Gauge& gauge(std::string_view name, std::string_view help) override;
  Histogram& histogram(std::string_view name, std::string_view help) override;

  // Prometheus text exposition format, every name prefixed with "switchboard_".
  std::string render() const;

 private:
  struct Entry;
  Entry& find_or_add(std::string_view name, std::string_view help, int kind);

  mutable std::mutex mutex_;
  std::map<std::string, std::unique_ptr<Entry>, std::less<>> entries_;
};

}  // namespace switchboard::host
