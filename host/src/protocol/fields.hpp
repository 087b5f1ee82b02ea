// Reading command arguments with errors that name the field.
#pragma once

#include <boost/json/object.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "switchboard/result.hpp"

namespace switchboard::host {

inline Error field_error(std::string_view field, std::string_view problem) {
  return Error{Errc::bad_request, std::string(field) + ": " + std::string(problem)};
}

// An integer (JSON number without fraction, or a string of digits, as REST
// path parameters arrive).
inline Result<std::optional<std::int64_t>> optional_int(const boost::json::object& o, std::string_view key) {
  const auto* v = o.if_contains(key);
  if (!v || v->is_null()) return std::optional<std::int64_t>{};
  if (v->is_int64()) return std::optional<std::int64_t>{v->as_int64()};
  if (v->is_uint64() && v->as_uint64() <= static_cast<std::uint64_t>(INT64_MAX)) {
    return std::optional<std::int64_t>{static_cast<std::int64_t>(v->as_uint64())};
  }
  if (v->is_string()) {
    std::string_view s = v->as_string();
    std::int64_t out = 0;
    // At most 18 digits: the value always fits (found by the command decoder's fuzzer:
    // a longer string overflowed while it was being refused).
    bool ok = !s.empty() && s.size() < 19;
    for (char c : s) {
      if (!ok) break;
      if (c < '0' || c > '9') ok = false;
      else out = out * 10 + (c - '0');
    }
    if (ok) return std::optional<std::int64_t>{out};
  }
  return field_error(key, "expected an integer");
}

inline Result<std::int64_t> required_int(const boost::json::object& o, std::string_view key) {
  auto v = optional_int(o, key);
  if (!v) return v.error();
  if (!*v) return field_error(key, "is required");
  return **v;
}

inline Result<std::optional<std::string>> optional_string(const boost::json::object& o, std::string_view key) {
  const auto* v = o.if_contains(key);
  if (!v || v->is_null()) return std::optional<std::string>{};
  if (!v->is_string()) return field_error(key, "expected a string");
  return std::optional<std::string>{std::string(v->as_string())};
}

inline Result<std::string> required_string(const boost::json::object& o, std::string_view key) {
  auto v = optional_string(o, key);
  if (!v) return v.error();
  if (!*v) return field_error(key, "is required");
  return std::move(**v);
}

}  // namespace switchboard::host
