#include "log/log_sink.hpp"

#include <cerrno>

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <ctime>

namespace switchboard::host {

namespace {

std::string_view level_name(LogLevel level) {
  switch (level) {
    case LogLevel::trace: return "trace";
    case LogLevel::debug: return "debug";
    case LogLevel::info: return "info";
    case LogLevel::warn: return "warn";
    case LogLevel::error: return "error";
  }
  return "info";
}

void append_timestamp(std::string& out) {
  auto now = std::chrono::system_clock::now();
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
  std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms % 1000));
  out += buf;
}

void append_json_string(std::string& out, std::string_view s) {
  out += '"';
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  out += '"';
}

// Text values are quoted only when they would otherwise be ambiguous.
void append_text_value(std::string& out, std::string_view s) {
  bool plain = !s.empty();
  for (unsigned char c : s) {
    if (c <= ' ' || c == '"' || c == '=') plain = false;
  }
  if (plain) {
    out += s;
  } else {
    append_json_string(out, s);
  }
}

}  // namespace

LogSink::LogSink(LogLevel level, LogFormat format, int fd, std::size_t queue_bytes)
    : level_(level), format_(format), fd_(fd), queue_bytes_(queue_bytes), writer_([this] { run(); }) {}

LogSink::~LogSink() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_one();
  writer_.join();
}

namespace {

void write_all(int fd, const std::string& data) {
  const char* p = data.data();
  std::size_t left = data.size();
  while (left > 0) {
    ssize_t n = ::write(fd, p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    p += n;
    left -= static_cast<std::size_t>(n);
  }
}

}  // namespace

void LogSink::run() {
  std::string batch;
  std::unique_lock lock(mutex_);
  for (;;) {
    wake_.wait(lock, [this] { return stopping_ || !queued_.empty() || dropped_ > 0; });
    if (queued_.empty() && dropped_ == 0 && stopping_) return;
    batch.swap(queued_);
    std::uint64_t dropped = std::exchange(dropped_, 0);
    lock.unlock();
    if (dropped > 0) {
      batch += "log: " + std::to_string(dropped) + " lines dropped: the log output could not keep up\n";
    }
    write_all(fd_, batch);
    batch.clear();
    if (batch.capacity() > (1u << 20)) std::string().swap(batch);
    lock.lock();
  }
}

void LogSink::write(std::string_view component, LogLevel level, std::string_view message,
                    std::initializer_list<LogField> fields) noexcept {
  if (!enabled(level)) return;
  try {
    std::string line;
    line.reserve(128 + message.size());
    if (format_ == LogFormat::json) {
      line += "{\"ts\":\"";
      append_timestamp(line);
      line += "\",\"level\":\"";
      line += level_name(level);
      line += "\",\"component\":";
      append_json_string(line, component);
      line += ",\"msg\":";
      append_json_string(line, message);
      for (const auto& f : fields) {
        line += ',';
        append_json_string(line, f.key);
        line += ':';
        append_json_string(line, f.value);
      }
      line += "}\n";
    } else {
      append_timestamp(line);
      line += ' ';
      line += level_name(level);
      line += " [";
      line += component;
      line += "] ";
      for (char c : message) line += (c == '\n' ? ' ' : c);
      for (const auto& f : fields) {
        line += ' ';
        line += f.key;
        line += '=';
        append_text_value(line, f.value);
      }
      line += '\n';
    }
    {
      std::lock_guard lock(mutex_);
      if (queued_.size() + line.size() > queue_bytes_) {
        ++dropped_;
        return;
      }
      queued_ += line;
    }
    wake_.notify_one();
  } catch (...) {
    // Logging must never take the process down.
  }
}

}  // namespace switchboard::host
