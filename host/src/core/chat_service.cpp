#include "core/chat_service.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <chrono>
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

// Passes a storage error on, or calls `then` with the value.
template <class T, class F>
Completion<T> then_or_fail(Respond done, F then) {
  return [done = std::move(done), then = std::move(then)](Result<T> r) mutable {
    if (!r) {
      done(r.error());
      return;
    }
    then(std::move(r.value()));
  };
}

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
                         const ChatConfig& config, Metrics& metrics)
    : storage_(storage),
      fanout_(fanout),
      presence_(presence),
      features_(features),
      config_(config),
      persisted_(metrics.counter("messages_persisted_total", "Messages committed by storage")),
      storage_seconds_(metrics.histogram("storage_write_seconds", "Time from a write's submission to its commit")) {}

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

void ChatService::timed(std::int64_t started_ns) { storage_seconds_.observe((now_ns() - started_ns) / 1e9); }

void ChatService::with_member(ConversationId id, const UserId& user, Respond done, std::function<void(Member)> then) {
  storage_.get_member(id, user, [this, id, user, done, then = std::move(then)](Result<Member> m) mutable {
    if (m) {
      then(std::move(m.value()));
      return;
    }
    if (m.code() != Errc::not_found) {
      done(m.error());
      return;
    }
    storage_.get_conversation(id, [id, done](Result<Conversation> c) {
      if (!c && c.code() == Errc::not_found) {
        done(Error{Errc::not_found, "conversation " + std::to_string(id) + " not found"});
      } else if (!c) {
        done(c.error());
      } else {
        done(forbidden("not a member of conversation " + std::to_string(id)));
      }
    });
  });
}

void ChatService::create_conversation(const Caller& caller, const json::object& args, Respond done) {
  auto kind_name = required_string(args, "kind");
  if (!kind_name) return done(kind_name.error());
  auto kind = parse_conversation_kind(*kind_name);
  if (!kind) return done(field_error("kind", "must be \"direct\", \"group\" or \"channel\""));
  auto name = optional_string(args, "name");
  if (!name) return done(name.error());
  if (name->value_or("").size() > 200) return done(field_error("name", "longer than 200 bytes"));
  std::vector<UserId> others;
  if (const auto* m = args.if_contains("members")) {
    if (!m->is_array()) return done(field_error("members", "expected an array of user ids"));
    for (const auto& u : m->as_array()) {
      if (!u.is_string() || u.as_string().empty()) return done(field_error("members", "expected non-empty strings"));
      if (u.as_string() != caller.user) others.emplace_back(u.as_string());
    }
  }
  std::sort(others.begin(), others.end());
  others.erase(std::unique(others.begin(), others.end()), others.end());
  if (others.size() > 1000) return done(field_error("members", "at most 1000 initial members"));

  ConversationDraft d;
  d.kind = *kind;
  d.name = name->value_or("");
  d.creator = caller.user;
  if (*kind == ConversationKind::direct) {
    if (others.size() != 1) return done(field_error("members", "a direct conversation has exactly one other member"));
    d.members = {{0, caller.user, Role::member, 0}, {0, others[0], Role::member, 0}};
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
  storage_.create_conversation(std::move(d), then_or_fail<ConversationCreated>(done, [this, done](ConversationCreated c) {
                                 if (c.event) fanout_.publish(*c.event);
                                 json::object r;
                                 r["conversation"] = to_json(c.conversation);
                                 r["created"] = c.created;
                                 done(json::value(std::move(r)));
                               }));
}

void ChatService::list_conversations(const Caller& caller, const json::object& args, Respond done) {
  auto after = optional_int(args, "after");
  if (!after) return done(after.error());
  auto limit = optional_int(args, "limit");
  if (!limit) return done(limit.error());
  ConversationPage page{after->value_or(0), static_cast<int>(std::clamp<std::int64_t>(limit->value_or(100), 1, 1000))};
  storage_.list_conversations(caller.user, page,
                              then_or_fail<std::vector<Conversation>>(done, [done](std::vector<Conversation> list) {
                                json::array out;
                                for (const auto& c : list) out.push_back(to_json(c));
                                json::object r;
                                r["conversations"] = std::move(out);
                                done(json::value(std::move(r)));
                              }));
}

void ChatService::get_conversation(const Caller& caller, const json::object& args, Respond done) {
  auto id = required_int(args, "conversation_id");
  if (!id) return done(id.error());
  with_member(*id, caller.user, done, [this, id = *id, done](Member) {
    storage_.get_conversation(id, then_or_fail<Conversation>(done, [this, id, done](Conversation c) {
      storage_.list_members(id, then_or_fail<std::vector<Member>>(done, [c, done](std::vector<Member> members) {
        json::object r;
        r["conversation"] = to_json(c);
        json::array ms;
        for (const auto& m : members) ms.push_back(to_json(m));
        r["members"] = std::move(ms);
        done(json::value(std::move(r)));
      }));
    }));
  });
}

void ChatService::join(const Caller& caller, const json::object& args, Respond done) {
  auto id = required_int(args, "conversation_id");
  if (!id) return done(id.error());
  storage_.get_conversation(*id, then_or_fail<Conversation>(done, [this, caller, done](Conversation c) {
    if (c.kind != ConversationKind::channel) {
      return done(forbidden("only channels can be joined; ask an admin to add you"));
    }
    storage_.set_member(Member{c.id, caller.user, Role::member, 0},
                        draft("member.join", caller.user, member_payload(caller.user, Role::member)),
                        then_or_fail<MemberChange>(done, [this, done](MemberChange m) {
                          if (m.event) fanout_.publish(*m.event);
                          json::object r;
                          r["member"] = to_json(m.member);
                          r["changed"] = m.changed;
                          done(json::value(std::move(r)));
                        }));
  }));
}

void ChatService::leave(const Caller& caller, const json::object& args, Respond done) {
  auto id = required_int(args, "conversation_id");
  if (!id) return done(id.error());
  with_member(*id, caller.user, done, [this, id = *id, caller, done](Member) {
    storage_.get_conversation(id, then_or_fail<Conversation>(done, [this, caller, done](Conversation c) {
      if (c.kind == ConversationKind::direct) return done(forbidden("nobody leaves a direct conversation"));
      json::object p;
      p["user_id"] = caller.user;
      storage_.remove_member(c.id, caller.user, draft("member.leave", caller.user, p),
                             then_or_fail<MemberChange>(done, [this, done](MemberChange m) {
                               if (m.event) fanout_.publish(*m.event);
                               done(json::value(json::object{{"left", true}}));
                             }));
    }));
  });
}

void ChatService::add_member(const Caller& caller, const json::object& args, Respond done) {
  auto id = required_int(args, "conversation_id");
  if (!id) return done(id.error());
  auto user = required_string(args, "user_id");
  if (!user) return done(user.error());
  auto role_name = optional_string(args, "role");
  if (!role_name) return done(role_name.error());
  auto role = parse_role(role_name->value_or("member"));
  if (!role) return done(field_error("role", "must be \"member\", \"admin\" or \"owner\""));
  with_member(*id, caller.user, done, [this, id = *id, user = *user, role = *role, caller, done](Member me) {
    if (me.role < Role::admin) return done(forbidden("only admins and owners add members"));
    if (role > me.role) return done(forbidden("you cannot grant a role above your own"));
    storage_.get_conversation(id, then_or_fail<Conversation>(done, [this, user, role, caller, done](Conversation c) {
      if (c.kind == ConversationKind::direct) return done(forbidden("a direct conversation has exactly two members"));
      storage_.get_member(c.id, user, [this, c, user, role, caller, done](Result<Member> existing) {
        if (existing) return done(Error{Errc::conflict, user + " is already a member"});
        storage_.set_member(Member{c.id, user, role, 0}, draft("member.join", caller.user, member_payload(user, role)),
                            then_or_fail<MemberChange>(done, [this, done](MemberChange m) {
                              if (m.event) fanout_.publish(*m.event);
                              done(json::value(json::object{{"member", to_json(m.member)}}));
                            }));
      });
    }));
  });
}

void ChatService::remove_member(const Caller& caller, const json::object& args, Respond done) {
  auto id = required_int(args, "conversation_id");
  if (!id) return done(id.error());
  auto user = required_string(args, "user_id");
  if (!user) return done(user.error());
  with_member(*id, caller.user, done, [this, id = *id, user = *user, caller, done](Member me) {
    if (me.role < Role::admin) return done(forbidden("only admins and owners remove members"));
    storage_.get_member(id, user, then_or_fail<Member>(done, [this, id, me, caller, done](Member target) {
      if (target.role >= me.role && target.user_id != caller.user) {
        return done(forbidden("you cannot remove a member whose role is not below yours"));
      }
      json::object p;
      p["user_id"] = target.user_id;
      storage_.remove_member(id, target.user_id, draft("member.leave", caller.user, p),
                             then_or_fail<MemberChange>(done, [this, done](MemberChange m) {
                               if (m.event) fanout_.publish(*m.event);
                               done(json::value(json::object{{"removed", m.member.user_id}}));
                             }));
    }));
  });
}

void ChatService::set_role(const Caller& caller, const json::object& args, Respond done) {
  auto id = required_int(args, "conversation_id");
  if (!id) return done(id.error());
  auto user = required_string(args, "user_id");
  if (!user) return done(user.error());
  auto role_name = required_string(args, "role");
  if (!role_name) return done(role_name.error());
  auto role = parse_role(*role_name);
  if (!role) return done(field_error("role", "must be \"member\", \"admin\" or \"owner\""));
  with_member(*id, caller.user, done, [this, id = *id, user = *user, role = *role, caller, done](Member me) {
    if (me.role < Role::admin) return done(forbidden("only admins and owners set roles"));
    if (role > me.role) return done(forbidden("you cannot grant a role above your own"));
    storage_.get_member(id, user, then_or_fail<Member>(done, [this, id, role, me, caller, done](Member target) {
      if (target.role > me.role || (target.role == me.role && me.role != Role::owner && target.user_id != caller.user)) {
        return done(forbidden("you cannot change the role of a member ranked at or above you"));
      }
      storage_.set_member(Member{id, target.user_id, role, 0},
                          draft("member.role", caller.user, member_payload(target.user_id, role)),
                          then_or_fail<MemberChange>(done, [this, done](MemberChange m) {
                            if (m.event) fanout_.publish(*m.event);
                            done(json::value(json::object{{"member", to_json(m.member)}, {"changed", m.changed}}));
                          }));
    }));
  });
}

void ChatService::send_message(const Caller& caller, const json::object& args, Respond done) {
  auto id = required_int(args, "conversation_id");
  if (!id) return done(id.error());
  auto text = optional_string(args, "text");
  if (!text) return done(text.error());
  auto reply_to = optional_int(args, "reply_to");
  if (!reply_to) return done(reply_to.error());
  auto key = optional_string(args, "client_key");
  if (!key) return done(key.error());
  if (key->value_or("").size() > 128) return done(field_error("client_key", "longer than 128 bytes"));
  auto attachments = validate_attachments(args);
  if (!attachments) return done(attachments.error());
  std::string body = text->value_or("");
  if (body.size() > static_cast<std::size_t>(config_.max_text_bytes)) {
    return done(Error{Errc::too_large, "text: " + std::to_string(body.size()) + " bytes, the limit is " +
                                           std::to_string(config_.max_text_bytes)});
  }
  if (body.empty() && *attachments == "[]") return done(field_error("text", "is required (or attachments)"));
  MessageDraft d{*id, caller.user, std::move(body), reply_to->value_or(0), std::move(*attachments), key->value_or("")};
  with_member(*id, caller.user, done, [this, d = std::move(d), caller, done](Member) mutable {
    std::int64_t started = now_ns();
    storage_.append_message(std::move(d), draft("message.new", caller.user),
                            [this, started, done](Result<MessageWrite> w) {
                              timed(started);
                              if (!w) return done(w.error());
                              if (w->changed && w->event) {
                                persisted_.add();
                                fanout_.publish(*w->event);
                              }
                              json::object r;
                              r["message"] = to_json(w->message);
                              // Only the sender sees its key; events carry none.
                              if (!w->message.client_key.empty()) {
                                r["message"].as_object()["client_key"] = w->message.client_key;
                              }
                              r["seq"] = w->message.seq;
                              r["duplicate"] = !w->changed;
                              done(json::value(std::move(r)));
                            });
  });
}

void ChatService::edit_message(const Caller& caller, const json::object& args, Respond done) {
  auto id = required_int(args, "message_id");
  if (!id) return done(id.error());
  auto text = required_string(args, "text");
  if (!text) return done(text.error());
  if (text->empty()) return done(field_error("text", "must not be empty (delete the message instead)"));
  if (text->size() > static_cast<std::size_t>(config_.max_text_bytes)) {
    return done(Error{Errc::too_large, "text: longer than " + std::to_string(config_.max_text_bytes) + " bytes"});
  }
  storage_.get_message(*id, then_or_fail<Message>(done, [this, caller, text = *text, done](Message m) {
    with_member(m.conversation_id, caller.user, done, [this, m, caller, text, done](Member) {
      if (m.author != caller.user) return done(forbidden("only the author edits a message"));
      storage_.edit_message(m.id, text, draft("message.edit", caller.user),
                            then_or_fail<MessageWrite>(done, [this, done](MessageWrite w) {
                              if (w.event) fanout_.publish(*w.event);
                              done(json::value(json::object{{"message", to_json(w.message)}}));
                            }));
    });
  }));
}

void ChatService::delete_message(const Caller& caller, const json::object& args, Respond done) {
  auto id = required_int(args, "message_id");
  if (!id) return done(id.error());
  storage_.get_message(*id, then_or_fail<Message>(done, [this, caller, done](Message m) {
    with_member(m.conversation_id, caller.user, done, [this, m, caller, done](Member me) {
      if (m.author != caller.user && me.role < Role::admin) {
        return done(forbidden("only the author or an admin deletes a message"));
      }
      storage_.delete_message(m.id, draft("message.delete", caller.user),
                              then_or_fail<MessageWrite>(done, [this, done](MessageWrite w) {
                                if (w.event) fanout_.publish(*w.event);
                                done(json::value(json::object{{"message", to_json(w.message)}, {"changed", w.changed}}));
                              }));
    });
  }));
}

namespace {

std::vector<std::string> decoration_fields(const std::vector<Feature*>& features) {
  std::vector<std::string> fields;
  for (Feature* f : features) fields.push_back(f->decoration_field());
  return fields;
}

}  // namespace

void ChatService::decorate(ConversationId id, json::array events, std::function<void(json::array)> done) {
  const auto& decorators = features_.decorators();
  std::vector<MessageId> ids;
  for (const auto& e : events) {
    if (const auto* m = e.as_object().if_contains("message")) ids.push_back(m->as_object().at("id").as_int64());
  }
  if (decorators.empty() || ids.empty()) return done(std::move(events));
  gather<std::vector<MessageDecoration>>(
      decorators.size(),
      [this, &decorators, id, &ids](std::size_t i, Completion<std::vector<MessageDecoration>> next) {
        features_.decorate(*decorators[i], id, ids, next);
      },
      [fields = decoration_fields(decorators), events = std::move(events),
       done = std::move(done)](std::vector<Result<std::vector<MessageDecoration>>> all) mutable {
        for (std::size_t f = 0; f < all.size(); ++f) {
          if (!all[f]) continue;  // a failing feature leaves its field out
          std::map<MessageId, const std::string*> by_id;
          for (const auto& d : all[f].value()) by_id[d.message_id] = &d.json;
          for (auto& e : events) {
            auto* m = e.as_object().if_contains("message");
            if (!m) continue;
            auto it = by_id.find(m->as_object().at("id").as_int64());
            if (it == by_id.end()) continue;
            std::error_code ec;
            auto value = json::parse(*it->second, ec);
            if (!ec) m->as_object()[fields[f]] = std::move(value);
          }
        }
        done(std::move(events));
      });
}

void ChatService::history(const Caller& caller, const json::object& args, Respond done) {
  auto id = required_int(args, "conversation_id");
  if (!id) return done(id.error());
  auto before = optional_int(args, "before");
  if (!before) return done(before.error());
  auto after = optional_int(args, "after");
  if (!after) return done(after.error());
  if (*before && *after) return done(field_error("before", "give before or after, not both"));
  auto limit = optional_int(args, "limit");
  if (!limit) return done(limit.error());
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
  with_member(*id, caller.user, done, [this, q, done](Member) {
    storage_.read_events(q, then_or_fail<EventPage>(done, [this, q, done](EventPage page) {
      json::array events;
      for (const auto& e : page.events) events.push_back(to_json(e));
      decorate(q.conversation_id, std::move(events), [page, done](json::array decorated) {
        json::object r;
        r["events"] = std::move(decorated);
        r["epoch"] = page.epoch;
        r["last_seq"] = page.last_seq;
        r["more"] = page.more;
        done(json::value(std::move(r)));
      });
    }));
  });
}

void ChatService::presence(const Caller& caller, const json::object& args, Respond done) {
  auto id = required_int(args, "conversation_id");
  if (!id) return done(id.error());
  with_member(*id, caller.user, done, [this, id = *id, done](Member) {
    storage_.list_members(id, then_or_fail<std::vector<Member>>(done, [this, id, done](std::vector<Member> members) {
      json::array online;
      for (const auto& m : members) {
        if (presence_.online(m.user_id)) online.emplace_back(m.user_id);
      }
      done(json::value(json::object{{"conversation_id", id}, {"online", std::move(online)}}));
    }));
  });
}

}  // namespace switchboard::host
