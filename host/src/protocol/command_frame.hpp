// A WebSocket text frame decoded into a command: the JSON object, its `id`
// and `type` — or the error frame the client gets instead. Pure functions,
// shared by the dispatcher and the command decoder's fuzz target.
#pragma once

#include <boost/json/value.hpp>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "switchboard/result.hpp"
#include "switchboard/types.hpp"

namespace switchboard::host {

struct CommandFrame {
  boost::json::value frame;  // an object
  boost::json::value id;     // a string or a number
  std::string type;
  const boost::json::object& args() const { return frame.as_object(); }
};

// The command, or the error frame to send (bad_request, naming the problem).
std::variant<CommandFrame, std::string> decode_command(std::string_view text);

// A client's last position in one conversation, for `subscribe`.
struct Position {
  ConversationId conversation_id = 0;
  std::string epoch;
  Seq seq = 0;
};

// `positions` of a subscribe: at most `max` of them, each well formed.
Result<std::vector<Position>> decode_positions(const boost::json::object& args, std::size_t max = 10000);

}  // namespace switchboard::host
