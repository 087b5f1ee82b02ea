// Results on the message path: an error code and a human message, never an
// exception. Stable codes are what clients and plugins branch on.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace switchboard {

enum class Errc : int {
  ok = 0,
  bad_request,    // the input is malformed or violates a rule
  not_found,      // the conversation, message, member or record does not exist
  forbidden,      // the caller may not do this
  conflict,       // the state does not allow it (e.g. editing a deleted message)
  too_large,      // a size limit was exceeded
  limit_reached,  // a count limit was exceeded
  unavailable,    // a backend is down or overloaded: retrying later may succeed
  internal,       // a bug or an unexpected backend answer
};

constexpr std::string_view to_string(Errc code) noexcept {
  switch (code) {
    case Errc::ok: return "ok";
    case Errc::bad_request: return "bad_request";
    case Errc::not_found: return "not_found";
    case Errc::forbidden: return "forbidden";
    case Errc::conflict: return "conflict";
    case Errc::too_large: return "too_large";
    case Errc::limit_reached: return "limit_reached";
    case Errc::unavailable: return "unavailable";
    case Errc::internal: return "internal";
  }
  return "internal";
}

struct Error {
  Errc code = Errc::internal;
  std::string message;
};

// Either a value or an Error. Deliberately small: C++20 has no std::expected.
template <class T>
class Result {
 public:
  Result(T value) : state_(std::in_place_index<0>, std::move(value)) {}
  Result(Error error) : state_(std::in_place_index<1>, std::move(error)) {}

  bool ok() const noexcept { return state_.index() == 0; }
  explicit operator bool() const noexcept { return ok(); }

  T& value() & { return std::get<0>(state_); }
  const T& value() const& { return std::get<0>(state_); }
  T&& value() && { return std::get<0>(std::move(state_)); }
  T& operator*() & { return std::get<0>(state_); }
  const T& operator*() const& { return std::get<0>(state_); }
  T* operator->() { return &std::get<0>(state_); }
  const T* operator->() const { return &std::get<0>(state_); }

  const Error& error() const& { return std::get<1>(state_); }
  Errc code() const noexcept { return ok() ? Errc::ok : std::get<1>(state_).code; }

 private:
  std::variant<T, Error> state_;
};

template <>
class Result<void> {
 public:
  Result() = default;
  Result(Error error) : error_(std::move(error)), failed_(true) {}

  bool ok() const noexcept { return !failed_; }
  explicit operator bool() const noexcept { return ok(); }
  const Error& error() const& { return error_; }
  Errc code() const noexcept { return failed_ ? error_.code : Errc::ok; }

 private:
  Error error_{Errc::ok, {}};
  bool failed_ = false;
};

using Status = Result<void>;

inline Error make_error(Errc code, std::string message) { return Error{code, std::move(message)}; }

// The HTTP status for an error code, the same for the host and every feature.
constexpr int http_status(Errc code) noexcept {
  switch (code) {
    case Errc::ok: return 200;
    case Errc::bad_request: return 400;
    case Errc::not_found: return 404;
    case Errc::forbidden: return 403;
    case Errc::conflict: return 409;
    case Errc::too_large: return 413;
    case Errc::limit_reached: return 409;
    case Errc::unavailable: return 503;
    case Errc::internal: return 500;
  }
  return 500;
}

// {"error":{"code":"…","message":"…"}}, the body of every failed REST call.
inline std::string error_json(const Error& error) {
  std::string out = "{\"error\":{\"code\":\"";
  out += to_string(error.code);
  out += "\",\"message\":\"";
  for (char c : error.message) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          out += ' ';
        } else {
          out += c;
        }
    }
  }
  out += "\"}}";
  return out;
}

}  // namespace switchboard
