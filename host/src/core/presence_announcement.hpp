// Tells the members online here of a user's conversations that the user
// came online or went offline: one ephemeral presence.update in each, a
// page of conversations at a time, read from storage off the caller's thread.
#pragma once

#include "core/fanout.hpp"
#include "switchboard/storage.hpp"

namespace switchboard::host {

void announce_presence(Storage& storage, Fanout& fanout, const UserId& user, bool online);

}  // namespace switchboard::host
