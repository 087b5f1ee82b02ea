#include "core/fanout.hpp"

#include <boost/json/parse.hpp>
#include <algorithm>
#include <boost/asio/post.hpp>
#include <chrono>

#include "core/bus_wire.hpp"
#include "net/ws_frame.hpp"
#include "protocol/json_codec.hpp"

namespace switchboard::host {


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

Fanout::Fanout(Bus& bus, Storage& storage, boost::asio::io_context& control, Logger& log, Metrics& metrics,
               FanoutOptions options)
    : bus_(bus),
      storage_(storage),
      control_(control),
      log_(log),
      options_(std::move(options)),
      deliveries_(metrics.counter("fanout_deliveries_total", "Event frames handed to local sessions")),
      bus_errors_(metrics.counter("bus_publish_errors_total", "Publishes the bus refused")),
      handler_failures_(metrics.counter("worker_handler_exceptions_total",
                                        "Exceptions that escaped a handler on a worker thread (the worker ran on)")),
      bus_seconds_(metrics.histogram("bus_publish_seconds", "Time to hand one event to the bus")) {
  std::size_t threads = std::clamp<std::size_t>(options_.threads, 1, 64);  // one bit each in the interest maps
  for (std::size_t i = 0; i < threads; ++i) workers_.push_back(std::make_unique<Worker>(i, *this, options.batch_window));
  // Sequencers sharded by conversation, each with its own lock and its
  // timers on one worker: no lock shared by every conversation.
  std::size_t shards = std::max<std::size_t>(16, threads * 4);
  for (std::size_t i = 0; i < shards; ++i) {
    sequencers_.push_back(std::make_unique<EventSequencer>(
        workers_[i % threads]->io(), options_.reorder_wait,
        [this](ConversationId id, SequencedEvent e) { deliver_local(id, std::move(e.frame), std::move(e.meta)); },
        [this](ConversationId id, Seq after, Seq before, std::function<void(std::vector<SequencedEvent>)> done) {
          fill_gap(id, after, before, std::move(done));
        },
        metrics));
  }
}

Fanout::~Fanout() { stop_workers(); }

std::vector<Worker*> Fanout::workers() const {
  std::vector<Worker*> out;
  for (const auto& w : workers_) out.push_back(w.get());
  return out;
}

void Fanout::start(std::chrono::seconds sweep_every) {
  for (auto& w : workers_) w->start(sweep_every);
  if (auto s = bus_.subscribe(kJoinsSubject); !s) {
    log_.warn("bus subscribe failed: members joining on other hosts will not be told live",
              {{"subject", kJoinsSubject}, {"error", s.error().message}});
  }
}

void Fanout::stop_sequencing() {
  for (auto& s : sequencers_) s->stop();
}

void Fanout::stop_workers() {
  for (auto& w : workers_) w->stop();
}

void Fanout::handler_failed(std::size_t worker, const char* what) {
  handler_failures_.add();
  log_.error("an exception escaped a handler; the worker runs on", {{"worker", std::to_string(worker)}, {"error", what}});
}

void Fanout::set_presence(const Presence& presence) {
  presence_ = &presence;
  for (auto& s : sequencers_) {
    s->set_local_user_check([&presence](const UserId& user) { return presence.has_session_here(user); });
  }
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
  sequencer(event.conversation_id).offer(event.conversation_id, SequencedEvent{shared_frame(Opcode::text, json), meta});
  send_to_bus(event.conversation_id, *meta, json);
  if (local_event_ && local_event_wanted_()) tell_local_event(event);
}

void Fanout::tell_local_event(const Event& event) {
  {
    std::lock_guard lock(local_events_mutex_);
    local_events_.push_back(event);
    if (local_events_.size() > 1) return;  // a handler is posted already
  }
  boost::asio::post(control_, [this] { run_local_events(); });
}

void Fanout::run_local_events() {
  std::vector<Event> batch;
  {
    std::lock_guard lock(local_events_mutex_);
    std::size_t n = std::min(local_events_.size(), kLocalEventsPerHandler);
    batch.assign(std::make_move_iterator(local_events_.begin()), std::make_move_iterator(local_events_.begin() + n));
    local_events_.erase(local_events_.begin(), local_events_.begin() + n);
  }
  for (const auto& e : batch) local_event_(e);
  std::lock_guard lock(local_events_mutex_);
  // Those published meanwhile: the handler that takes them is this one,
  // posted again behind what else waits on the control executor.
  if (!local_events_.empty()) boost::asio::post(control_, [this] { run_local_events(); });
}

void Fanout::deliver_ephemeral_here(ConversationId id, std::string_view json, const UserId& except, bool can_wait) {
  auto meta = std::make_shared<DeliveryMeta>();
  meta->except = except;
  meta->can_wait = can_wait;
  deliver_local(id, shared_frame(Opcode::text, json), meta);
}

void Fanout::publish_ephemeral(ConversationId id, std::string_view json, const UserId& except, const UserId& only) {
  auto meta = std::make_shared<DeliveryMeta>();
  meta->except = except;
  meta->only = only;
  deliver_local(id, shared_frame(Opcode::text, json), meta);
  // A frame for one member goes to the other hosts only if the member is
  // online on one of them, as presence knows it: ephemeral frames are best
  // effort, and most members of a single host, or of a conversation, are here.
  if (!only.empty() && presence_ && !presence_->online_elsewhere(only)) return;
  send_to_bus(id, *meta, json);
}

std::uint64_t Fanout::interested_workers(ConversationId id) {
  InterestShard& sh = shard(id);
  std::lock_guard lock(sh.mutex);
  auto it = sh.conversations.find(id);
  return it == sh.conversations.end() ? 0 : it->second.members;
}

std::uint64_t Fanout::delivery_mask(ConversationId id, bool adds_members) {
  constexpr std::uint64_t kAll = ~std::uint64_t{0};
  InterestShard& sh = shard(id);
  std::lock_guard lock(sh.mutex);
  if (adds_members) {
    // The new members' sessions may be on workers without members yet.
    sh.conversations[id].joins_pending += static_cast<std::uint32_t>(workers_.size());
    return kAll;
  }
  auto it = sh.conversations.find(id);
  if (it == sh.conversations.end()) return 0;
  return it->second.joins_pending > 0 ? kAll : it->second.members;
}

void Fanout::join_delivered(ConversationId id) {
  InterestShard& sh = shard(id);
  std::lock_guard lock(sh.mutex);
  auto it = sh.conversations.find(id);
  if (it == sh.conversations.end()) return;
  if (it->second.joins_pending > 0) --it->second.joins_pending;
  if (it->second.joins_pending == 0 && it->second.members == 0) sh.conversations.erase(it);
}

void Fanout::deliver_local(ConversationId id, std::shared_ptr<const std::string> frame,
                           std::shared_ptr<const DeliveryMeta> meta) {
  bool adds_members = !meta->join.empty();
  std::uint64_t mask = delivery_mask(id, adds_members);
  for (std::size_t i = 0; i < workers_.size() && mask; ++i, mask >>= 1) {
    if (!(mask & 1)) continue;
    Worker* w = workers_[i].get();
    if (adds_members) {
      w->post([this, w, id, frame, meta] {
        w->deliver(id, frame, meta);
        join_delivered(id);
      });
    } else {
      w->post([w, id, frame, meta] { w->deliver(id, frame, meta); });
    }
  }
}

void Fanout::send_to_bus(ConversationId id, const DeliveryMeta& meta, std::string_view json) {
  std::string payload = wire::encode_event(
      wire::EventMessage{options_.origin, id, meta.seq, meta.except, meta.only, meta.join, meta.leave, json});
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
  wire::EventMessage m;
  if (!wire::decode_event(payload, m)) {
    log_.warn("malformed bus message ignored", {{"subject", subject}});
    return;
  }
  if (m.origin == options_.origin) return;  // delivered locally when published
  auto meta = std::make_shared<DeliveryMeta>();
  meta->seq = m.seq;
  meta->except = std::string(m.except);
  meta->only = std::string(m.only);
  meta->join = std::move(m.join);
  meta->leave = std::move(m.leave);
  ConversationId id = m.conversation_id;
  Seq seq = m.seq;
  std::string_view json = m.json;
  if (seq > 0) {
    sequencer(id).offer(id, SequencedEvent{shared_frame(Opcode::text, json), std::move(meta)});
  } else {
    deliver_local(id, shared_frame(Opcode::text, json), meta);
  }
}

void Fanout::first_member(std::size_t worker, ConversationId id, Seq known_last) {
  bool first_here = false;
  {
    InterestShard& sh = shard(id);
    std::lock_guard lock(sh.mutex);
    std::uint64_t& mask = sh.conversations[id].members;
    first_here = mask == 0;
    mask |= std::uint64_t{1} << worker;
  }
  if (!first_here) return;
  sequencer(id).track(id, known_last);
  // The subscription follows on the control executor; what the bus carries
  // before it takes effect is read from storage by the sequencer's probe.
  boost::asio::post(control_, [this, id] { reconcile(id); });
}

void Fanout::last_member_left(std::size_t worker, ConversationId id) {
  bool last_here = false;
  {
    InterestShard& sh = shard(id);
    std::lock_guard lock(sh.mutex);
    auto it = sh.conversations.find(id);
    if (it == sh.conversations.end()) return;
    it->second.members &= ~(std::uint64_t{1} << worker);
    if (it->second.members == 0) {
      last_here = true;
      if (it->second.joins_pending == 0) sh.conversations.erase(it);
    }
  }
  if (!last_here) return;
  // Unless a session came back meanwhile (checked under the sequencer's lock).
  sequencer(id).untrack(id, [this, id] { return interested_workers(id) != 0; });
  boost::asio::post(control_, [this, id] { reconcile(id); });
}

void Fanout::reconcile(ConversationId id) {
  bool wanted = interested_workers(id) != 0;
  bool subscribed = subscribed_.count(id) > 0;
  if (wanted == subscribed) return;
  if (wanted) {
    if (auto s = bus_.subscribe(subject(id)); !s) {
      log_.warn("bus subscribe failed", {{"conversation_id", std::to_string(id)}, {"error", s.error().message}});
      return;
    }
    subscribed_.insert(id);
  } else {
    (void)bus_.unsubscribe(subject(id));
    subscribed_.erase(id);
  }
}

}  // namespace switchboard::host
