#include "protocol/json_codec.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

namespace switchboard::host {

namespace json = boost::json;

json::object to_json(const Conversation& c) {
  json::object o;
  o["id"] = c.id;
  o["kind"] = to_string(c.kind);
  o["name"] = c.name;
  o["creator"] = c.creator;
  o["epoch"] = c.epoch;
  o["last_seq"] = c.last_seq;
  o["created_at"] = c.created_at;
  return o;
}

json::object to_json(const Member& m) {
  json::object o;
  o["user_id"] = m.user_id;
  o["role"] = to_string(m.role);
  o["joined_at"] = m.joined_at;
  return o;
}

json::object to_json(const Message& m) {
  json::object o;
  o["id"] = m.id;
  o["conversation_id"] = m.conversation_id;
  o["seq"] = m.seq;
  o["author"] = m.author;
  o["text"] = m.text;
  if (m.reply_to) o["reply_to"] = m.reply_to;
  std::error_code ec;
  json::value attachments = json::parse(m.attachments.empty() ? "[]" : m.attachments, ec);
  o["attachments"] = ec ? json::value(json::array()) : std::move(attachments);
  o["created_at"] = m.created_at;
  if (m.edited_at) o["edited_at"] = m.edited_at;
  if (m.deleted) o["deleted"] = true;
  return o;
}

json::object to_json(const Event& e) {
  json::object o;
  o["type"] = e.type;
  o["conversation_id"] = e.conversation_id;
  o["seq"] = e.seq;
  o["actor"] = e.actor;
  o["at"] = e.created_at;
  if (!e.payload.empty() && e.payload != "{}") {
    std::error_code ec;
    json::value payload = json::parse(e.payload, ec);
    if (!ec && payload.is_object()) {
      for (auto& [k, v] : payload.as_object()) {
        if (!o.contains(k)) o[k] = v;
      }
    }
  }
  if (e.message) {
    o["message"] = to_json(*e.message);
  } else if (e.message_id) {
    o["message_id"] = e.message_id;
  }
  return o;
}

std::string event_frame(const Event& e) { return json::serialize(to_json(e)); }

std::string ack_frame(const json::value& id, const json::value& result) {
  json::object o;
  o["type"] = "ack";
  o["id"] = id;
  o["result"] = result;
  return json::serialize(o);
}

std::string error_frame(const json::value& id, std::string_view code, std::string_view message) {
  json::object o;
  o["type"] = "error";
  o["id"] = id;
  o["code"] = code;
  o["message"] = message;
  return json::serialize(o);
}

std::string error_body(std::string_view code, std::string_view message) {
  json::object inner;
  inner["code"] = code;
  inner["message"] = message;
  json::object o;
  o["error"] = std::move(inner);
  return json::serialize(o);
}

std::string_view error_code(Errc code) { return to_string(code); }

}  // namespace switchboard::host
