// The schema, versioned in code: migration N brings a database from
// user_version N-1 to N. Applied at start in one IMMEDIATE transaction, so
// several processes opening the same file migrate it exactly once.
#pragma once

#include "database.hpp"

namespace sqlite_storage {

inline constexpr int kSchemaVersion = 1;

// Returns the version the database had before.
int migrate(Database& db);

}  // namespace sqlite_storage
