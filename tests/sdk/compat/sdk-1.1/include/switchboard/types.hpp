// Value types shared by the host and every plugin: conversations, members,
// messages and the per-conversation event log.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace switchboard {

using ConversationId = std::int64_t;
using MessageId = std::int64_t;
using Seq = std::int64_t;     // position in a conversation's event log; the first event is 1
using TimeMs = std::int64_t;  // milliseconds since the Unix epoch
using UserId = std::string;   // the `sub` of the user's token

enum class ConversationKind : std::uint8_t { direct, group, channel };
// Ordered: a higher role may do everything a lower one may.
enum class Role : std::uint8_t { member = 0, admin = 1, owner = 2 };

constexpr std::string_view to_string(ConversationKind kind) noexcept {
  switch (kind) {
    case ConversationKind::direct: return "direct";
    case ConversationKind::group: return "group";
    case ConversationKind::channel: return "channel";
  }
  return "group";
}

constexpr std::optional<ConversationKind> parse_conversation_kind(std::string_view s) noexcept {
  if (s == "direct") return ConversationKind::direct;
  if (s == "group") return ConversationKind::group;
  if (s == "channel") return ConversationKind::channel;
  return std::nullopt;
}

constexpr std::string_view to_string(Role role) noexcept {
  switch (role) {
    case Role::member: return "member";
    case Role::admin: return "admin";
    case Role::owner: return "owner";
  }
  return "member";
}

constexpr std::optional<Role> parse_role(std::string_view s) noexcept {
  if (s == "member") return Role::member;
  if (s == "admin") return Role::admin;
  if (s == "owner") return Role::owner;
  return std::nullopt;
}

struct Conversation {
  ConversationId id = 0;
  ConversationKind kind = ConversationKind::group;
  std::string name;
  UserId creator;
  // Identifies this conversation's event stream. It never changes unless the
  // stream is reset, so a client holding (epoch, seq) can tell whether its
  // position still means anything.
  std::string epoch;
  Seq last_seq = 0;
  TimeMs created_at = 0;
};

struct Member {
  ConversationId conversation_id = 0;
  UserId user_id;
  Role role = Role::member;
  TimeMs joined_at = 0;
};

struct Message {
  MessageId id = 0;
  ConversationId conversation_id = 0;
  Seq seq = 0;  // seq of the event that created it
  UserId author;
  std::string text;
  MessageId reply_to = 0;   // 0: not a reply
  std::string attachments;  // JSON array, validated by the host; opaque to storage
  std::string client_key;   // the sender's idempotency key; empty: none
  TimeMs created_at = 0;
  TimeMs edited_at = 0;  // 0: never edited
  bool deleted = false;  // soft delete: text and attachments are gone
};

// One persistent change in a conversation.
struct Event {
  ConversationId conversation_id = 0;
  Seq seq = 0;
  std::string type;  // "message.new", "member.join", "reaction.add", ...
  UserId actor;
  MessageId message_id = 0;  // the message this event is about; 0: none
  std::string payload;       // JSON object written by whoever appended the event
  TimeMs created_at = 0;
  // When reading the log, the current state of `message_id` (edited text,
  // deletion), so history never shows content that was deleted.
  std::optional<Message> message;
};

// An event to append: storage gives it the conversation, the next seq and the time.
struct EventDraft {
  std::string type;
  UserId actor;
  MessageId message_id = 0;
  std::string payload = "{}";
};

// A feature's own data, stored by any storage plugin without knowing the
// feature: (feature, conversation_id, key) is unique.
struct Record {
  std::string feature;             // e.g. "reactions"
  ConversationId conversation_id = 0;
  std::string key;                 // chosen by the feature, e.g. "42:alice:👍"
  MessageId message_id = 0;        // lets history decorate messages; 0: none
  UserId user;                     // lets a feature find a user's records; may be empty
  std::int64_t number = 0;         // an ordered value (e.g. a read position)
  std::string value;               // feature-defined, usually JSON
  TimeMs updated_at = 0;
};

struct Health {
  bool ok = true;
  std::string detail;  // why not ok, for /ready and logs
};

}  // namespace switchboard
