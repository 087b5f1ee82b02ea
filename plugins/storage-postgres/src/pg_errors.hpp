// How PostgreSQL failures reach callers: a lost or refused connection, a
// server shutting down or an unknown commit outcome is `unavailable` (retry
// later; a message send with a client_key is safe to repeat); anything else
// is `internal`. Shared by storage-postgres's threads.
#pragma once

#include <exception>
#include <string>

#include "switchboard/result.hpp"

namespace postgres_storage {

// True for errors after which the connection must be dropped and reopened.
bool connection_lost(const std::exception& e);
// True for a deadlock or serialization failure: run the whole batch again.
bool retry_batch(const std::exception& e);
switchboard::Error to_error(const std::exception& e);

}  // namespace postgres_storage
