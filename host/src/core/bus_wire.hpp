// The framing of the host's own bus messages (events, presence): a short tag
// then length-prefixed fields, "<n>:<bytes>", so any byte may appear inside.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "switchboard/types.hpp"

namespace switchboard::host::wire {

void put(std::string& out, std::string_view field);
void put(std::string& out, std::int64_t number);
// Each take consumes one field from the front of `in`; false if malformed.
bool take(std::string_view& in, std::string_view& field);
bool take_number(std::string_view& in, std::int64_t& out);
// A count, then that many fields.
void put_users(std::string& out, const std::vector<UserId>& users);
bool take_users(std::string_view& in, std::vector<UserId>& users);

// A conversation event (or ephemeral event) as one host sends it to the
// others: "SB1", then origin, conversation, seq, except, only, join users,
// leave users and the event's JSON.
struct EventMessage {
  std::string_view origin;
  std::int64_t conversation_id = 0;
  std::int64_t seq = 0;
  std::string_view except;
  std::string_view only;
  std::vector<UserId> join;
  std::vector<UserId> leave;
  std::string_view json;
};
std::string encode_event(const EventMessage& message);
// False if `payload` is not a well-formed event message (views point into it).
bool decode_event(std::string_view payload, EventMessage& out);

}  // namespace switchboard::host::wire
