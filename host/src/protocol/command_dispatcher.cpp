#include "protocol/command_dispatcher.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include "protocol/command_frame.hpp"
#include "protocol/fields.hpp"
#include "protocol/json_codec.hpp"

namespace switchboard::host {

namespace json = boost::json;

namespace {

std::string resume_frame(ConversationId id, bool recovered, const std::string& epoch, Seq last_seq,
                         std::string_view reason = {}) {
  json::object o;
  o["type"] = "resume";
  o["conversation_id"] = id;
  o["recovered"] = recovered;
  o["epoch"] = epoch;
  o["last_seq"] = last_seq;
  if (!reason.empty()) o["reason"] = reason;
  return json::serialize(o);
}

}  // namespace

CommandDispatcher::CommandDispatcher(ChatService& chat, FeatureRegistry& features, Storage& storage,
                                     Presence& presence, const HostConfig& config, Logger& log,
                                     FirewallMetrics firewall)
    : chat_(chat),
      features_(features),
      storage_(storage),
      presence_(presence),
      config_(config),
      log_(log),
      firewall_(firewall) {
  for (const auto& [type, op] : ChatService::operations()) operations_.emplace(type, op);
}

void CommandDispatcher::on_open(const std::shared_ptr<WsSession>& session) {
  ++live_;
  presence_.session_opened(session->user());
  features_.session_opened(Caller{session->user(), session->id()});
  load_conversations(session, 0, 0);
}

// The session receives its user's conversations; commands are read once all
// are subscribed, so nothing sent after `hello` is missed.
void CommandDispatcher::load_conversations(std::shared_ptr<WsSession> session, ConversationId after,
                                           std::size_t loaded) {
  constexpr int kPage = 1000;
  storage_.list_conversations(
      session->user(), ConversationPage{after, kPage},
      [this, session, loaded](Result<std::vector<Conversation>> r) {
        if (!r) {
          log_.warn("cannot load a session's conversations", {{"user", session->user()}, {"error", r.error().message}});
          session->post([](WsSession& s) { s.close(close_code::internal_error, "storage unavailable, retry"); });
          return;
        }
        std::vector<std::pair<ConversationId, Seq>> ids;  // and each one's last seq
        for (const auto& c : r.value()) ids.emplace_back(c.id, c.last_seq);
        bool more = ids.size() == static_cast<std::size_t>(kPage);
        ConversationId last = ids.empty() ? 0 : ids.back().first;
        std::size_t total = loaded + ids.size();
        session->post([this, ids = std::move(ids), more, last, total](WsSession& s) {
          for (const auto& [id, last_seq] : ids) s.worker().subscribe(&s, id, last_seq);
          if (more) {
            load_conversations(s.shared_from_this(), last, total);
            return;
          }
          json::object hello;
          hello["type"] = "hello";
          hello["user_id"] = s.user();
          hello["session_id"] = s.id();
          hello["conversations"] = total;
          json::object limits;
          limits["max_frame_bytes"] = config_.server.max_frame_bytes;
          limits["max_text_bytes"] = config_.chat.max_text_bytes;
          limits["commands_per_second"] = config_.server.commands_per_second;
          limits["resume_window"] = config_.chat.resume_window;
          hello["limits"] = std::move(limits);
          s.send_text(json::serialize(hello));
          s.ready();
        });
      });
}

void CommandDispatcher::on_closed(WsSession& session) {
  --live_;
  presence_.session_closed(session.user());
  features_.session_closed(Caller{session.user(), session.id()});
}

void CommandDispatcher::on_message(const std::shared_ptr<WsSession>& session, std::string_view text,
                                   bool rate_limited) {
  auto decoded = decode_command(text);
  if (auto* refused = std::get_if<std::string>(&decoded)) return session->send_text(*refused);
  CommandFrame& cf = std::get<CommandFrame>(decoded);
  const json::object& command = cf.args();
  const json::value& cid = cf.id;

  if (rate_limited) {
    return session->send_text(error_frame(cid, "rate_limited",
                                          "more than " + std::to_string(config_.server.commands_per_second) +
                                              " commands per second; slow down"));
  }
  std::string_view kind = cf.type;
  if (kind == "ping") return session->send_text(ack_frame(cid, json::object{}));
  Caller caller{session->user(), session->id()};
  // Exactly one answer per command: the first one is sent, later ones are
  // dropped and counted; past the deadline the session answers `internal`.
  auto pending = session->expect_answer(error_frame(
      cid, "internal", "no answer within " + std::to_string(config_.server.command_timeout_seconds) + " s"));
  // The reply holds the session weakly: a plugin may keep it (in a timer, in
  // its own state) past the session and even past the host.
  auto reply = [weak = std::weak_ptr<WsSession>(session), cid, pending,
                &duplicates = firewall_.duplicate_answers](Result<json::value> r) {
    if (pending->answered.exchange(true)) {
      duplicates.add();
      return;
    }
    if (auto s = weak.lock()) {
      s->post_text(r ? ack_frame(cid, r.value()) : error_frame(cid, error_code(r.code()), r.error().message));
    }
  };


  if (kind == "subscribe") {
    auto positions = decode_positions(command);
    if (!positions) return reply(positions.error());
    // Each position costs storage reads: charged by cost, one command token
    // per 100 positions beyond the first (the rate limit then holds).
    session->charge(static_cast<double>(positions->size()) / 100.0);
    return resume(session, pending, cid, std::move(positions.value()), 0);
  }
  if (auto op = operations_.find(kind); op != operations_.end()) {
    return (chat_.*(op->second))(caller, command, reply);
  }
  if (Feature* feature = features_.for_command(kind)) {
    features_.handle_command(*feature, caller, Command{kind, text}, [reply](Result<std::string> r) {
      if (!r) return reply(r.error());
      std::error_code pec;
      json::value result = json::parse(r.value(), pec);
      reply(pec ? json::value(json::object{}) : std::move(result));
    });
    return;
  }
  pending->answered = true;
  session->send_text(error_frame(cid, "unknown_type", "unknown command type \"" + std::string(kind) + "\""));
}

void CommandDispatcher::resume(std::shared_ptr<WsSession> session, std::shared_ptr<PendingAnswer> pending,
                               json::value id, std::vector<Position> positions, std::size_t next) {
  if (next == positions.size()) {
    if (!pending->answered.exchange(true)) {
      session->post_text(ack_frame(id, json::object{{"resumed", positions.size()}}));
    }
    return;
  }
  pending->progressed();
  Position p = positions[next];
  replay(session, p, [this, session, pending, id, positions = std::move(positions), next]() mutable {
    resume(session, pending, id, std::move(positions), next + 1);
  });
}

// Exactly the events after p.seq, in order, then `resume` with recovered
// true — or recovered false when the stream changed or the gap is too large.
void CommandDispatcher::replay(std::shared_ptr<WsSession> session, Position p, std::function<void()> then) {
  storage_.get_member(p.conversation_id, session->user(), [this, session, p, then](Result<Member> member) {
    if (!member) {
      session->post_text(resume_frame(p.conversation_id, false, "", 0,
                                      member.code() == Errc::not_found ? "forbidden" : "unavailable"));
      return then();
    }
    // Hold live events back first, then read: nothing falls in between.
    session->post([this, session, p, then](WsSession& s) {
      s.begin_replay(p.conversation_id);
      storage_.get_conversation(p.conversation_id, [this, session, p, then](Result<Conversation> c) {
        if (!c) {
          session->post([p](WsSession& s) {
            s.send_text(resume_frame(p.conversation_id, false, "", 0, "unavailable"));
            s.end_replay(p.conversation_id, 0);
          });
          return then();
        }
        const char* reason = nullptr;
        if (c->epoch != p.epoch) {
          reason = "epoch changed";
        } else if (p.seq > c->last_seq || p.seq < 0) {
          reason = "position is ahead of the stream";
        } else if (c->last_seq - p.seq > config_.chat.resume_window) {
          reason = "gap larger than the resume window";
        }
        if (reason) {
          session->post([p, conversation = c.value(), reason](WsSession& s) {
            s.send_text(resume_frame(p.conversation_id, false, conversation.epoch, conversation.last_seq, reason));
            s.end_replay(p.conversation_id, conversation.last_seq);
          });
          return then();
        }
        replay_page(session, p, p.seq, then);
      });
    });
  });
}

void CommandDispatcher::replay_page(std::shared_ptr<WsSession> session, Position p, Seq from,
                                    std::function<void()> then) {
  storage_.read_events(EventQuery{p.conversation_id, Direction::forward, from, 200},
                       [this, session, p, then](Result<EventPage> page) {
                         if (!page) {
                           session->post([p](WsSession& s) {
                             s.send_text(resume_frame(p.conversation_id, false, "", 0, "unavailable"));
                             s.end_replay(p.conversation_id, 0);
                           });
                           return then();
                         }
                         std::vector<std::string> frames;
                         Seq last = 0;
                         for (const auto& e : page->events) {
                           frames.push_back(event_frame(e));
                           last = e.seq;
                         }
                         bool more = page->more;
                         Seq last_seq = page->last_seq;
                         std::string epoch = page->epoch;
                         session->post([frames = std::move(frames)](WsSession& s) {
                           for (const auto& f : frames) s.send_text(f);
                         });
                         if (more && last > 0) return replay_page(session, p, last, then);
                         Seq upto = last > 0 ? last : p.seq;
                         session->post([p, epoch, last_seq, upto](WsSession& s) {
                           s.end_replay(p.conversation_id, upto);
                           s.send_text(resume_frame(p.conversation_id, true, epoch, std::max(last_seq, upto)));
                         });
                         then();
                       });
}

}  // namespace switchboard::host
