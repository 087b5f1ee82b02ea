// The host services every plugin receives in its PluginContext: logging, its
// own config table, a clock and metrics. All are implemented by the host.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "switchboard/abi.hpp"
#include "switchboard/types.hpp"

namespace switchboard {

// Thrown on the control plane (config, start-up) only; the host turns it into
// one line naming the config file, line, column and key.
class SWITCHBOARD_API ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

enum class LogLevel : std::uint8_t { trace, debug, info, warn, error };

struct LogField {
  std::string_view key;
  std::string_view value;
};

class SWITCHBOARD_API Logger {
 public:
  virtual ~Logger() = default;
  virtual bool enabled(LogLevel level) const noexcept = 0;
  // One line per call; the host adds time, level and the plugin's name.
  virtual void write(LogLevel level, std::string_view message,
                     std::initializer_list<LogField> fields = {}) noexcept = 0;

  void debug(std::string_view m, std::initializer_list<LogField> f = {}) noexcept { log(LogLevel::debug, m, f); }
  void info(std::string_view m, std::initializer_list<LogField> f = {}) noexcept { log(LogLevel::info, m, f); }
  void warn(std::string_view m, std::initializer_list<LogField> f = {}) noexcept { log(LogLevel::warn, m, f); }
  void error(std::string_view m, std::initializer_list<LogField> f = {}) noexcept { log(LogLevel::error, m, f); }

 private:
  void log(LogLevel l, std::string_view m, std::initializer_list<LogField> f) noexcept {
    if (enabled(l)) write(l, m, f);
  }
};

// The plugin's own table from the host's TOML (e.g. [storage.config]), with
// ${VAR} interpolation already applied. A key of the wrong type throws
// ConfigError naming file:line:column; after the factory returns, the host
// rejects any key the plugin never asked for, so typos do not pass silently.
class SWITCHBOARD_API PluginConfig {
 public:
  virtual ~PluginConfig() = default;
  virtual std::optional<std::string> string(std::string_view key) const = 0;
  virtual std::optional<std::int64_t> integer(std::string_view key) const = 0;
  virtual std::optional<double> number(std::string_view key) const = 0;  // integer or float
  virtual std::optional<bool> boolean(std::string_view key) const = 0;
  virtual std::optional<std::vector<std::string>> strings(std::string_view key) const = 0;
  // Throws ConfigError naming where `key` is (or the table, if it is absent).
  [[noreturn]] virtual void fail(std::string_view key, std::string_view problem) const = 0;

  std::string string_or(std::string_view key, std::string fallback) const {
    auto v = string(key);
    return v ? std::move(*v) : std::move(fallback);
  }
  std::int64_t integer_or(std::string_view key, std::int64_t fallback) const { return integer(key).value_or(fallback); }
  double number_or(std::string_view key, double fallback) const { return number(key).value_or(fallback); }
  bool boolean_or(std::string_view key, bool fallback) const { return boolean(key).value_or(fallback); }
  std::string require_string(std::string_view key) const {
    auto v = string(key);
    if (!v) fail(key, "is required");
    return std::move(*v);
  }
};

class SWITCHBOARD_API Clock {
 public:
  virtual ~Clock() = default;
  virtual TimeMs now_ms() const noexcept = 0;             // wall clock, for timestamps
  virtual std::int64_t monotonic_ns() const noexcept = 0;  // for durations
};

class SWITCHBOARD_API Counter {
 public:
  virtual ~Counter() = default;
  virtual void add(std::uint64_t n = 1) noexcept = 0;
};

class SWITCHBOARD_API Gauge {
 public:
  virtual ~Gauge() = default;
  virtual void set(std::int64_t value) noexcept = 0;
  virtual void add(std::int64_t delta) noexcept = 0;
};

class SWITCHBOARD_API Histogram {
 public:
  virtual ~Histogram() = default;
  virtual void observe(double value) noexcept = 0;  // seconds, for latencies
};

// Metrics appear on the host's /metrics in Prometheus text format, in the
// plugin's namespace: `commit_seconds` of storage-sqlite is
// `switchboard_storage_sqlite_commit_seconds` (a name already carrying the
// prefix is left alone). A name another plugin or the host holds is refused
// (the plugin fails to load, naming both). Asking twice for the same name
// returns the same metric.
// Returned references stay valid for the plugin's lifetime.
class SWITCHBOARD_API Metrics {
 public:
  virtual ~Metrics() = default;
  virtual Counter& counter(std::string_view name, std::string_view help) = 0;
  virtual Gauge& gauge(std::string_view name, std::string_view help) = 0;
  virtual Histogram& histogram(std::string_view name, std::string_view help) = 0;
};

}  // namespace switchboard
