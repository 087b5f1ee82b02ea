// What travels with a conversation event to the sessions that receive it.
#pragma once

#include <vector>

#include "switchboard/types.hpp"

namespace switchboard::host {

// Who must be (un)subscribed when an event is delivered, and its seq.
struct DeliveryMeta {
  Seq seq = 0;                    // 0: ephemeral
  std::vector<UserId> join;       // subscribe these users' sessions first
  std::vector<UserId> leave;      // unsubscribe them after delivering
  UserId except;                  // do not deliver to this user (ephemeral events)
  UserId only;                    // deliver to this user only (ephemeral events)
  bool can_wait = false;          // may wait for the worker's batch window (presence)
  // Whether the frame may wait for the batch window: presence updates, and
  // every ephemeral frame to one member (a feature's push, e.g. unread.update).
  bool may_wait() const { return can_wait || (seq == 0 && !only.empty()); }
};

}  // namespace switchboard::host
