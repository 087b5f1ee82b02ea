// Tells the members online here of a user's conversations that the user
// came online or went offline: one ephemeral presence.update in each. The
// conversations are `known` (a session that opened loaded them) or read from
// storage, a page at a time, off the caller's thread. The updates may wait
// for the workers' batch window ([chat] presence_batch_ms).
#pragma once

#include "core/fanout.hpp"
#include "switchboard/storage.hpp"

namespace switchboard::host {

void announce_presence(Storage& storage, Fanout& fanout, const UserId& user, bool online,
                       const std::vector<ConversationId>* known = nullptr);

}  // namespace switchboard::host
