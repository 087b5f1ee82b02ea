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
  open(session).start(chat_.faults());
}

namespace {

// Runs `f` on the session's worker (in order with everything else posted to
// the session) and then goes on. Only `f` is sure to run on the worker: the
// flow goes on wherever the completion found it. If the session's worker
// drops `f` (it stopped), the flow ends there (it is destroyed).
template <class F>
auto on_worker(const std::shared_ptr<WsSession>& session, F f) {
  return completion<bool>([session, f = std::move(f)](Completion<bool> done) mutable {
    session->post([f = std::move(f), done = std::move(done)](WsSession& s) mutable {
      f(s);
      done(true);
    });
  });
}

// Ends a replay that did not recover: the client learns why (and its
// position's stream), then live events flow again.
// `replayed_up_to`: the events already sent (held live ones up to it are
// not sent twice).
void not_recovered(const std::shared_ptr<WsSession>& session, ConversationId id, std::string epoch, Seq last_seq,
                   const char* reason, Seq replayed_up_to) {
  session->post([id, epoch = std::move(epoch), last_seq, reason, replayed_up_to](WsSession& s) {
    s.send_text(resume_frame(id, false, epoch, last_seq, reason));
    s.end_replay(id, replayed_up_to, false);
  });
}

}  // namespace

// The session receives its user's conversations; commands are read once all
// are subscribed, so nothing sent after `hello` is missed.
Flow<bool> CommandDispatcher::open(std::shared_ptr<WsSession> session) {
  constexpr int kPage = 1000;
  ConversationId after = 0;
  std::size_t total = 0;
  for (;;) {
    auto page = co_await storage_.list_conversations(session->user(), ConversationPage{after, kPage});
    if (!page) {
      log_.warn("cannot load a session's conversations", {{"user", session->user()}, {"error", page.error().message}});
      session->post([](WsSession& s) { s.close(close_code::internal_error, "storage unavailable, retry"); });
      co_return false;
    }
    total += page->size();
    const bool last = page->size() < static_cast<std::size_t>(kPage);
    auto subscribed = co_await on_worker(session, [&](WsSession& s) {
      // Closed meanwhile: detached from its worker, it must not be
      // subscribed again (the worker would keep a pointer to it).
      if (s.finished()) return;
      for (const auto& c : *page) s.worker().subscribe(&s, c.id, c.last_seq);
      if (last) {
        s.send_text(hello(s, total));
        s.ready();
        // Announced online now that its conversations are loaded: the
        // announcement needs no storage read for them.
        presence_.session_ready(s.user(), s.conversations());
      }
    });
    if (!subscribed) co_return false;
    if (last) co_return true;
    after = page->back().id;
  }
}

std::string CommandDispatcher::hello(const WsSession& session, std::size_t conversations) const {
  json::object limits;
  limits["max_frame_bytes"] = config_.server.max_frame_bytes;
  limits["max_text_bytes"] = config_.chat.max_text_bytes;
  limits["commands_per_second"] = config_.server.commands_per_second;
  limits["resume_window"] = config_.chat.resume_window;
  limits["history_max"] = config_.chat.history_max;
  limits["command_burst"] = config_.server.command_burst;
  json::object hello;
  hello["type"] = "hello";
  hello["user_id"] = session.user();
  hello["session_id"] = session.id();
  hello["conversations"] = conversations;
  hello["limits"] = std::move(limits);
  return json::serialize(hello);
}

void CommandDispatcher::on_closed(WsSession& session) {
  --live_;
  presence_.session_closed(session.user(), &session.conversations());
  features_.session_closed(Caller{session.user(), session.id()});
}

void CommandDispatcher::on_message(const std::shared_ptr<WsSession>& session, std::string_view text,
                                   bool rate_limited) {
  auto decoded = decode_command(text);
  if (auto* refused = std::get_if<std::string>(&decoded)) return session->send_text(*refused);
  CommandFrame& cf = std::get<CommandFrame>(decoded);
  json::object& command = cf.frame.as_object();
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
  // The one place a command's answer is sent. It holds the session weakly:
  // a plugin may keep it (in a timer, in its own state) past the session
  // and even past the host.
  auto reply = [weak = std::weak_ptr<WsSession>(session), cid, pending,
                &duplicates = firewall_.duplicate_answers](Result<json::value> r) {
    if (pending->answered.exchange(true)) {
      duplicates.add();
      return;
    }
    if (auto s = weak.lock()) {
      s->post([pending, frame = r ? ack_frame(cid, r.value()) : error_frame(cid, error_code(r.code()), r.error().message)](
                  WsSession& session) { session.answer(pending, frame); });
    }
  };

  if (kind == "subscribe") {
    auto positions = decode_positions(command);
    if (!positions) return reply(positions.error());
    // Each position costs storage reads: charged by cost, one command token
    // per 100 positions beyond the first (the rate limit then holds).
    session->charge(static_cast<double>(positions->size()) / 100.0);
    session->run_alone(pending);
    return resume(session, pending, std::move(positions.value())).answer(reply, chat_.faults());
  }
  // Its answer may be megabytes (history_max events of max_text_bytes):
  // one at a time, later commands behind it.
  if (kind == "history") session->run_alone(pending);
  if (auto op = operations_.find(kind); op != operations_.end()) {
    return (chat_.*(op->second))(std::move(caller), std::move(command)).answer(reply, chat_.faults());
  }
  if (auto feature = features_.for_command(kind)) {
    features_.handle_command(*feature, caller, Command{kind, text}, [reply](Result<std::string> r) {
      if (!r) return reply(r.error());
      std::error_code pec;
      json::value result = json::parse(r.value(), pec);
      reply(pec ? json::value(json::object{}) : std::move(result));
    });
    return;
  }
  pending->answered = true;
  session->answer(pending, error_frame(cid, "unknown_type", "unknown command type \"" + std::string(kind) + "\""));
}

Flow<json::value> CommandDispatcher::resume(std::shared_ptr<WsSession> session, std::shared_ptr<PendingAnswer> pending,
                                            std::vector<Position> positions) {
  for (const Position& p : positions) {
    pending->progressed();
    co_await replay(session, pending, p);
  }
  co_return json::value(json::object{{"resumed", positions.size()}});
}

// Exactly the events after p.seq, in order, then `resume` with recovered
// true — or recovered false when the stream changed or the gap is too large.
Flow<bool> CommandDispatcher::replay(std::shared_ptr<WsSession> session, std::shared_ptr<PendingAnswer> pending,
                                     Position p) {
  const ConversationId id = p.conversation_id;
  auto member = co_await storage_.get_member(id, session->user());
  if (!member) {
    session->post_text(resume_frame(id, false, "", 0, member.code() == Errc::not_found ? "forbidden" : "unavailable"));
    co_return false;
  }
  // Hold live events back first, then read: nothing falls in between.
  auto held = co_await completion<bool>([&](Completion<bool> done) {
    session->post([id, done = std::move(done)](WsSession& s) { done(s.begin_replay(id)); });
  });
  if (!held) co_return false;
  if (!*held) {
    // Another subscribe replays it now (one that timed out, say).
    session->post_text(resume_frame(id, false, "", 0, "a replay of this conversation is already running"));
    co_return false;
  }
  Seq upto = p.seq;  // the last event replayed
  // However this flow ends — a storage completion dropped, an exception —
  // the conversation's live events flow again and the client is told.
  struct Guard {
    std::shared_ptr<WsSession> session;
    ConversationId id;
    const Seq& upto;
    bool armed = true;
    ~Guard() {
      if (armed) not_recovered(session, id, "", 0, "unavailable", upto);
    }
  } guard{session, id, upto};

  auto conversation = co_await storage_.get_conversation(id);
  if (!conversation) co_return false;  // the guard says "unavailable"
  const char* reason = nullptr;
  if (conversation->epoch != p.epoch) {
    reason = "epoch changed";
  } else if (p.seq > conversation->last_seq || p.seq < 0) {
    reason = "position is ahead of the stream";
  } else if (conversation->last_seq - p.seq > config_.chat.resume_window) {
    reason = "gap larger than the resume window";
  }
  if (reason) {
    guard.armed = false;
    not_recovered(session, id, conversation->epoch, conversation->last_seq, reason, conversation->last_seq);
    co_return false;
  }
  // Page by page as the socket drains: a replay of resume_window events
  // of max_text_bytes each holds one page at a time, whatever the client's
  // speed. Live events held meanwhile that overflow the bound are read
  // from storage in further rounds; a client slower than its
  // conversation's live traffic never catches up and is closed as slow.
  enum Step { more, done, stopped };
  int rounds = 0;  // pages read after the first catch-up attempt failed
  for (;;) {
    auto page = co_await storage_.read_events(EventQuery{id, Direction::forward, upto, kReplayPage});
    if (!page) co_return false;  // the guard says "unavailable"
    pending->progressed();
    std::vector<std::string> frames;
    for (const auto& e : page->events) {
      frames.push_back(event_frame(e));
      upto = e.seq;
    }
    bool caught_up = !page->more || page->events.empty();
    if (caught_up) ++rounds;
    std::string epoch = std::move(page->epoch);
    Seq last_seq = std::max(page->last_seq, upto);
    page = EventPage{};  // the frames are all this step holds
    auto step = co_await completion<int>([&](Completion<int> next) {
      session->post([frames = std::move(frames), caught_up, rounds, id, upto, epoch, last_seq, pending,
                     next = std::move(next), queue = config_.server.outbound_queue_bytes](WsSession& s) mutable {
        // Closing, or the command was answered `internal` at its deadline:
        // nobody waits for the rest.
        if (!s.open() || pending->answered.load()) {
          s.end_replay(id, upto, false);
          return next(stopped);
        }
        for (const auto& f : frames) s.send_text(f);
        // Caught up, and no held event dropped beyond: the held ones follow.
        if (caught_up && s.end_replay(id, upto)) {
          s.send_text(resume_frame(id, true, epoch, last_seq));
          return next(done);
        }
        if (rounds > kMaxCatchUpRounds) {
          s.close(close_code::policy_violation, "slow consumer: a resume did not catch up with live events (more than " +
                                                    std::to_string(queue) + " bytes waiting)");
          return next(stopped);
        }
        s.when_drained([pending, next = std::move(next)] {
          pending->progressed();  // the client reads: the command goes on
          next(more);
        });
      });
    });
    if (!step) co_return false;
    if (*step == more) continue;
    guard.armed = false;
    co_return *step == done;
  }
}

}  // namespace switchboard::host
