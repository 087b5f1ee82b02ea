#include "pins_feature.hpp"

#include "switchboard/gather.hpp"

#include <algorithm>
#include <boost/json.hpp>

namespace pins {

namespace json = boost::json;
using namespace switchboard;

namespace {

constexpr const char* kFeature = "pins";

std::string record_key(MessageId message) { return "pin:" + std::to_string(message); }

Error bad(std::string message) { return Error{Errc::bad_request, std::move(message)}; }

std::optional<std::int64_t> int_field(const json::object& o, std::string_view key) {
  const auto* v = o.if_contains(key);
  if (v && v->is_int64()) return v->as_int64();
  if (v && v->is_string()) {
    try {
      return std::stoll(std::string(v->as_string()));
    } catch (...) {
    }
  }
  return std::nullopt;
}

// A pin is pinned when its record was written.
json::object pin_json(const Record& r) {
  return json::object{{"message_id", r.message_id}, {"pinned_by", r.user}, {"pinned_at", r.updated_at}};
}

}  // namespace

PinsFeature::PinsFeature(PluginContext& context) {
  const PluginConfig& config = context.config();
  std::string role = config.string_or("min_role", "admin");
  auto parsed = parse_role(role);
  if (!parsed) config.fail("min_role", "must be \"member\", \"admin\" or \"owner\"");
  min_role_ = *parsed;
  author_may_pin_ = config.boolean_or("author_may_pin", true);
  max_pins_ = config.integer_or("max_pins", 50);
  if (max_pins_ < 1) config.fail("max_pins", "must be at least 1");
}

std::vector<HttpRoute> PinsFeature::http_routes() const {
  return {{"GET", "/conversations/:id/pins"},
          {"POST", "/conversations/:id/pins"},
          {"DELETE", "/conversations/:id/pins/:message_id"}};
}

void PinsFeature::handle_command(const Caller& caller, const Command& command, Reply reply) {
  std::error_code ec;
  json::value frame = json::parse(command.frame, ec);
  if (ec || !frame.is_object()) return reply(bad("malformed command"));
  const auto& o = frame.as_object();
  if (command.type == "pins") {
    auto conversation = int_field(o, "conversation_id");
    if (!conversation) return reply(bad("conversation_id: is required (an integer)"));
    return list(caller.user, *conversation, std::move(reply));
  }
  auto message = int_field(o, "message_id");
  if (!message) return reply(bad("message_id: is required (an integer)"));
  pin(caller.user, *message, command.type == "pin.add", std::move(reply));
}

void PinsFeature::handle_http(const Caller& caller, const HttpRequest& request, HttpReply reply) {
  json::object params;
  for (const auto& [k, v] : request.params) params[k] = v;
  auto conversation = int_field(params, "id");
  if (!conversation) return reply(HttpResponse{400, error_json(bad("conversation id: expected an integer"))});
  auto to_http = [reply](int ok_status) {
    return [reply, ok_status](Result<std::string> r) {
      if (!r) return reply(HttpResponse{http_status(r.code()), error_json(r.error())});
      reply(HttpResponse{ok_status, std::move(r.value())});
    };
  };
  if (request.method == "GET") return list(caller.user, *conversation, to_http(200));
  std::optional<std::int64_t> message;
  if (request.method == "POST") {
    std::error_code ec;
    json::value body = json::parse(request.body, ec);
    if (!ec && body.is_object()) message = int_field(body.as_object(), "message_id");
  } else {
    message = int_field(params, "message_id");
  }
  if (!message) return reply(HttpResponse{400, error_json(bad("message_id: is required (an integer)"))});
  // The message must belong to the conversation in the path.
  host_->storage().get_message(*message, [this, caller, conversation, message, add = request.method == "POST",
                                          done = to_http(request.method == "POST" ? 201 : 200)](Result<Message> m) {
    if (m && m->conversation_id != *conversation) {
      return done(Error{Errc::not_found, "message " + std::to_string(*message) + " is not in this conversation"});
    }
    pin(caller.user, *message, add, done);
  });
}

void PinsFeature::pin(const UserId& user, MessageId message, bool add, Reply reply) {
  Storage& storage = host_->storage();
  storage.get_message(message, [this, &storage, user, message, add, reply](Result<Message> m) {
    if (!m) return reply(m.error());
    if (add && m->deleted) return reply(Error{Errc::not_found, "message " + std::to_string(message) + " is deleted"});
    Message msg = m.value();
    storage.get_member(msg.conversation_id, user, [this, &storage, user, msg, add, reply](Result<Member> member) {
      if (!member) {
        return reply(member.code() == Errc::not_found ? Error{Errc::forbidden, "not a member of this conversation"}
                                                      : member.error());
      }
      bool allowed = member->role >= min_role_ || (author_may_pin_ && msg.author == user);
      if (!allowed) {
        return reply(Error{Errc::forbidden, std::string("pinning needs the role ") + std::string(to_string(min_role_)) +
                                                (author_may_pin_ ? " (or being the author)" : "")});
      }
      auto apply = [this, &storage, user, msg, add, reply] {
        json::object payload{{"message_id", msg.id}, {"pinned_by", user}};
        RecordChange change;
        change.op = add ? RecordOp::insert : RecordOp::remove;
        change.record = Record{kFeature, msg.conversation_id, record_key(msg.id), msg.id, user, 0, "{}", 0};
        change.event = EventDraft{add ? "pin.add" : "pin.remove", user, msg.id, json::serialize(payload)};
        storage.change_record(std::move(change), [this, msg, reply](Result<RecordOutcome> r) {
          if (!r) return reply(r.error());
          json::object result{{"message_id", msg.id}, {"changed", r->changed}};
          if (r->event) {
            result["seq"] = r->event->seq;
            host_->publish_event(*r->event);
          }
          reply(json::serialize(result));
        });
      };
      if (!add) return apply();
      // Limit: counted before inserting; two racing pins may both pass.
      RecordQuery q{kFeature, msg.conversation_id, "pin:"};
      storage.list_records(q, [this, msg, apply, reply](Result<std::vector<Record>> pinned) {
        if (!pinned) return reply(pinned.error());
        bool already = std::any_of(pinned->begin(), pinned->end(), [&](const Record& r) { return r.message_id == msg.id; });
        if (!already && static_cast<std::int64_t>(pinned->size()) >= max_pins_) {
          return reply(Error{Errc::limit_reached, "this conversation already has " + std::to_string(max_pins_) + " pins"});
        }
        apply();
      });
    });
  });
}

void PinsFeature::list(const UserId& user, ConversationId conversation, Reply reply) {
  Storage& storage = host_->storage();
  storage.get_member(conversation, user, [&storage, conversation, reply](Result<Member> member) {
    if (!member) {
      return reply(member.code() == Errc::not_found ? Error{Errc::forbidden, "not a member of this conversation"}
                                                    : member.error());
    }
    storage.list_records(RecordQuery{kFeature, conversation, "pin:"}, [&storage, reply](Result<std::vector<Record>> r) {
      if (!r) return reply(r.error());
      auto pins = r.value();
      // Newest first: updated_at is when it was pinned.
      std::sort(pins.begin(), pins.end(), [](const Record& a, const Record& b) {
        return a.updated_at != b.updated_at ? a.updated_at > b.updated_at : a.message_id > b.message_id;
      });
      gather<Message>(
          pins.size(), [&storage, &pins](std::size_t i, Completion<Message> done) { storage.get_message(pins[i].message_id, done); },
          [pins, reply](std::vector<Result<Message>> messages) {
            json::array items;
            for (std::size_t i = 0; i < pins.size(); ++i) {
              json::object item = pin_json(pins[i]);
              if (messages[i]) item["text"] = messages[i]->text, item["author"] = messages[i]->author;
              items.push_back(std::move(item));
            }
            reply(json::serialize(json::object{{"pins", std::move(items)}}));
          });
    });
  });
}

void PinsFeature::on_event(const Event& event) {
  if (event.type != "message.delete" || !event.message_id) return;
  RecordChange change;
  change.op = RecordOp::remove;
  change.record = Record{kFeature, event.conversation_id, record_key(event.message_id), event.message_id, {}, 0, {}, 0};
  json::object payload{{"message_id", event.message_id}, {"reason", "message deleted"}};
  change.event = EventDraft{"pin.remove", event.actor, event.message_id, json::serialize(payload)};
  host_->storage().change_record(std::move(change), [this](Result<RecordOutcome> r) {
    if (r && r->event) host_->publish_event(*r->event);
  });
}

void PinsFeature::decorate(ConversationId conversation, std::vector<MessageId> messages,
                           Completion<std::vector<MessageDecoration>> done) {
  RecordQuery q{kFeature, conversation, "pin:", std::move(messages)};
  host_->storage().list_records(std::move(q), [done](Result<std::vector<Record>> r) {
    if (!r) return done(r.error());
    std::vector<MessageDecoration> out;
    for (const auto& rec : r.value()) out.push_back(MessageDecoration{rec.message_id, json::serialize(pin_json(rec))});
    done(std::move(out));
  });
}

}  // namespace pins

SWITCHBOARD_PLUGIN(feature, "feature-pins", "0.1.0", pins::PinsFeature)
