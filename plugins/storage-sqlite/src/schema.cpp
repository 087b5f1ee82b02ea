#include "schema.hpp"

#include <string>

namespace sqlite_storage {

namespace {

constexpr const char* kMigrations[] = {
    // 1: conversations, members, messages, the event log, feature records.
    R"sql(
CREATE TABLE conversations (
  id         INTEGER PRIMARY KEY,
  kind       TEXT NOT NULL,
  name       TEXT NOT NULL,
  creator    TEXT NOT NULL,
  epoch      TEXT NOT NULL,
  last_seq   INTEGER NOT NULL DEFAULT 0,
  direct_key TEXT UNIQUE,
  created_at INTEGER NOT NULL
);
CREATE TABLE members (
  conversation_id INTEGER NOT NULL REFERENCES conversations(id),
  user_id         TEXT NOT NULL,
  role            TEXT NOT NULL,
  joined_at       INTEGER NOT NULL,
  PRIMARY KEY (conversation_id, user_id)
) WITHOUT ROWID;
CREATE INDEX members_by_user ON members(user_id, conversation_id);
CREATE TABLE messages (
  id              INTEGER PRIMARY KEY,
  conversation_id INTEGER NOT NULL REFERENCES conversations(id),
  seq             INTEGER NOT NULL,
  author          TEXT NOT NULL,
  text            TEXT NOT NULL,
  reply_to        INTEGER NOT NULL DEFAULT 0,
  attachments     TEXT NOT NULL DEFAULT '[]',
  client_key      TEXT,
  created_at      INTEGER NOT NULL,
  edited_at       INTEGER NOT NULL DEFAULT 0,
  deleted         INTEGER NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX messages_by_client_key ON messages(conversation_id, author, client_key)
  WHERE client_key IS NOT NULL;
CREATE TABLE events (
  conversation_id INTEGER NOT NULL,
  seq             INTEGER NOT NULL,
  type            TEXT NOT NULL,
  actor           TEXT NOT NULL,
  message_id      INTEGER NOT NULL DEFAULT 0,
  payload         TEXT NOT NULL,
  created_at      INTEGER NOT NULL,
  PRIMARY KEY (conversation_id, seq)
) WITHOUT ROWID;
CREATE TABLE records (
  feature         TEXT NOT NULL,
  conversation_id INTEGER NOT NULL,
  key             TEXT NOT NULL,
  message_id      INTEGER NOT NULL DEFAULT 0,
  user_id         TEXT NOT NULL DEFAULT '',
  number          INTEGER NOT NULL DEFAULT 0,
  value           TEXT NOT NULL DEFAULT '',
  updated_at      INTEGER NOT NULL,
  PRIMARY KEY (feature, conversation_id, key)
) WITHOUT ROWID;
CREATE INDEX records_by_message ON records(feature, conversation_id, message_id) WHERE message_id != 0;
CREATE INDEX records_by_user ON records(feature, user_id) WHERE user_id != '';
)sql",
};

static_assert(sizeof(kMigrations) / sizeof(kMigrations[0]) == kSchemaVersion);

int user_version(Database& db) {
  Statement& st = db.prepare("PRAGMA user_version");
  st.step();
  int v = static_cast<int>(st.integer(0));
  st.reset();
  return v;
}

}  // namespace

int migrate(Database& db) {
  db.exec("BEGIN IMMEDIATE");
  try {
    int before = user_version(db);
    if (before > kSchemaVersion) {
      throw SqliteError(SQLITE_ERROR, "sqlite: the database has schema version " + std::to_string(before) +
                                          ", newer than this plugin's " + std::to_string(kSchemaVersion) +
                                          ": upgrade storage-sqlite");
    }
    for (int v = before; v < kSchemaVersion; ++v) {
      db.exec(kMigrations[v]);
    }
    db.exec(("PRAGMA user_version = " + std::to_string(kSchemaVersion)).c_str());
    db.exec("COMMIT");
    return before;
  } catch (...) {
    db.exec("ROLLBACK");
    throw;
  }
}

}  // namespace sqlite_storage
