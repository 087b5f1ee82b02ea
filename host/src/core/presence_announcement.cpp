#include "core/presence_announcement.hpp"

#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

namespace switchboard::host {

namespace {

void announce_in(Fanout& fanout, ConversationId id, const UserId& user, bool online) {
  boost::json::object frame;
  frame["type"] = "presence.update";
  frame["conversation_id"] = id;
  frame["user_id"] = user;
  frame["status"] = online ? "online" : "offline";
  fanout.deliver_ephemeral_here(id, boost::json::serialize(frame), user, true);
}

void announce_page(Storage& storage, Fanout& fanout, const UserId& user, bool online, ConversationId after) {
  constexpr int kPage = 500;
  storage.list_conversations(
      user, ConversationPage{after, kPage}, [&storage, &fanout, user, online](Result<std::vector<Conversation>> r) {
        if (!r || r->empty()) return;
        for (const auto& c : r.value()) announce_in(fanout, c.id, user, online);
        if (r->size() == static_cast<std::size_t>(kPage)) announce_page(storage, fanout, user, online, r->back().id);
      });
}

}  // namespace

void announce_presence(Storage& storage, Fanout& fanout, const UserId& user, bool online,
                       const std::vector<ConversationId>* known) {
  if (known) {
    for (ConversationId id : *known) announce_in(fanout, id, user, online);
    return;
  }
  announce_page(storage, fanout, user, online, 0);
}

}  // namespace switchboard::host
