// Where every log line goes: one line per event on stderr, as text or JSON,
// written with a single write() so lines from many threads never interleave.
#pragma once

#include <memory>
#include <string>

#include "config/host_config.hpp"
#include "switchboard/services.hpp"

namespace switchboard::host {

class LogSink {
 public:
  LogSink(LogLevel level, LogFormat format, int fd = 2);
  bool enabled(LogLevel level) const noexcept { return level >= level_; }
  void write(std::string_view component, LogLevel level, std::string_view message,
             std::initializer_list<LogField> fields) noexcept;

 private:
  LogLevel level_;
  LogFormat format_;
  int fd_;
};

// A Logger that names its component (the host, or a plugin) on every line.
class ComponentLogger final : public Logger {
 public:
  ComponentLogger(std::shared_ptr<LogSink> sink, std::string component)
      : sink_(std::move(sink)), component_(std::move(component)) {}
  bool enabled(LogLevel level) const noexcept override { return sink_->enabled(level); }
  void write(LogLevel level, std::string_view message, std::initializer_list<LogField> fields) noexcept override {
    sink_->write(component_, level, message, fields);
  }

 private:
  std::shared_ptr<LogSink> sink_;
  std::string component_;
};

}  // namespace switchboard::host
