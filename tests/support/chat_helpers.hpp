// Small conveniences for end-to-end tests of the chat protocol.
#pragma once

#include <boost/json.hpp>
#include <string>
#include <vector>

#include "support/ws_client.hpp"

namespace switchboard::testing {

// Creates a conversation of `kind` with `members` (besides the creator); its object.
inline boost::json::object conversation_of(WsClient& c, const std::string& kind, std::vector<std::string> members,
                                           const std::string& name = "team") {
  boost::json::array m;
  for (auto& u : members) m.emplace_back(u);
  auto r = c.command({{"type", "conversation.create"}, {"kind", kind}, {"name", name}, {"members", m}});
  if (r["type"] != "ack") return {};
  return r["result"].as_object()["conversation"].as_object();
}

inline std::int64_t id_of(const boost::json::object& o) { return o.at("id").as_int64(); }

// A group with the creator as owner; its id.
inline std::int64_t group(WsClient& owner, std::vector<std::string> members) {
  return id_of(conversation_of(owner, "group", std::move(members), "g"));
}

// message.send; the ack or error.
inline boost::json::object send(WsClient& c, std::int64_t conversation, const std::string& text,
                                const std::string& key = "") {
  boost::json::object cmd{{"type", "message.send"}, {"conversation_id", conversation}, {"text", text}};
  if (!key.empty()) cmd["client_key"] = key;
  return c.command(cmd);
}

// message.send; the message object (empty if refused).
inline boost::json::object message(WsClient& c, std::int64_t conversation, const std::string& text) {
  auto r = send(c, conversation, text);
  if (r["type"] != "ack") return {};
  return r["result"].as_object()["message"].as_object();
}

inline std::string type_of(const boost::json::object& frame) { return std::string(frame.at("type").as_string()); }

}  // namespace switchboard::testing
