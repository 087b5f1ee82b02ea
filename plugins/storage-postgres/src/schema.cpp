#include "schema.hpp"

#include <chrono>
#include <cstdio>
#include <pqxx/transaction>
#include <stdexcept>
#include <string>

namespace postgres_storage {

namespace {

// pg_advisory_xact_lock key: "SwBd" in ASCII.
constexpr const char* kLock = "SELECT pg_advisory_xact_lock(1467187812)";

// Text columns compared or ordered use COLLATE "C": byte order, as in every
// other storage plugin, whatever the database's locale.
constexpr const char* kMigrations[] = {
    // 1: conversations, members, messages, the event log (partitioned by
    // month of created_at), feature records.
    R"sql(
CREATE TABLE conversations (
  id         bigserial PRIMARY KEY,
  kind       text NOT NULL,
  name       text NOT NULL,
  creator    text NOT NULL,
  epoch      text NOT NULL,
  last_seq   bigint NOT NULL DEFAULT 0,
  direct_key text COLLATE "C" UNIQUE,
  created_at bigint NOT NULL
);
CREATE TABLE members (
  conversation_id bigint NOT NULL REFERENCES conversations(id),
  user_id         text COLLATE "C" NOT NULL,
  role            text NOT NULL,
  joined_at       bigint NOT NULL,
  PRIMARY KEY (conversation_id, user_id)
);
CREATE INDEX members_by_user ON members(user_id, conversation_id);
CREATE TABLE messages (
  id              bigserial PRIMARY KEY,
  conversation_id bigint NOT NULL REFERENCES conversations(id),
  seq             bigint NOT NULL,
  author          text COLLATE "C" NOT NULL,
  text            text NOT NULL,
  reply_to        bigint NOT NULL DEFAULT 0,
  attachments     text NOT NULL DEFAULT '[]',
  client_key      text COLLATE "C",
  created_at      bigint NOT NULL,
  edited_at       bigint NOT NULL DEFAULT 0,
  deleted         boolean NOT NULL DEFAULT false
);
CREATE UNIQUE INDEX messages_by_client_key ON messages(conversation_id, author, client_key)
  WHERE client_key IS NOT NULL;
CREATE TABLE events (
  conversation_id bigint NOT NULL,
  seq             bigint NOT NULL,
  type            text NOT NULL,
  actor           text COLLATE "C" NOT NULL,
  message_id      bigint NOT NULL DEFAULT 0,
  payload         text NOT NULL,
  created_at      bigint NOT NULL,
  PRIMARY KEY (conversation_id, seq, created_at)
) PARTITION BY RANGE (created_at);
CREATE TABLE events_default PARTITION OF events DEFAULT;
CREATE TABLE records (
  feature         text COLLATE "C" NOT NULL,
  conversation_id bigint NOT NULL,
  key             text COLLATE "C" NOT NULL,
  message_id      bigint NOT NULL DEFAULT 0,
  user_id         text COLLATE "C" NOT NULL DEFAULT '',
  number          bigint NOT NULL DEFAULT 0,
  value           text NOT NULL DEFAULT '',
  updated_at      bigint NOT NULL,
  PRIMARY KEY (feature, conversation_id, key)
);
CREATE INDEX records_by_message ON records(feature, conversation_id, message_id) WHERE message_id <> 0;
CREATE INDEX records_by_user ON records(feature, user_id) WHERE user_id <> '';
)sql",
};

static_assert(sizeof(kMigrations) / sizeof(kMigrations[0]) == kSchemaVersion);

std::int64_t month_start_ms(std::chrono::year_month ym) {
  using namespace std::chrono;
  sys_days day{ym / 1};
  return duration_cast<milliseconds>(day.time_since_epoch()).count();
}

}  // namespace

int migrate(pqxx::connection_base& connection) {
  pqxx::work tx(connection);
  tx.exec(kLock);
  tx.exec("CREATE TABLE IF NOT EXISTS switchboard_schema (version integer NOT NULL)");
  auto rows = tx.exec("SELECT version FROM switchboard_schema");
  int before = rows.empty() ? 0 : rows[0][0].as<int>();
  if (before > kSchemaVersion) {
    throw std::runtime_error("storage-postgres: the database has schema version " + std::to_string(before) +
                             ", newer than this plugin's " + std::to_string(kSchemaVersion) +
                             ": upgrade storage-postgres");
  }
  for (int v = before; v < kSchemaVersion; ++v) tx.exec(kMigrations[v]);
  if (rows.empty()) {
    tx.exec_params("INSERT INTO switchboard_schema (version) VALUES ($1)", kSchemaVersion);
  } else if (before != kSchemaVersion) {
    tx.exec_params("UPDATE switchboard_schema SET version = $1", kSchemaVersion);
  }
  tx.commit();
  return before;
}

int ensure_partitions(pqxx::connection_base& connection, switchboard::TimeMs now, int months_ahead) {
  using namespace std::chrono;
  year_month_day today{floor<days>(sys_time<milliseconds>(milliseconds(now)))};
  year_month first = today.year() / today.month();
  pqxx::work tx(connection);
  tx.exec(kLock);
  int created = 0;
  for (int i = 0; i <= months_ahead; ++i) {
    year_month ym = first + months(i);
    char name[32];
    std::snprintf(name, sizeof name, "events_y%04dm%02u", static_cast<int>(ym.year()),
                  static_cast<unsigned>(ym.month()));
    auto exists = tx.exec_params("SELECT to_regclass($1) IS NOT NULL", std::string(name));
    if (exists[0][0].as<bool>()) continue;
    tx.exec(std::string("CREATE TABLE ") + name + " PARTITION OF events FOR VALUES FROM (" +
            std::to_string(month_start_ms(ym)) + ") TO (" + std::to_string(month_start_ms(ym + months(1))) + ")");
    ++created;
  }
  tx.commit();
  return created;
}

}  // namespace postgres_storage
