#include "log/log_sink.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include "metrics/metrics_registry.hpp"

namespace switchboard::host {
namespace {

std::string capture(LogLevel level, LogFormat format, LogLevel at, std::string_view message,
                    std::initializer_list<LogField> fields) {
  int fds[2];
  EXPECT_EQ(pipe(fds), 0);
  {
    LogSink sink(level, format, fds[1]);
    sink.write("storage-sqlite", at, message, fields);
  }
  close(fds[1]);
  std::string out;
  char buf[1024];
  ssize_t n;
  while ((n = read(fds[0], buf, sizeof buf)) > 0) out.append(buf, static_cast<std::size_t>(n));
  close(fds[0]);
  return out;
}

TEST(LogSink, TextIsOneLineWithLevelComponentAndFields) {
  auto line = capture(LogLevel::info, LogFormat::text, LogLevel::warn, "disk\nslow", {{"path", "/a b"}, {"ms", "12"}});
  EXPECT_EQ(std::count(line.begin(), line.end(), '\n'), 1) << line;
  EXPECT_NE(line.find(" warn [storage-sqlite] disk slow path=\"/a b\" ms=12\n"), std::string::npos) << line;
}

TEST(LogSink, JsonIsOneObjectPerLine) {
  auto line = capture(LogLevel::info, LogFormat::json, LogLevel::error, "quote \" here", {{"k", "v\n"}});
  EXPECT_EQ(line.back(), '\n');
  EXPECT_EQ(std::count(line.begin(), line.end(), '\n'), 1) << line;
  EXPECT_NE(line.find(R"("level":"error","component":"storage-sqlite","msg":"quote \" here","k":"v\n"})"),
            std::string::npos)
      << line;
}

TEST(LogSink, DropsLinesBelowTheLevel) {
  EXPECT_EQ(capture(LogLevel::warn, LogFormat::text, LogLevel::info, "chatty", {}), "");
}

TEST(MetricsRegistry, RendersPrometheusText) {
  MetricsRegistry m;
  m.counter("frames_in_total", "Frames received").add(3);
  m.gauge("connections", "Open connections").set(7);
  auto& h = m.histogram("storage_seconds", "Storage latency");
  h.observe(0.0004);
  h.observe(0.2);
  EXPECT_EQ(&m.counter("frames_in_total", "again"), &m.counter("frames_in_total", "x")) << "same name, same metric";
  auto text = m.render();
  EXPECT_NE(text.find("# TYPE switchboard_frames_in_total counter\nswitchboard_frames_in_total 3\n"), std::string::npos);
  EXPECT_NE(text.find("switchboard_connections 7\n"), std::string::npos);
  EXPECT_NE(text.find("switchboard_storage_seconds_bucket{le=\"0.0005\"} 1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("switchboard_storage_seconds_bucket{le=\"+Inf\"} 2\n"), std::string::npos);
  EXPECT_NE(text.find("switchboard_storage_seconds_count 2\n"), std::string::npos);
  EXPECT_THROW(m.gauge("frames_in_total", "clash"), std::invalid_argument);
  EXPECT_THROW(m.counter("bad name", ""), std::invalid_argument);
}

}  // namespace
}  // namespace switchboard::host
