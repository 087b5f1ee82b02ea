// Where every log line goes: one line per event on stderr, as text or JSON.
// A line is formatted on the caller's thread and queued; one thread of the
// sink writes the queue out, so no hot thread ever blocks on write(2) (a
// full pipe, a slow terminal). The queue is bounded in bytes: past it lines
// are dropped, and the sink says how many once it can write again.
#pragma once

#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>
#include <string>

#include "config/host_config.hpp"
#include "switchboard/services.hpp"

namespace switchboard::host {

class LogSink {
 public:
  LogSink(LogLevel level, LogFormat format, int fd = 2, std::size_t queue_bytes = 4 << 20);
  ~LogSink();  // writes out what is queued
  LogSink(const LogSink&) = delete;
  LogSink& operator=(const LogSink&) = delete;
  bool enabled(LogLevel level) const noexcept { return level >= level_; }
  void write(std::string_view component, LogLevel level, std::string_view message,
             std::initializer_list<LogField> fields) noexcept;

 private:
  void run();

  LogLevel level_;
  LogFormat format_;
  int fd_;
  std::size_t queue_bytes_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::string queued_;   // lines waiting, in order
  std::uint64_t dropped_ = 0;
  bool stopping_ = false;
  std::thread writer_;
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
