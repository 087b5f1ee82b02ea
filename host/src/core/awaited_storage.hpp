// The storage as a flow calls it: each call returns what `co_await` turns
// into its Result, through the one adapter over the SDK's completions
// (core/flow.hpp). The arguments are moved into the awaiter, so a call's
// temporaries may go before the storage answers.
#pragma once

#include <utility>
#include <vector>

#include "core/flow.hpp"
#include "switchboard/storage.hpp"

namespace switchboard::host {

class AwaitedStorage {
 public:
  explicit AwaitedStorage(Storage& storage) : s_(storage) {}

  auto create_conversation(ConversationDraft draft) {
    return completion<ConversationCreated>([&s = s_, draft = std::move(draft)](auto done) mutable {
      s.create_conversation(std::move(draft), std::move(done));
    });
  }
  auto get_conversation(ConversationId id) {
    return completion<Conversation>([&s = s_, id](auto done) { s.get_conversation(id, std::move(done)); });
  }
  auto list_conversations(UserId user, ConversationPage page) {
    return completion<std::vector<Conversation>>([&s = s_, user = std::move(user), page](auto done) mutable {
      s.list_conversations(std::move(user), page, std::move(done));
    });
  }
  auto set_member(Member member, EventDraft event) {
    return completion<MemberChange>([&s = s_, member = std::move(member), event = std::move(event)](auto done) mutable {
      s.set_member(std::move(member), std::move(event), std::move(done));
    });
  }
  auto remove_member(ConversationId id, UserId user, EventDraft event) {
    return completion<MemberChange>([&s = s_, id, user = std::move(user), event = std::move(event)](auto done) mutable {
      s.remove_member(id, std::move(user), std::move(event), std::move(done));
    });
  }
  auto get_member(ConversationId id, UserId user) {
    return completion<Member>([&s = s_, id, user = std::move(user)](auto done) mutable {
      s.get_member(id, std::move(user), std::move(done));
    });
  }
  auto list_members(ConversationId id) {
    return completion<std::vector<Member>>([&s = s_, id](auto done) { s.list_members(id, std::move(done)); });
  }
  auto append_message_as_member(MessageDraft draft, EventDraft event) {
    return completion<MessageWrite>([&s = s_, draft = std::move(draft), event = std::move(event)](auto done) mutable {
      s.append_message_as_member(std::move(draft), std::move(event), std::move(done));
    });
  }
  auto edit_message(MessageId id, std::string text, EventDraft event) {
    return completion<MessageWrite>([&s = s_, id, text = std::move(text), event = std::move(event)](auto done) mutable {
      s.edit_message(id, std::move(text), std::move(event), std::move(done));
    });
  }
  auto delete_message(MessageId id, EventDraft event) {
    return completion<MessageWrite>([&s = s_, id, event = std::move(event)](auto done) mutable {
      s.delete_message(id, std::move(event), std::move(done));
    });
  }
  auto get_message(MessageId id) {
    return completion<Message>([&s = s_, id](auto done) { s.get_message(id, std::move(done)); });
  }
  auto read_events(EventQuery query) {
    return completion<EventPage>([&s = s_, query = std::move(query)](auto done) mutable {
      s.read_events(std::move(query), std::move(done));
    });
  }

 private:
  Storage& s_;
};

}  // namespace switchboard::host
