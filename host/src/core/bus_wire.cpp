#include "core/bus_wire.hpp"

namespace switchboard::host::wire {

void put(std::string& out, std::string_view field) {
  out += std::to_string(field.size());
  out += ':';
  out += field;
}

void put(std::string& out, std::int64_t number) { put(out, std::to_string(number)); }

bool take(std::string_view& in, std::string_view& field) {
  auto colon = in.find(':');
  if (colon == std::string_view::npos || colon == 0 || colon > 10) return false;
  std::size_t n = 0;
  for (char c : in.substr(0, colon)) {
    if (c < '0' || c > '9') return false;
    n = n * 10 + static_cast<std::size_t>(c - '0');
  }
  if (in.size() - colon - 1 < n) return false;
  field = in.substr(colon + 1, n);
  in.remove_prefix(colon + 1 + n);
  return true;
}

bool take_number(std::string_view& in, std::int64_t& out) {
  std::string_view field;
  if (!take(in, field) || field.empty() || field.size() > 18) return false;
  out = 0;
  for (char c : field) {
    if (c < '0' || c > '9') return false;
    out = out * 10 + (c - '0');
  }
  return true;
}

void put_users(std::string& out, const std::vector<UserId>& users) {
  put(out, static_cast<std::int64_t>(users.size()));
  for (const auto& u : users) put(out, u);
}

bool take_users(std::string_view& in, std::vector<UserId>& users) {
  std::int64_t n;
  if (!take_number(in, n) || n > 100000) return false;
  for (std::int64_t i = 0; i < n; ++i) {
    std::string_view u;
    if (!take(in, u)) return false;
    users.emplace_back(u);
  }
  return true;
}

std::string encode_event(const EventMessage& m) {
  std::string payload = "SB1";
  payload.reserve(64 + m.json.size());
  put(payload, m.origin);
  put(payload, m.conversation_id);
  put(payload, m.seq);
  put(payload, m.except);
  put(payload, m.only);
  put_users(payload, m.join);
  put_users(payload, m.leave);
  put(payload, m.json);
  return payload;
}

bool decode_event(std::string_view payload, EventMessage& out) {
  if (!payload.starts_with("SB1")) return false;
  payload.remove_prefix(3);
  out.join.clear();
  out.leave.clear();
  return take(payload, out.origin) && take_number(payload, out.conversation_id) && take_number(payload, out.seq) &&
         take(payload, out.except) && take(payload, out.only) && take_users(payload, out.join) &&
         take_users(payload, out.leave) && take(payload, out.json) && payload.empty();
}

}  // namespace switchboard::host::wire
