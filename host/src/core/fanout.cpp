#include "core/fanout.hpp"

#include <boost/json/parse.hpp>
#include <chrono>

#include "core/bus_wire.hpp"
#include "net/ws_frame.hpp"
#include "protocol/json_codec.hpp"

namespace switchboard::host {

using wire::put;
using wire::take;
using wire::take_number;
using wire::take_users;

DeliveryMeta delivery_meta(const Event& event) {
  DeliveryMeta meta;
  meta.seq = event.seq;
  bool join = event.type == "member.join";
  bool leave = event.type == "member.leave";
  bool create = event.type == "conversation.create";
  if (!join && !leave && !create) return meta;
  std::error_code ec;
  auto payload = boost::json::parse(event.payload, ec);
  if (ec || !payload.is_object()) return meta;
  const auto& o = payload.as_object();
  if (create) {
    if (auto* members = o.if_contains("members"); members && members->is_array()) {
      for (const auto& m : members->as_array()) {
        if (m.is_string()) meta.join.emplace_back(m.as_string());
      }
    }
  } else if (auto* user = o.if_contains("user_id"); user && user->is_string()) {
    (join ? meta.join : meta.leave).emplace_back(user->as_string());
  }
  return meta;
}

Fanout::Fanout(Bus& bus, Storage& storage, Logger& log, Metrics& metrics, std::string origin)
    : bus_(bus),
      storage_(storage),
      log_(log),
      metrics_(metrics),
      origin_(std::move(origin)),
      deliveries_(metrics.counter("fanout_deliveries_total", "Event frames handed to local sessions")),
      bus_errors_(metrics.counter("bus_publish_errors_total", "Publishes the bus refused")),
      bus_seconds_(metrics.histogram("bus_publish_seconds", "Time to hand one event to the bus")) {}

void Fanout::set_workers(std::vector<Worker*> workers, std::chrono::milliseconds reorder_wait) {
  workers_ = std::move(workers);
  sequencer_ = std::make_unique<EventSequencer>(
      workers_.front()->io(), reorder_wait,
      [this](ConversationId id, SequencedEvent e) { deliver_local(id, std::move(e.frame), std::move(e.meta)); },
      [this](ConversationId id, Seq after, Seq before, std::function<void(std::vector<SequencedEvent>)> done) {
        fill_gap(id, after, before, std::move(done));
      },
      metrics_);
}

void Fanout::start() {
  if (auto s = bus_.subscribe(kJoinsSubject); !s) {
    log_.warn("bus subscribe failed: members joining on other hosts will not be told live",
              {{"subject", kJoinsSubject}, {"error", s.error().message}});
  }
}

void Fanout::stop() {
  if (sequencer_) sequencer_->stop();
}

// Events a gap lacks, from storage, framed as their publisher framed them.
void Fanout::fill_gap(ConversationId id, Seq after, Seq before, std::function<void(std::vector<SequencedEvent>)> done) {
  int limit = static_cast<int>(std::min<Seq>(before - after - 1, 1000));
  storage_.read_events(EventQuery{id, Direction::forward, after, limit},
                       [this, id, before, done = std::move(done)](Result<EventPage> page) {
                         std::vector<SequencedEvent> out;
                         if (!page) {
                           log_.warn("cannot fill a gap in a conversation's events from storage",
                                     {{"conversation_id", std::to_string(id)}, {"error", page.error().message}});
                         } else {
                           for (const auto& e : page->events) {
                             if (e.seq >= before) break;
                             out.push_back(SequencedEvent{shared_frame(Opcode::text, event_frame(e)),
                                                          std::make_shared<const DeliveryMeta>(delivery_meta(e))});
                           }
                         }
                         done(std::move(out));
                       });
}

void Fanout::publish(const Event& event) {
  std::string json = event_frame(event);
  auto meta = std::make_shared<const DeliveryMeta>(delivery_meta(event));
  sequencer_->offer(event.conversation_id, SequencedEvent{shared_frame(Opcode::text, json), meta});
  send_to_bus(event.conversation_id, *meta, json);
  if (local_event_) local_event_(event);
}

void Fanout::deliver_ephemeral_here(ConversationId id, std::string_view json, const UserId& except) {
  auto meta = std::make_shared<DeliveryMeta>();
  meta->except = except;
  deliver_local(id, shared_frame(Opcode::text, json), meta);
}

void Fanout::publish_ephemeral(ConversationId id, std::string_view json, const UserId& except, const UserId& only) {
  auto meta = std::make_shared<DeliveryMeta>();
  meta->except = except;
  meta->only = only;
  deliver_local(id, shared_frame(Opcode::text, json), meta);
  send_to_bus(id, *meta, json);
}

void Fanout::deliver_local(ConversationId id, std::shared_ptr<const std::string> frame,
                           std::shared_ptr<const DeliveryMeta> meta) {
  for (Worker* w : workers_) {
    w->post([w, id, frame, meta] { w->deliver(id, frame, meta); });
  }
}

void Fanout::send_to_bus(ConversationId id, const DeliveryMeta& meta, std::string_view json) {
  std::string payload = "SB1";
  put(payload, origin_);
  put(payload, std::to_string(id));
  put(payload, std::to_string(meta.seq));
  put(payload, meta.except);
  put(payload, meta.only);
  put(payload, std::to_string(meta.join.size()));
  for (const auto& u : meta.join) put(payload, u);
  put(payload, std::to_string(meta.leave.size()));
  for (const auto& u : meta.leave) put(payload, u);
  put(payload, json);
  auto started = std::chrono::steady_clock::now();
  // Events that add members go where every host listens: the hosts of the
  // new members may not be subscribed to this conversation yet.
  auto status = bus_.publish(meta.join.empty() ? subject(id) : std::string(kJoinsSubject), payload);
  bus_seconds_.observe(std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
  if (!status) {
    bus_errors_.add();
    log_.warn("bus publish failed; other hosts' clients will catch up on resume",
              {{"conversation_id", std::to_string(id)}, {"error", status.error().message}});
  }
}

void Fanout::on_bus_message(std::string_view subject, std::string_view payload) {
  if (!payload.starts_with("SB1")) return;
  payload.remove_prefix(3);
  std::string_view origin, except, only, json;
  std::int64_t id = 0, seq = 0;
  auto meta = std::make_shared<DeliveryMeta>();
  if (!take(payload, origin) || !take_number(payload, id) || !take_number(payload, seq) || !take(payload, except) ||
      !take(payload, only) || !take_users(payload, meta->join) || !take_users(payload, meta->leave) || !take(payload, json)) {
    log_.warn("malformed bus message ignored", {{"subject", subject}});
    return;
  }
  if (origin == origin_) return;  // delivered locally when published
  meta->seq = seq;
  meta->except = std::string(except);
  meta->only = std::string(only);
  if (seq > 0) {
    sequencer_->offer(id, SequencedEvent{shared_frame(Opcode::text, json), std::move(meta)});
  } else {
    deliver_local(id, shared_frame(Opcode::text, json), meta);
  }
}

void Fanout::add_interest(ConversationId id, Seq known_last) {
  std::lock_guard lock(interest_mutex_);
  if (interest_[id]++ == 0) {
    sequencer_->track(id, known_last);
    if (auto s = bus_.subscribe(subject(id)); !s) {
      log_.warn("bus subscribe failed", {{"conversation_id", std::to_string(id)}, {"error", s.error().message}});
    }
  }
}

void Fanout::remove_interest(ConversationId id) {
  std::lock_guard lock(interest_mutex_);
  auto it = interest_.find(id);
  if (it == interest_.end()) return;
  if (--it->second == 0) {
    interest_.erase(it);
    (void)bus_.unsubscribe(subject(id));
    sequencer_->untrack(id);
  }
}

}  // namespace switchboard::host
