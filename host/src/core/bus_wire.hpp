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

}  // namespace switchboard::host::wire
