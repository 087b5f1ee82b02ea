// How conversations, members, messages and events look on the wire — the
// same objects for WebSocket frames, history pages and REST bodies.
#pragma once

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>
#include <string>
#include <string_view>

#include "switchboard/result.hpp"
#include "switchboard/types.hpp"

namespace switchboard::host {

boost::json::object to_json(const Conversation& c);
boost::json::object to_json(const Member& m);
boost::json::object to_json(const Message& m);
// An event as clients see it: type, conversation_id, seq, actor, at, the
// payload's fields and, for message events, the message's current state.
boost::json::object to_json(const Event& e);

std::string event_frame(const Event& e);
std::string ack_frame(const boost::json::value& id, const boost::json::value& result);
std::string error_frame(const boost::json::value& id, std::string_view code, std::string_view message);
std::string error_body(std::string_view code, std::string_view message);

// The stable protocol code of an Errc ("not_found", ...); its HTTP status is
// switchboard::http_status (SDK), shared with features.
std::string_view error_code(Errc code);

}  // namespace switchboard::host
