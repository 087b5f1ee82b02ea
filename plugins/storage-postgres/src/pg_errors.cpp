#include "pg_errors.hpp"

#include <pqxx/except>

namespace postgres_storage {

using switchboard::Errc;
using switchboard::Error;

namespace {

std::string first_line(const char* what) {
  std::string s(what);
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

// SQLSTATE classes 08 (connection), 57P01-57P03 (shutdown, cannot connect
// now), 53300 (too many connections): the server, not the request.
bool unavailable_state(const std::string& state) {
  return state.starts_with("08") || state == "57P01" || state == "57P02" || state == "57P03" || state == "53300";
}

}  // namespace

bool connection_lost(const std::exception& e) {
  if (dynamic_cast<const pqxx::broken_connection*>(&e) || dynamic_cast<const pqxx::in_doubt_error*>(&e)) return true;
  if (auto* s = dynamic_cast<const pqxx::sql_error*>(&e)) return unavailable_state(s->sqlstate());
  return false;
}

bool retry_batch(const std::exception& e) {
  return dynamic_cast<const pqxx::deadlock_detected*>(&e) || dynamic_cast<const pqxx::serialization_failure*>(&e);
}

Error to_error(const std::exception& e) {
  if (dynamic_cast<const pqxx::in_doubt_error*>(&e)) {
    return Error{Errc::unavailable,
                 "storage-postgres: the connection broke during COMMIT; the outcome is unknown (a message sent "
                 "again with the same client_key is not duplicated): " + first_line(e.what())};
  }
  if (connection_lost(e)) {
    return Error{Errc::unavailable, "storage-postgres: PostgreSQL unavailable, retry later: " + first_line(e.what())};
  }
  return Error{Errc::internal, "storage-postgres: " + first_line(e.what())};
}

}  // namespace postgres_storage
