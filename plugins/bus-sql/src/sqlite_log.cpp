#include "sqlite_log.hpp"

#include <chrono>
#include <filesystem>
#include <memory>
#include <stdexcept>

namespace sql_bus {

namespace {

struct Finalize {
  void operator()(sqlite3_stmt* s) const { sqlite3_finalize(s); }
};
using Statement = std::unique_ptr<sqlite3_stmt, Finalize>;

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

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
    Statement st;
    sqlite3_stmt* raw = nullptr;
    if (sqlite3_prepare_v2(reader_, ("SELECT coalesce(max(id), 0) FROM " + table_).c_str(), -1, &raw, nullptr) !=
        SQLITE_OK) {
      fail(reader_, "read position");
    }
    st.reset(raw);
    if (sqlite3_step(raw) != SQLITE_ROW) fail(reader_, "read position");
    cursor_ = sqlite3_column_int64(raw, 0);
  } catch (...) {
    sqlite3_close(writer_);
    sqlite3_close(reader_);
    throw;
  }
}

SqliteLog::~SqliteLog() {
  sqlite3_close(writer_);
  sqlite3_close(reader_);
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
    sqlite3_stmt* raw = nullptr;
    if (sqlite3_prepare_v2(writer_, ("INSERT INTO " + table_ + " (subject, payload, created_at) VALUES (?1, ?2, ?3)").c_str(),
                           -1, &raw, nullptr) != SQLITE_OK) {
      fail(writer_, "prepare insert");
    }
    Statement st(raw);
    std::int64_t now = now_ms();
    for (const auto& row : rows) {
      sqlite3_reset(raw);
      sqlite3_bind_text(raw, 1, row.subject.data(), static_cast<int>(row.subject.size()), SQLITE_STATIC);
      sqlite3_bind_blob(raw, 2, row.payload.data(), static_cast<int>(row.payload.size()), SQLITE_STATIC);
      sqlite3_bind_int64(raw, 3, now);
      if (sqlite3_step(raw) != SQLITE_DONE) fail(writer_, "insert");
    }
    st.reset();
    exec(writer_, "COMMIT");
  } catch (...) {
    if (!sqlite3_get_autocommit(writer_)) sqlite3_exec(writer_, "ROLLBACK", nullptr, nullptr, nullptr);
    throw;
  }
}

std::vector<BusRow> SqliteLog::poll(std::size_t limit) {
  sqlite3_stmt* raw = nullptr;
  if (sqlite3_prepare_v2(reader_, ("SELECT id, subject, payload FROM " + table_ + " WHERE id > ?1 ORDER BY id LIMIT ?2").c_str(),
                         -1, &raw, nullptr) != SQLITE_OK) {
    fail(reader_, "prepare poll");
  }
  Statement st(raw);
  sqlite3_bind_int64(raw, 1, cursor_);
  sqlite3_bind_int64(raw, 2, static_cast<std::int64_t>(limit));
  std::vector<BusRow> out;
  int rc;
  while ((rc = sqlite3_step(raw)) == SQLITE_ROW) {
    cursor_ = sqlite3_column_int64(raw, 0);
    const auto* subject = reinterpret_cast<const char*>(sqlite3_column_text(raw, 1));
    std::string s(subject ? subject : "", static_cast<std::size_t>(sqlite3_column_bytes(raw, 1)));
    const auto* payload = static_cast<const char*>(sqlite3_column_blob(raw, 2));
    out.push_back(BusRow{std::move(s), std::string(payload ? payload : "", static_cast<std::size_t>(sqlite3_column_bytes(raw, 2)))});
  }
  if (rc != SQLITE_DONE) fail(reader_, "poll");
  return out;
}

std::size_t SqliteLog::prune(std::chrono::milliseconds retention) {
  sqlite3_stmt* raw = nullptr;
  if (sqlite3_prepare_v2(reader_, ("DELETE FROM " + table_ + " WHERE created_at < ?1").c_str(), -1, &raw, nullptr) !=
      SQLITE_OK) {
    fail(reader_, "prepare prune");
  }
  Statement st(raw);
  sqlite3_bind_int64(raw, 1, now_ms() - retention.count());
  if (sqlite3_step(raw) != SQLITE_DONE) fail(reader_, "prune");
  return static_cast<std::size_t>(sqlite3_changes(reader_));
}

}  // namespace sql_bus
