// What the host gives each plugin: its logger, its config table, the clock
// and the shared metrics.
#pragma once

#include <memory>

#include "config/plugin_table.hpp"
#include "log/log_sink.hpp"
#include "switchboard/plugin.hpp"

namespace switchboard::host {

class SystemClock final : public Clock {
 public:
  TimeMs now_ms() const noexcept override;
  std::int64_t monotonic_ns() const noexcept override;
};

class HostPluginContext final : public PluginContext {
 public:
  HostPluginContext(std::shared_ptr<LogSink> sink, std::string component, std::shared_ptr<const toml::table> table,
                    std::string table_path, std::filesystem::path file, std::string owner_where, Clock& clock,
                    Metrics& metrics)
      : logger_(std::move(sink), std::move(component)),
        config_(std::move(table), std::move(table_path), std::move(file), std::move(owner_where)),
        clock_(clock),
        metrics_(metrics) {}

  Logger& logger() override { return logger_; }
  const PluginConfig& config() override { return config_; }
  Clock& clock() override { return clock_; }
  Metrics& metrics() override { return metrics_; }
  const PluginTable& table() const { return config_; }

 private:
  ComponentLogger logger_;
  PluginTable config_;
  Clock& clock_;
  Metrics& metrics_;
};

}  // namespace switchboard::host
