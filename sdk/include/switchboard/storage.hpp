// Storage keeps conversations, members, messages, each conversation's event
// log and the features' records. Every write that changes a conversation
// appends its event in the same transaction, with the conversation's next seq.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "switchboard/plugin.hpp"
#include "switchboard/result.hpp"
#include "switchboard/types.hpp"

namespace switchboard {

// Storage operations are asynchronous so that a plugin can group many
// callers' writes into one commit. The completion runs exactly once, on a
// storage thread or on the caller's thread before the call returns; it must
// not block. A write's completion runs only after the write is durable.
// Operations never block their caller: no I/O, lock wait or busy wait on the
// calling thread (a host worker). A storage with too much waiting answers
// `unavailable` at once instead of queueing without bound.
template <class T>
using Completion = std::function<void(Result<T>)>;

struct ConversationDraft {
  ConversationKind kind = ConversationKind::group;
  std::string name;
  UserId creator;
  // Initial members with their roles. For `direct`: exactly two distinct users.
  std::vector<Member> members;
  // Appended as the conversation's first event (seq 1), if given.
  std::optional<EventDraft> event;
  // For `direct`: the pair's key, made by the host (its format is the
  // host's; store it as given). Storage keeps one conversation per key.
  std::string direct_key;
};

struct ConversationCreated {
  Conversation conversation;
  // false: a direct conversation with this direct_key already existed and is
  // returned unchanged (storage guarantees one per key, even under races).
  bool created = true;
  std::optional<Event> event;
};

struct ConversationPage {
  ConversationId after = 0;  // ids greater than this
  int limit = 100;
};

struct MemberChange {
  Member member;
  bool changed = true;  // false: nothing to do (already a member with that role)
  std::optional<Event> event;
};

struct MessageDraft {
  ConversationId conversation_id = 0;
  UserId author;
  std::string text;
  MessageId reply_to = 0;
  std::string attachments = "[]";
  std::string client_key;  // (conversation, author, client_key) is unique when not empty
};

struct MessageWrite {
  Message message;  // the state after the write
  // false: nothing changed. For a send: the client key was seen before and
  // `message` is the original. For a delete: it was already deleted.
  bool changed = true;
  std::optional<Event> event;  // the appended event, when changed
};

enum class Direction : std::uint8_t {
  forward,   // events with seq > from, oldest first
  backward,  // the `limit` events with seq < from (from 0: the newest), oldest first
};

struct EventQuery {
  ConversationId conversation_id = 0;
  Direction direction = Direction::forward;
  Seq from = 0;
  int limit = 100;
};

struct EventPage {
  std::vector<Event> events;  // always in ascending seq order
  std::string epoch;
  Seq last_seq = 0;  // the conversation's newest seq when read
  bool more = false;  // more events exist in the query's direction
};

// Counts events after a position, e.g. unread messages from others.
struct EventCount {
  ConversationId conversation_id = 0;
  Seq after = 0;
  std::string type;     // e.g. "message.new"
  UserId not_actor;     // skip events by this user; empty: count all
  bool skip_deleted_messages = true;  // skip events whose message was deleted
  Seq upto = 0;                       // only events up to this seq; 0: up to the newest
};

enum class RecordOp : std::uint8_t {
  put,     // insert or replace
  insert,  // insert only if absent; else unchanged
  raise,   // insert, or replace only if record.number is greater than the stored one
  remove,  // delete if present; else unchanged
};

struct RecordChange {
  RecordOp op = RecordOp::put;
  Record record;  // for remove only feature, conversation_id and key matter
  // Appended in the same transaction if, and only if, the change took effect.
  std::optional<EventDraft> event;
};

struct RecordOutcome {
  bool changed = false;
  std::optional<Record> record;  // the stored state after the change; empty if none
  std::optional<Event> event;
};

struct RecordQuery {
  std::string feature;
  ConversationId conversation_id = 0;  // 0: every conversation
  std::string key_prefix;              // empty: any key
  std::vector<MessageId> message_ids;  // empty: any message
  UserId user;                         // empty: any user
  int limit = 1000;
};

class SWITCHBOARD_API Storage : public Plugin {
 public:
  // Conversations
  virtual void create_conversation(ConversationDraft draft, Completion<ConversationCreated> done) = 0;
  virtual void get_conversation(ConversationId id, Completion<Conversation> done) = 0;
  // The user's conversations, by ascending id.
  virtual void list_conversations(UserId user, ConversationPage page, Completion<std::vector<Conversation>> done) = 0;
  // Starts a new stream: a new epoch, so clients holding old positions reload.
  virtual void reset_stream(ConversationId id, Completion<Conversation> done) = 0;

  // Members. set_member adds a member or changes its role.
  virtual void set_member(Member member, EventDraft event, Completion<MemberChange> done) = 0;
  // not_found if the user is not a member.
  virtual void remove_member(ConversationId id, UserId user, EventDraft event, Completion<MemberChange> done) = 0;
  virtual void get_member(ConversationId id, UserId user, Completion<Member> done) = 0;
  // not_found if the conversation does not exist; empty if nobody is in it.
  virtual void list_members(ConversationId id, Completion<std::vector<Member>> done) = 0;

  // Messages. The event's message_id is filled in by storage.
  virtual void append_message(MessageDraft draft, EventDraft event, Completion<MessageWrite> done) = 0;
  // conflict if the message is deleted.
  virtual void edit_message(MessageId id, std::string text, EventDraft event, Completion<MessageWrite> done) = 0;
  // Soft delete: text and attachments are erased, the message stays as a tombstone.
  virtual void delete_message(MessageId id, EventDraft event, Completion<MessageWrite> done) = 0;
  virtual void get_message(MessageId id, Completion<Message> done) = 0;

  // The event log.
  virtual void append_event(ConversationId id, EventDraft event, Completion<Event> done) = 0;
  virtual void read_events(EventQuery query, Completion<EventPage> done) = 0;
  virtual void count_events(EventCount query, Completion<std::int64_t> done) = 0;

  // Features' records.
  virtual void change_record(RecordChange change, Completion<RecordOutcome> done) = 0;
  virtual void list_records(RecordQuery query, Completion<std::vector<Record>> done) = 0;

  // Waits until every write accepted before the call is durable and its
  // completion has returned, whichever thread runs it. Never called from a
  // completion.
  virtual Status flush() = 0;
  // The host's last call before destroying the storage: from now on refuse
  // every new operation with `unavailable` (completed at once), finish every
  // operation already accepted (reads and writes) and run its completion
  // exactly once, then return. After stop() returns no completion runs.
  // Idempotent. Completions that run during stop() may call the storage again
  // and are refused like any new call.
  virtual void stop() noexcept = 0;
  virtual Health health() const noexcept = 0;

  // --- SDK 1.1 ---------------------------------------------------------
  // append_message, only if draft.author is a member of the conversation:
  // `forbidden` ("not a member of conversation N") if not, `not_found`
  // ("conversation N not found") if there is none. The host sends every
  // message through it. This default asks get_member (and get_conversation,
  // to tell the two errors apart) before append_message; override it to
  // check membership in the append's own transaction, one round trip. The
  // host calls it only on plugins built against SDK 1.1 or later (an older
  // plugin's vtable has no such entry), and does the same calls itself for
  // older ones.
  virtual void append_message_as_member(MessageDraft draft, EventDraft event, Completion<MessageWrite> done);
};

inline void Storage::append_message_as_member(MessageDraft draft, EventDraft event, Completion<MessageWrite> done) {
  const ConversationId id = draft.conversation_id;
  UserId author = draft.author;
  get_member(id, std::move(author),
             [this, id, draft = std::move(draft), event = std::move(event),
              done = std::move(done)](Result<Member> member) mutable {
               if (member) return append_message(std::move(draft), std::move(event), std::move(done));
               if (member.code() != Errc::not_found) return done(member.error());
               get_conversation(id, [id, done = std::move(done)](Result<Conversation> conversation) mutable {
                 if (conversation) {
                   return done(make_error(Errc::forbidden, "not a member of conversation " + std::to_string(id)));
                 }
                 if (conversation.code() == Errc::not_found) {
                   return done(make_error(Errc::not_found, "conversation " + std::to_string(id) + " not found"));
                 }
                 done(conversation.error());
               });
             });
}

constexpr PluginKind plugin_kind_of(const Storage*) noexcept { return PluginKind::storage; }

// The structs storage exchanges with the host (and features) by value.
constexpr SharedSizes shared_sizes_of(const Storage*) noexcept {
  SharedSizes s{};
  using W = SharedStruct;
  detail::record_size<Error>(s, W::error);
  detail::record_size<Health>(s, W::health);
  detail::record_size<Conversation>(s, W::conversation);
  detail::record_size<Member>(s, W::member);
  detail::record_size<Message>(s, W::message);
  detail::record_size<Event>(s, W::event);
  detail::record_size<EventDraft>(s, W::event_draft);
  detail::record_size<Record>(s, W::record);
  detail::record_size<ConversationDraft>(s, W::conversation_draft);
  detail::record_size<ConversationCreated>(s, W::conversation_created);
  detail::record_size<ConversationPage>(s, W::conversation_page);
  detail::record_size<MemberChange>(s, W::member_change);
  detail::record_size<MessageDraft>(s, W::message_draft);
  detail::record_size<MessageWrite>(s, W::message_write);
  detail::record_size<EventQuery>(s, W::event_query);
  detail::record_size<EventPage>(s, W::event_page);
  detail::record_size<EventCount>(s, W::event_count);
  detail::record_size<RecordChange>(s, W::record_change);
  detail::record_size<RecordOutcome>(s, W::record_outcome);
  detail::record_size<RecordQuery>(s, W::record_query);
  return s;
}

}  // namespace switchboard
