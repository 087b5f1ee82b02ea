#include "core/chat_service.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <algorithm>
#include <chrono>
#include <map>
#include <set>

#include "protocol/fields.hpp"
#include "switchboard/gather.hpp"
#include "protocol/json_codec.hpp"

namespace switchboard::host {

namespace json = boost::json;

namespace {

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

Error forbidden(std::string why) { return Error{Errc::forbidden, std::move(why)}; }

EventDraft draft(std::string type, const UserId& actor, const json::object& payload = {}) {
  return EventDraft{std::move(type), actor, 0, json::serialize(payload)};
}

json::object member_payload(const UserId& user, Role role) {
  json::object p;
  p["user_id"] = user;
  p["role"] = to_string(role);
  return p;
}

// Attachments as in the seed schema; anything else is refused by name.
Result<std::string> validate_attachments(const json::object& args) {
  const auto* v = args.if_contains("attachments");
  if (!v || v->is_null()) return std::string("[]");
  if (!v->is_array()) return field_error("attachments", "expected an array");
  const auto& array = v->as_array();
  if (array.size() > 10) return field_error("attachments", "at most 10 attachments");
  static const std::set<std::string, std::less<>> strings = {"file_name", "mime_type", "url", "thumbnail_url"};
  static const std::set<std::string, std::less<>> integers = {"size", "width", "height", "duration_ms"};
  for (std::size_t i = 0; i < array.size(); ++i) {
    std::string at = "attachments[" + std::to_string(i) + "]";
    if (!array[i].is_object()) return field_error(at, "expected an object");
    const auto& a = array[i].as_object();
    for (const auto& [k, value] : a) {
      if (strings.contains(k)) {
        if (!value.is_string()) return field_error(at + "." + std::string(k), "expected a string");
        if (value.as_string().size() > 2048) return field_error(at + "." + std::string(k), "longer than 2048 bytes");
      } else if (integers.contains(k)) {
        if (!(value.is_int64() && value.as_int64() >= 0) && !value.is_uint64()) {
          return field_error(at + "." + std::string(k), "expected a non-negative integer");
        }
      } else {
        return field_error(at + "." + std::string(k), "unknown field");
      }
    }
    for (const char* required : {"file_name", "mime_type", "size", "url"}) {
      if (!a.contains(required)) return field_error(at + "." + required, "is required");
    }
  }
  return json::serialize(array);
}

}  // namespace

ChatService::ChatService(Storage& storage, Fanout& fanout, Presence& presence, FeatureRegistry& features,
                         const ChatConfig& config, Metrics& metrics, Logger& log)
    : storage_(storage),
      fanout_(fanout),
      presence_(presence),
      features_(features),
      config_(config),
      persisted_(metrics.counter("messages_persisted_total", "Messages committed by storage")),
      storage_seconds_(metrics.histogram("storage_write_seconds", "Time from a write's submission to its commit")),
      faults_(log, metrics.counter("command_exceptions_total", "Exceptions host code threw while running a command (answered internal)")) {}

const std::vector<std::pair<std::string, ChatService::Operation>>& ChatService::operations() {
  static const std::vector<std::pair<std::string, Operation>> ops = {
      {"conversation.create", &ChatService::create_conversation},
      {"conversation.list", &ChatService::list_conversations},
      {"conversation.get", &ChatService::get_conversation},
      {"conversation.join", &ChatService::join},
      {"conversation.leave", &ChatService::leave},
      {"member.add", &ChatService::add_member},
      {"member.remove", &ChatService::remove_member},
      {"member.role", &ChatService::set_role},
      {"message.send", &ChatService::send_message},
      {"message.edit", &ChatService::edit_message},
      {"message.delete", &ChatService::delete_message},
      {"history", &ChatService::history},
      {"presence", &ChatService::presence},
  };
  return ops;
}

// The key that makes a direct conversation unique per pair of users, in
// either order; unambiguous for any user ids (each is prefixed by its
// length). Persisted by every storage plugin: the format is the host's, and
// must never change (existing direct conversations would be made twice).
std::string ChatService::direct_pair_key(UserId a, UserId b) {
  if (b < a) std::swap(a, b);
  return std::to_string(a.size()) + ":" + a + std::to_string(b.size()) + ":" + b;
}

void ChatService::timed(std::int64_t started_ns) { storage_seconds_.observe((now_ns() - started_ns) / 1e9); }

Flow<Member> ChatService::membership(ConversationId id, UserId user) {
  auto member = co_await storage_.get_member(id, user);
  if (member || member.code() != Errc::not_found) co_return std::move(member);
  auto conversation = co_await storage_.get_conversation(id);
  if (conversation) co_return forbidden("not a member of conversation " + std::to_string(id));
  if (conversation.code() == Errc::not_found) {
    co_return Error{Errc::not_found, "conversation " + std::to_string(id) + " not found"};
  }
  co_return conversation.error();
}

// Roles, as in Matrix's power levels: you act on members ranked strictly
// below you — remove them, set their role to at most your own — and on
// yourself (leave, step down); never on a peer or on someone above you. A
// group or channel with members always has an owner: the last owner hands
// ownership over before leaving or stepping down (docs/protocol.md).
Flow<bool> ChatService::ownership_kept(ConversationId id, UserId owner, bool leaving) {
  auto members = co_await storage_.list_members(id);
  if (!members) co_return members.error();
  bool others = false;
  for (const auto& m : *members) {
    if (m.user_id == owner) continue;
    if (m.role == Role::owner) co_return true;
    others = true;
  }
  if (leaving && !others) {
    // The last one out of a group leaves nobody without an owner; a channel
    // stays joinable, so its owner stays.
    auto conversation = co_await storage_.get_conversation(id);
    if (!conversation) co_return conversation.error();
    if (conversation->kind != ConversationKind::channel) co_return true;
    co_return Error{Errc::conflict, std::string("you are the only owner of this channel, which anyone may join: "
                                                "make another member owner first")};
  }
  co_return Error{Errc::conflict, std::string("you are the only owner: make another member owner first")};
}

ChatService::Answer ChatService::create_conversation(Caller caller, json::object args) {
  auto kind_name = required_string(args, "kind");
  if (!kind_name) co_return kind_name.error();
  auto kind = parse_conversation_kind(*kind_name);
  if (!kind) co_return field_error("kind", "must be \"direct\", \"group\" or \"channel\"");
  auto name = optional_string(args, "name");
  if (!name) co_return name.error();
  if (name->value_or("").size() > 200) co_return field_error("name", "longer than 200 bytes");
  std::vector<UserId> others;
  if (const auto* m = args.if_contains("members")) {
    if (!m->is_array()) co_return field_error("members", "expected an array of user ids");
    for (const auto& u : m->as_array()) {
      if (!u.is_string() || u.as_string().empty()) co_return field_error("members", "expected non-empty strings");
      if (u.as_string() != caller.user) others.emplace_back(u.as_string());
    }
  }
  std::sort(others.begin(), others.end());
  others.erase(std::unique(others.begin(), others.end()), others.end());
  if (others.size() > 1000) co_return field_error("members", "at most 1000 initial members");

  ConversationDraft d;
  d.kind = *kind;
  d.name = name->value_or("");
  d.creator = caller.user;
  if (*kind == ConversationKind::direct) {
    if (others.size() != 1) co_return field_error("members", "a direct conversation has exactly one other member");
    d.members = {{0, caller.user, Role::member, 0}, {0, others[0], Role::member, 0}};
    d.direct_key = direct_pair_key(caller.user, others[0]);
  } else {
    d.members.push_back({0, caller.user, Role::owner, 0});
    for (const auto& u : others) d.members.push_back({0, u, Role::member, 0});
  }
  json::object payload;
  json::array members;
  for (const auto& m : d.members) members.emplace_back(m.user_id);
  payload["members"] = std::move(members);
  payload["kind"] = to_string(d.kind);
  payload["name"] = d.name;
  d.event = draft("conversation.create", caller.user, payload);

  auto created = co_await storage_.create_conversation(std::move(d));
  if (!created) co_return created.error();
  if (created->event) fanout_.publish(*created->event);
  json::object r;
  r["conversation"] = to_json(created->conversation);
  r["created"] = created->created;
  co_return json::value(std::move(r));
}

ChatService::Answer ChatService::list_conversations(Caller caller, json::object args) {
  auto after = optional_int(args, "after");
  if (!after) co_return after.error();
  auto limit = optional_int(args, "limit");
  if (!limit) co_return limit.error();
  ConversationPage page{after->value_or(0), static_cast<int>(std::clamp<std::int64_t>(limit->value_or(100), 1, 1000))};

  auto list = co_await storage_.list_conversations(caller.user, page);
  if (!list) co_return list.error();
  json::array out;
  for (const auto& c : *list) out.push_back(to_json(c));
  co_return json::value(json::object{{"conversations", std::move(out)}});
}

ChatService::Answer ChatService::get_conversation(Caller caller, json::object args) {
  auto id = required_int(args, "conversation_id");
  if (!id) co_return id.error();

  auto me = co_await membership(*id, caller.user);
  if (!me) co_return me.error();
  auto conversation = co_await storage_.get_conversation(*id);
  if (!conversation) co_return conversation.error();
  auto members = co_await storage_.list_members(*id);
  if (!members) co_return members.error();
  json::array ms;
  for (const auto& m : *members) ms.push_back(to_json(m));
  co_return json::value(json::object{{"conversation", to_json(*conversation)}, {"members", std::move(ms)}});
}

ChatService::Answer ChatService::join(Caller caller, json::object args) {
  auto id = required_int(args, "conversation_id");
  if (!id) co_return id.error();

  auto conversation = co_await storage_.get_conversation(*id);
  if (!conversation) co_return conversation.error();
  if (conversation->kind != ConversationKind::channel) {
    co_return forbidden("only channels can be joined; ask an admin to add you");
  }
  Member joining{*id, caller.user, Role::member, 0};
  EventDraft event = draft("member.join", caller.user, member_payload(caller.user, Role::member));
  auto joined = co_await storage_.set_member(std::move(joining), std::move(event));
  if (!joined) co_return joined.error();
  if (joined->event) fanout_.publish(*joined->event);
  co_return json::value(json::object{{"member", to_json(joined->member)}, {"changed", joined->changed}});
}

ChatService::Answer ChatService::leave(Caller caller, json::object args) {
  auto id = required_int(args, "conversation_id");
  if (!id) co_return id.error();

  auto me = co_await membership(*id, caller.user);
  if (!me) co_return me.error();
  auto conversation = co_await storage_.get_conversation(*id);
  if (!conversation) co_return conversation.error();
  if (conversation->kind == ConversationKind::direct) co_return forbidden("nobody leaves a direct conversation");
  if (me->role == Role::owner) {
    auto kept = co_await ownership_kept(*id, caller.user, true);
    if (!kept) co_return kept.error();
  }
  EventDraft event = draft("member.leave", caller.user, json::object{{"user_id", caller.user}});
  auto left = co_await storage_.remove_member(*id, caller.user, std::move(event));
  if (!left) co_return left.error();
  if (left->event) fanout_.publish(*left->event);
  co_return json::value(json::object{{"left", true}});
}

ChatService::Answer ChatService::add_member(Caller caller, json::object args) {
  auto id = required_int(args, "conversation_id");
  if (!id) co_return id.error();
  auto user = required_string(args, "user_id");
  if (!user) co_return user.error();
  auto role_name = optional_string(args, "role");
  if (!role_name) co_return role_name.error();
  auto role = parse_role(role_name->value_or("member"));
  if (!role) co_return field_error("role", "must be \"member\", \"admin\" or \"owner\"");

  auto me = co_await membership(*id, caller.user);
  if (!me) co_return me.error();
  if (me->role < Role::admin) co_return forbidden("only admins and owners add members");
  if (*role > me->role) co_return forbidden("you cannot grant a role above your own");
  auto conversation = co_await storage_.get_conversation(*id);
  if (!conversation) co_return conversation.error();
  if (conversation->kind == ConversationKind::direct) co_return forbidden("a direct conversation has exactly two members");
  auto existing = co_await storage_.get_member(*id, *user);
  if (existing) co_return Error{Errc::conflict, *user + " is already a member"};
  if (existing.code() != Errc::not_found) co_return existing.error();
  Member adding{*id, *user, *role, 0};
  EventDraft event = draft("member.join", caller.user, member_payload(*user, *role));
  auto added = co_await storage_.set_member(std::move(adding), std::move(event));
  if (!added) co_return added.error();
  if (added->event) fanout_.publish(*added->event);
  co_return json::value(json::object{{"member", to_json(added->member)}});
}

ChatService::Answer ChatService::remove_member(Caller caller, json::object args) {
  auto id = required_int(args, "conversation_id");
  if (!id) co_return id.error();
  auto user = required_string(args, "user_id");
  if (!user) co_return user.error();

  auto me = co_await membership(*id, caller.user);
  if (!me) co_return me.error();
  if (me->role < Role::admin) co_return forbidden("only admins and owners remove members");
  auto target = co_await storage_.get_member(*id, *user);
  if (!target) co_return target.error();
  const bool self = target->user_id == caller.user;
  if (!self && target->role >= me->role) {
    co_return forbidden("you can remove members ranked below you only (" + target->user_id + " is " +
                        std::string(to_string(target->role)) + ", you are " + std::string(to_string(me->role)) + ")");
  }
  if (self && me->role == Role::owner) {
    auto kept = co_await ownership_kept(*id, caller.user, true);
    if (!kept) co_return kept.error();
  }
  EventDraft event = draft("member.leave", caller.user, json::object{{"user_id", target->user_id}});
  auto removed = co_await storage_.remove_member(*id, target->user_id, std::move(event));
  if (!removed) co_return removed.error();
  if (removed->event) fanout_.publish(*removed->event);
  co_return json::value(json::object{{"removed", removed->member.user_id}});
}

ChatService::Answer ChatService::set_role(Caller caller, json::object args) {
  auto id = required_int(args, "conversation_id");
  if (!id) co_return id.error();
  auto user = required_string(args, "user_id");
  if (!user) co_return user.error();
  auto role_name = required_string(args, "role");
  if (!role_name) co_return role_name.error();
  auto role = parse_role(*role_name);
  if (!role) co_return field_error("role", "must be \"member\", \"admin\" or \"owner\"");

  auto me = co_await membership(*id, caller.user);
  if (!me) co_return me.error();
  if (me->role < Role::admin) co_return forbidden("only admins and owners set roles");
  if (*role > me->role) co_return forbidden("you cannot grant a role above your own");
  auto target = co_await storage_.get_member(*id, *user);
  if (!target) co_return target.error();
  const bool self = target->user_id == caller.user;
  if (!self && target->role >= me->role) {
    co_return forbidden("you can set the role of members ranked below you only (" + target->user_id + " is " +
                        std::string(to_string(target->role)) + ", you are " + std::string(to_string(me->role)) + ")");
  }
  if (self && me->role == Role::owner && *role != Role::owner) {
    auto kept = co_await ownership_kept(*id, caller.user, false);
    if (!kept) co_return kept.error();
  }
  Member changing{*id, target->user_id, *role, 0};
  EventDraft event = draft("member.role", caller.user, member_payload(target->user_id, *role));
  auto changed = co_await storage_.set_member(std::move(changing), std::move(event));
  if (!changed) co_return changed.error();
  if (changed->event) fanout_.publish(*changed->event);
  co_return json::value(json::object{{"member", to_json(changed->member)}, {"changed", changed->changed}});
}

ChatService::Answer ChatService::send_message(Caller caller, json::object args) {
  auto id = required_int(args, "conversation_id");
  if (!id) co_return id.error();
  auto text = optional_string(args, "text");
  if (!text) co_return text.error();
  auto reply_to = optional_int(args, "reply_to");
  if (!reply_to) co_return reply_to.error();
  auto key = optional_string(args, "client_key");
  if (!key) co_return key.error();
  if (key->value_or("").size() > 128) co_return field_error("client_key", "longer than 128 bytes");
  auto attachments = validate_attachments(args);
  if (!attachments) co_return attachments.error();
  std::string body = text->value_or("");
  if (body.size() > static_cast<std::size_t>(config_.max_text_bytes)) {
    co_return Error{Errc::too_large, "text: " + std::to_string(body.size()) + " bytes, the limit is " +
                                         std::to_string(config_.max_text_bytes)};
  }
  if (body.empty() && *attachments == "[]") co_return field_error("text", "is required (or attachments)");

  std::int64_t started = now_ns();
  MessageDraft message{*id, caller.user, std::move(body), reply_to->value_or(0), std::move(*attachments),
                       key->value_or("")};
  EventDraft event = draft("message.new", caller.user);
  // Membership is checked with the append: one storage call.
  auto written = co_await storage_.append_message_as_member(std::move(message), std::move(event));
  timed(started);
  if (!written) co_return written.error();
  if (written->changed && written->event) {
    persisted_.add();
    fanout_.publish(*written->event);
  }
  json::object r;
  r["message"] = to_json(written->message);
  // Only the sender sees its key; events carry none.
  if (!written->message.client_key.empty()) r["message"].as_object()["client_key"] = written->message.client_key;
  r["seq"] = written->message.seq;
  r["duplicate"] = !written->changed;
  co_return json::value(std::move(r));
}

ChatService::Answer ChatService::edit_message(Caller caller, json::object args) {
  auto id = required_int(args, "message_id");
  if (!id) co_return id.error();
  auto text = required_string(args, "text");
  if (!text) co_return text.error();
  if (text->empty()) co_return field_error("text", "must not be empty (delete the message instead)");
  if (text->size() > static_cast<std::size_t>(config_.max_text_bytes)) {
    co_return Error{Errc::too_large, "text: longer than " + std::to_string(config_.max_text_bytes) + " bytes"};
  }

  auto message = co_await storage_.get_message(*id);
  if (!message) co_return message.error();
  auto me = co_await membership(message->conversation_id, caller.user);
  if (!me) co_return me.error();
  if (message->author != caller.user) co_return forbidden("only the author edits a message");
  EventDraft event = draft("message.edit", caller.user);
  auto edited = co_await storage_.edit_message(message->id, std::move(*text), std::move(event));
  if (!edited) co_return edited.error();
  if (edited->event) fanout_.publish(*edited->event);
  co_return json::value(json::object{{"message", to_json(edited->message)}});
}

ChatService::Answer ChatService::delete_message(Caller caller, json::object args) {
  auto id = required_int(args, "message_id");
  if (!id) co_return id.error();

  auto message = co_await storage_.get_message(*id);
  if (!message) co_return message.error();
  auto me = co_await membership(message->conversation_id, caller.user);
  if (!me) co_return me.error();
  if (message->author != caller.user && me->role < Role::admin) {
    co_return forbidden("only the author or an admin deletes a message");
  }
  EventDraft event = draft("message.delete", caller.user);
  auto deleted = co_await storage_.delete_message(message->id, std::move(event));
  if (!deleted) co_return deleted.error();
  if (deleted->event) fanout_.publish(*deleted->event);
  co_return json::value(json::object{{"message", to_json(deleted->message)}, {"changed", deleted->changed}});
}

Flow<json::array> ChatService::decorate(ConversationId id, json::array events) {
  const auto decorators = features_.decorators();  // this page's set, whatever a reload does meanwhile
  std::vector<MessageId> ids;
  for (const auto& e : events) {
    if (const auto* m = e.as_object().if_contains("message")) ids.push_back(m->as_object().at("id").as_int64());
  }
  if (decorators.empty() || ids.empty()) co_return std::move(events);

  // Every decorating feature at once; a failing one leaves its field out.
  using Decorations = std::vector<Result<std::vector<MessageDecoration>>>;
  auto all = co_await completion<Decorations>([&](Completion<Decorations> done) {
    gather<std::vector<MessageDecoration>>(
        decorators.size(),
        [&](std::size_t i, Completion<std::vector<MessageDecoration>> next) {
          features_.decorate(*decorators[i], id, ids, std::move(next));
        },
        [done = std::move(done)](Decorations all) { done(std::move(all)); });
  });
  if (!all) co_return all.error();
  for (std::size_t f = 0; f < all->size(); ++f) {
    const auto& decorations = (*all)[f];
    if (!decorations) continue;
    const std::string field = decorators[f]->decoration_field();
    std::map<MessageId, const std::string*> by_id;
    for (const auto& d : decorations.value()) by_id[d.message_id] = &d.json;
    for (auto& e : events) {
      auto* m = e.as_object().if_contains("message");
      if (!m) continue;
      auto it = by_id.find(m->as_object().at("id").as_int64());
      if (it == by_id.end()) continue;
      std::error_code ec;
      auto value = json::parse(*it->second, ec);
      if (!ec) m->as_object()[field] = std::move(value);
    }
  }
  co_return std::move(events);
}

ChatService::Answer ChatService::history(Caller caller, json::object args) {
  auto id = required_int(args, "conversation_id");
  if (!id) co_return id.error();
  auto before = optional_int(args, "before");
  if (!before) co_return before.error();
  auto after = optional_int(args, "after");
  if (!after) co_return after.error();
  if (*before && *after) co_return field_error("before", "give before or after, not both");
  auto limit = optional_int(args, "limit");
  if (!limit) co_return limit.error();
  EventQuery q;
  q.conversation_id = *id;
  q.limit = static_cast<int>(std::clamp<std::int64_t>(limit->value_or(50), 1, config_.history_max));
  if (*after) {
    q.direction = Direction::forward;
    q.from = **after;
  } else {
    q.direction = Direction::backward;
    q.from = before->value_or(0);
  }

  auto me = co_await membership(*id, caller.user);
  if (!me) co_return me.error();
  auto page = co_await storage_.read_events(q);
  if (!page) co_return page.error();
  json::array events;
  for (const auto& e : page->events) events.push_back(to_json(e));
  auto decorated = co_await decorate(*id, std::move(events));
  if (!decorated) co_return decorated.error();
  json::object r;
  r["events"] = std::move(*decorated);
  r["epoch"] = page->epoch;
  r["last_seq"] = page->last_seq;
  r["more"] = page->more;
  co_return json::value(std::move(r));
}

ChatService::Answer ChatService::presence(Caller caller, json::object args) {
  auto id = required_int(args, "conversation_id");
  if (!id) co_return id.error();

  auto me = co_await membership(*id, caller.user);
  if (!me) co_return me.error();
  auto members = co_await storage_.list_members(*id);
  if (!members) co_return members.error();
  json::array online;
  for (const auto& m : *members) {
    if (presence_.online(m.user_id)) online.emplace_back(m.user_id);
  }
  co_return json::value(json::object{{"conversation_id", *id}, {"online", std::move(online)}});
}

}  // namespace switchboard::host
