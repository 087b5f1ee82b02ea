#include "reactions_feature.hpp"

#include <boost/json.hpp>
#include <map>

namespace reactions {

namespace json = boost::json;
using namespace switchboard;

namespace {

constexpr const char* kFeature = "reactions";

Error bad(std::string message) { return Error{Errc::bad_request, std::move(message)}; }

// Unique per (message, user, emoji); the user's length keeps it unambiguous.
std::string record_key(MessageId message, const UserId& user, const std::string& emoji) {
  return std::to_string(message) + ":" + std::to_string(user.size()) + ":" + user + emoji;
}

}  // namespace

ReactionsFeature::ReactionsFeature(PluginContext& context)
    : max_emoji_bytes_(static_cast<std::size_t>(context.config().integer_or("max_emoji_bytes", 64))),
      reactions_(context.metrics().counter("feature_reactions_changed_total", "Reactions added or removed")) {
  if (max_emoji_bytes_ < 1 || max_emoji_bytes_ > 256) context.config().fail("max_emoji_bytes", "must be 1 to 256");
}

std::vector<HttpRoute> ReactionsFeature::http_routes() const {
  return {{"POST", "/messages/:id/reactions"}, {"DELETE", "/messages/:id/reactions/:emoji"}};
}

void ReactionsFeature::handle_command(const Caller& caller, const Command& command, Reply reply) {
  std::error_code ec;
  json::value frame = json::parse(command.frame, ec);
  if (ec || !frame.is_object()) return reply(bad("malformed command"));
  const auto& o = frame.as_object();
  const auto* id = o.if_contains("message_id");
  if (!id || !id->is_int64()) return reply(bad("message_id: is required (an integer)"));
  const auto* emoji = o.if_contains("emoji");
  if (!emoji || !emoji->is_string()) return reply(bad("emoji: is required (a string)"));
  react(caller.user, id->as_int64(), std::string(emoji->as_string()), command.type == "reaction.add", std::move(reply));
}

void ReactionsFeature::handle_http(const Caller& caller, const HttpRequest& request, HttpReply reply) {
  MessageId message = 0;
  std::string emoji;
  for (const auto& [k, v] : request.params) {
    if (k == "id") {
      try {
        message = std::stoll(v);
      } catch (...) {
        message = -1;
      }
    }
    if (k == "emoji") emoji = v;
  }
  if (message <= 0) return reply(HttpResponse{400, error_json(bad("message id: expected an integer"))});
  bool add = request.method == "POST";
  if (add) {
    std::error_code ec;
    json::value body = json::parse(request.body, ec);
    const json::value* e = (!ec && body.is_object()) ? body.as_object().if_contains("emoji") : nullptr;
    if (!e || !e->is_string()) return reply(HttpResponse{400, error_json(bad("emoji: is required (a string)"))});
    emoji = std::string(e->as_string());
  }
  react(caller.user, message, std::move(emoji), add, [reply, add](Result<std::string> r) {
    if (!r) return reply(HttpResponse{http_status(r.code()), error_json(r.error())});
    reply(HttpResponse{add ? 201 : 200, std::move(r.value())});
  });
}

void ReactionsFeature::react(const UserId& user, MessageId message, std::string emoji, bool add, Reply reply) {
  if (emoji.empty()) return reply(bad("emoji: must not be empty"));
  if (emoji.size() > max_emoji_bytes_) {
    return reply(Error{Errc::too_large, "emoji: longer than " + std::to_string(max_emoji_bytes_) + " bytes"});
  }
  Storage& storage = host_->storage();
  storage.get_message(message, [this, &storage, user, message, emoji = std::move(emoji), add,
                                reply](Result<Message> m) mutable {
    if (!m) return reply(m.error());
    if (m->deleted) return reply(Error{Errc::not_found, "message " + std::to_string(message) + " is deleted"});
    ConversationId conversation = m->conversation_id;
    storage.get_member(conversation, user, [this, &storage, user, message, conversation, emoji = std::move(emoji), add,
                                            reply](Result<Member> member) mutable {
      if (!member) {
        if (member.code() == Errc::not_found) {
          return reply(Error{Errc::forbidden, "not a member of this message's conversation"});
        }
        return reply(member.error());
      }
      json::object payload{{"message_id", message}, {"emoji", emoji}, {"user_id", user}};
      RecordChange change;
      change.op = add ? RecordOp::insert : RecordOp::remove;
      change.record = Record{kFeature, conversation, record_key(message, user, emoji), message, user, 0, emoji, 0};
      change.event = EventDraft{add ? "reaction.add" : "reaction.remove", user, message, json::serialize(payload)};
      storage.change_record(std::move(change), [this, message, emoji, reply](Result<RecordOutcome> r) {
        if (!r) return reply(r.error());
        json::object result{{"message_id", message}, {"emoji", emoji}, {"changed", r->changed}};
        if (r->event) {
          reactions_.add();
          result["seq"] = r->event->seq;
          host_->publish_event(*r->event);
        }
        reply(json::serialize(result));
      });
    });
  });
}

void ReactionsFeature::decorate(ConversationId conversation, std::vector<MessageId> messages,
                                Completion<std::vector<MessageDecoration>> done) {
  RecordQuery q;
  q.feature = kFeature;
  q.conversation_id = conversation;
  q.message_ids = std::move(messages);
  q.limit = 100000;
  host_->storage().list_records(std::move(q), [done](Result<std::vector<Record>> r) {
    if (!r) return done(r.error());
    // {"👍": ["alice", "bob"], ...} per message, users in key order.
    std::map<MessageId, json::object> by_message;
    for (const auto& rec : r.value()) {
      auto& emojis = by_message[rec.message_id];
      auto it = emojis.find(rec.value);
      if (it == emojis.end()) it = emojis.emplace(rec.value, json::array()).first;
      it->value().as_array().emplace_back(rec.user);
    }
    std::vector<MessageDecoration> out;
    for (auto& [id, emojis] : by_message) out.push_back(MessageDecoration{id, json::serialize(emojis)});
    done(std::move(out));
  });
}

}  // namespace reactions

SWITCHBOARD_PLUGIN(feature, "feature-reactions", "0.1.0", reactions::ReactionsFeature)
