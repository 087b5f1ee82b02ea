#include "sqlite_log.hpp"

#include <chrono>
#include <filesystem>
#include <stdexcept>

namespace sql_bus {

namespace {

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Resets a prepared statement however the caller leaves.
struct Reset {
  sqlite3_stmt* statement;
  ~Reset() { sqlite3_reset(statement); }
};

}  // namespace

SqliteLog::SqliteLog(const std::string& path, const std::string& table) : table_(table) {
  std::filesystem::path file(path);
  if (file.has_parent_path()) std::filesystem::create_directories(file.parent_path());
  try {
    writer_ = open(path);
    exec(writer_, "PRAGMA journal_mode = WAL");
    exec(writer_, "CREATE TABLE IF NOT EXISTS " + table_ +
                      " (id INTEGER PRIMARY KEY AUTOINCREMENT, subject TEXT NOT NULL, payload BLOB NOT NULL,"
                      " created_at INTEGER NOT NULL)");
    reader_ = open(path);
    insert_ = prepare(writer_, "INSERT INTO " + table_ + " (subject, payload, created_at) VALUES (?1, ?2, ?3)");
    select_ = prepare(reader_, "SELECT id, subject, payload FROM " + table_ + " WHERE id > ?1 ORDER BY id LIMIT ?2");
    delete_ = prepare(reader_, "DELETE FROM " + table_ + " WHERE created_at < ?1");
    // Start after everything already written: a host joins the bus now.
    sqlite3_stmt* last = prepare(reader_, "SELECT coalesce(max(id), 0) FROM " + table_);
    bool found = sqlite3_step(last) == SQLITE_ROW;
    if (found) cursor_ = sqlite3_column_int64(last, 0);
    sqlite3_finalize(last);
    if (!found) fail(reader_, "read position");
  } catch (...) {
    close();
    throw;
  }
}

SqliteLog::~SqliteLog() { close(); }

void SqliteLog::close() {
  sqlite3_finalize(insert_);
  sqlite3_finalize(select_);
  sqlite3_finalize(delete_);
  sqlite3_close(writer_);
  sqlite3_close(reader_);
  insert_ = select_ = delete_ = nullptr;
  writer_ = reader_ = nullptr;
}

sqlite3* SqliteLog::open(const std::string& path) {
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr) !=
      SQLITE_OK) {
    std::string why = db ? sqlite3_errmsg(db) : "out of memory";
    sqlite3_close(db);
    throw std::runtime_error("cannot open " + path + ": " + why);
  }
  sqlite3_busy_timeout(db, 5000);  // other host processes write the same file
  return db;
}

sqlite3_stmt* SqliteLog::prepare(sqlite3* db, const std::string& sql) {
  sqlite3_stmt* statement = nullptr;
  if (sqlite3_prepare_v2(db, sql.c_str(), -1, &statement, nullptr) != SQLITE_OK) fail(db, "prepare " + sql);
  return statement;
}

void SqliteLog::exec(sqlite3* db, const std::string& sql) {
  char* error = nullptr;
  if (sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &error) != SQLITE_OK) {
    std::string why = error ? error : sqlite3_errmsg(db);
    sqlite3_free(error);
    throw std::runtime_error("sqlite: " + why);
  }
}

void SqliteLog::fail(sqlite3* db, const std::string& what) {
  throw std::runtime_error("sqlite: " + what + ": " + sqlite3_errmsg(db));
}

void SqliteLog::append(const std::vector<BusRow>& rows) {
  exec(writer_, "BEGIN IMMEDIATE");
  try {
    std::int64_t now = now_ms();
    for (const auto& row : rows) {
      Reset reset{insert_};
      sqlite3_bind_text(insert_, 1, row.subject.data(), static_cast<int>(row.subject.size()), SQLITE_STATIC);
      sqlite3_bind_blob(insert_, 2, row.payload.data(), static_cast<int>(row.payload.size()), SQLITE_STATIC);
      sqlite3_bind_int64(insert_, 3, now);
      if (sqlite3_step(insert_) != SQLITE_DONE) fail(writer_, "insert");
    }
    exec(writer_, "COMMIT");
  } catch (...) {
    if (!sqlite3_get_autocommit(writer_)) sqlite3_exec(writer_, "ROLLBACK", nullptr, nullptr, nullptr);
    throw;
  }
}

std::vector<BusRow> SqliteLog::poll(std::size_t limit) {
  Reset reset{select_};
  sqlite3_bind_int64(select_, 1, cursor_);
  sqlite3_bind_int64(select_, 2, static_cast<std::int64_t>(limit));
  std::vector<BusRow> out;
  std::int64_t position = cursor_;  // moves only if the whole page was read
  int rc;
  while ((rc = sqlite3_step(select_)) == SQLITE_ROW) {
    position = sqlite3_column_int64(select_, 0);
    const auto* subject = reinterpret_cast<const char*>(sqlite3_column_text(select_, 1));
    std::string s(subject ? subject : "", static_cast<std::size_t>(sqlite3_column_bytes(select_, 1)));
    const auto* payload = static_cast<const char*>(sqlite3_column_blob(select_, 2));
    out.push_back(BusRow{std::move(s), std::string(payload ? payload : "",
                                                   static_cast<std::size_t>(sqlite3_column_bytes(select_, 2)))});
  }
  if (rc != SQLITE_DONE) fail(reader_, "poll");
  cursor_ = position;
  return out;
}

std::size_t SqliteLog::prune(std::chrono::milliseconds retention) {
  Reset reset{delete_};
  sqlite3_bind_int64(delete_, 1, now_ms() - retention.count());
  if (sqlite3_step(delete_) != SQLITE_DONE) fail(reader_, "prune");
  return static_cast<std::size_t>(sqlite3_changes(reader_));
}

}  // namespace sql_bus
