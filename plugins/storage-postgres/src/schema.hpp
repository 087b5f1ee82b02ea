// The schema of storage-postgres: versioned migrations and the monthly
// partitions of the event log. Both run under a transaction-scoped advisory
// lock, so several hosts starting at once apply each step exactly once, and
// they keep no session state, so they work through PgBouncer in transaction
// pooling mode.
#pragma once

#include <pqxx/connection>

#include "switchboard/types.hpp"

namespace postgres_storage {

constexpr int kSchemaVersion = 1;

// Applies the missing migrations; returns the version found before. Throws
// if the database is newer than this plugin.
int migrate(pqxx::connection_base& connection);

// Creates the event log's partitions for the month of `now` and the
// `months_ahead` months after it, if absent. Returns how many it created.
int ensure_partitions(pqxx::connection_base& connection, switchboard::TimeMs now, int months_ahead);

}  // namespace postgres_storage
