// bus-sql on a SQLite file shared by the host processes of one machine: a
// cluster without any server. SQLite lets one writer at a time commit, so
// ids are committed in order and the read position is simply the last id.
#pragma once

#include <sqlite3.h>

#include <string>

#include "message_log.hpp"

namespace sql_bus {

class SqliteLog final : public MessageLog {
 public:
  SqliteLog(const std::string& path, const std::string& table);
  ~SqliteLog() override;
  void append(const std::vector<BusRow>& rows) override;
  std::vector<BusRow> poll(std::size_t limit) override;
  std::size_t prune(std::chrono::milliseconds retention) override;

 private:
  sqlite3* open(const std::string& path);
  void close();
  sqlite3_stmt* prepare(sqlite3* db, const std::string& sql);
  void exec(sqlite3* db, const std::string& sql);
  [[noreturn]] void fail(sqlite3* db, const std::string& what);

  std::string table_;
  sqlite3* writer_ = nullptr;  // append (the publisher's thread)
  sqlite3* reader_ = nullptr;  // poll and prune (the poller's thread)
  sqlite3_stmt* insert_ = nullptr;
  sqlite3_stmt* select_ = nullptr;
  sqlite3_stmt* delete_ = nullptr;
  std::int64_t cursor_ = 0;
};

}  // namespace sql_bus
