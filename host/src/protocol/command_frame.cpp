#include "protocol/command_frame.hpp"

#include <boost/json/parse.hpp>
#include <cmath>

#include "protocol/fields.hpp"
#include "protocol/json_codec.hpp"

namespace switchboard::host {

namespace json = boost::json;

std::variant<CommandFrame, std::string> decode_command(std::string_view text) {
  json::value null_id = nullptr;
  std::error_code ec;
  // Boost.JSON's default depth limit (32) refuses deeply nested input.
  json::value frame = json::parse(text, ec);
  if (ec) return error_frame(null_id, "bad_request", "malformed JSON: " + ec.message());
  if (!frame.is_object()) return error_frame(null_id, "bad_request", "a command is a JSON object");
  const json::object& command = frame.as_object();
  const json::value* id = command.if_contains("id");
  // A number too large for a double parses as infinity, which JSON cannot
  // carry back in the answer (found by the command decoder's fuzzer).
  bool finite = id && (!id->is_double() || std::isfinite(id->as_double()));
  if (!id || !(id->is_string() || id->is_number()) || !finite) {
    return error_frame(null_id, "bad_request", "id: is required (a string or a number)");
  }
  json::value cid = *id;
  const json::value* type = command.if_contains("type");
  if (!type || !type->is_string()) return error_frame(cid, "bad_request", "type: is required (a string)");
  std::string kind(type->as_string());
  return CommandFrame{std::move(frame), std::move(cid), std::move(kind)};
}

Result<std::vector<Position>> decode_positions(const json::object& args, std::size_t max) {
  const json::value* list = args.if_contains("positions");
  if (!list || !list->is_array()) return field_error("positions", "expected an array");
  const auto& array = list->as_array();
  if (array.size() > max) return field_error("positions", "at most " + std::to_string(max));
  std::vector<Position> positions;
  positions.reserve(array.size());
  for (std::size_t i = 0; i < array.size(); ++i) {
    std::string at = "positions[" + std::to_string(i) + "]";
    if (!array[i].is_object()) return field_error(at, "expected an object");
    const auto& p = array[i].as_object();
    auto conversation = required_int(p, "conversation_id");
    if (!conversation) return field_error(at + ".conversation_id", "is required (an integer)");
    auto epoch = required_string(p, "epoch");
    if (!epoch) return field_error(at + ".epoch", "is required (a string)");
    auto seq = required_int(p, "seq");
    if (!seq) return field_error(at + ".seq", "is required (an integer)");
    positions.push_back(Position{*conversation, std::string(*epoch), *seq});
  }
  return positions;
}

}  // namespace switchboard::host
