#include "net/ws_session.hpp"

#include <algorithm>

namespace switchboard::host {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;

namespace {

// One gather write carries at most this much, so that a close frame queued
// behind it (slow consumer) is never megabytes away from the client.
constexpr std::size_t kMaxBuffersPerWrite = 512;
constexpr std::size_t kMaxBytesPerWrite = 256 * 1024;
constexpr auto kCloseGrace = std::chrono::seconds(10);

std::vector<char>& scratch() {
  thread_local std::vector<char> buffer(64 * 1024);
  return buffer;
}

const std::shared_ptr<const std::string>& ping_frame() {
  static const auto frame = shared_frame(Opcode::ping, "");
  return frame;
}

}  // namespace

WsSession::WsSession(Worker& worker, Connection connection, UserId user, std::uint64_t id,
                     const SessionSettings& settings, SessionHandler& handler)
    : worker_(worker),
      connection_(std::move(connection)),
      user_(std::move(user)),
      id_(id),
      settings_(settings),
      handler_(handler),
      parser_(settings.max_message),
      tokens_(settings.command_burst) {
  auto now = Clock::now();
  last_received_ = last_ping_ = tokens_at_ = last_written_ = now;
}

WsSession::~WsSession() = default;

void WsSession::start() {
  boost::system::error_code ec;
  connection_.socket().non_blocking(true, ec);
  connection_.socket().set_option(asio::ip::tcp::no_delay(true), ec);
  worker_.attach(this);
  if (settings_.metrics.connections) settings_.metrics.connections->add(1);
  handler_.on_open(shared_from_this());
}

void WsSession::ready() {
  if (state_ != State::starting) return;
  state_ = State::open;
  read();
}

bool WsSession::in(ConversationId id) const {
  return std::binary_search(conversations_.begin(), conversations_.end(), id);
}

void WsSession::add_conversation(ConversationId id) {
  auto it = std::lower_bound(conversations_.begin(), conversations_.end(), id);
  if (it == conversations_.end() || *it != id) conversations_.insert(it, id);
}

void WsSession::remove_conversation(ConversationId id) {
  auto it = std::lower_bound(conversations_.begin(), conversations_.end(), id);
  if (it != conversations_.end() && *it == id) conversations_.erase(it);
}

bool WsSession::commands_wait() const {
  return in_flight_ >= kMaxInFlight || (alone_ && (alone_->running || !alone_->waiting.empty()));
}

bool WsSession::reading_paused() const { return asked_bytes_ > settings_.queue_bytes || commands_wait(); }

void WsSession::release_alone_if_idle() {
  if (alone_ && !alone_->running && alone_->waiting.empty() && alone_->on_drained.empty()) alone_.reset();
}

void WsSession::read() {
  if (reading_ || state_ == State::closed) return;
  // A closing session reads on (to the peer's close or end of stream), so
  // that what the peer still sends never meets a closed socket.
  if (state_ == State::open && reading_paused()) {
    read_paused_ = true;
    // A pending read is what keeps a session alive; without one, itself.
    paused_self_ = shared_from_this();
    return;
  }
  if (read_paused_) {
    // What the peer sent meanwhile was not read: its clocks start again now.
    read_paused_ = false;
    auto now = Clock::now();
    last_received_ = std::max(last_received_, last_written_);
    if (parser_.incomplete()) message_started_ = now;
  }
  reading_ = true;
  auto was_paused = std::move(paused_self_);  // the read below holds it now
  connection_.wait_readable([self = shared_from_this()](const boost::system::error_code& ec) {
    self->reading_ = false;
    if (ec) {
      self->finish();
      return;
    }
    self->on_readable();
  });
}

void WsSession::on_readable() {
  auto& buf = scratch();
  // A few reads per wakeup, then yield to the other sessions of this worker.
  for (int round = 0; round < 4 && state_ != State::closed; ++round) {
    boost::system::error_code ec;
    std::size_t n = connection_.read_some(asio::buffer(buf), ec);
    if (ec == asio::error::would_block || ec == asio::error::try_again) break;
    if (ec) {
      finish();  // EOF or reset: the peer is gone
      return;
    }
    // Liveness counts complete frames only (set in the frame callbacks): a
    // frame trickled a byte at a time does not keep a session alive.
    bool was_incomplete = parser_.incomplete();
    auto fed_at = Clock::now();
    std::string why;
    std::uint16_t close_with = parser_.feed(buf.data(), n, *this, why);
    // The deadline for what is unfinished runs from the last complete frame.
    if (parser_.incomplete() && (!was_incomplete || last_received_ >= fed_at)) message_started_ = fed_at;
    if (close_with) {
      close(close_with, why, true);
      break;
    }
    // Plain: a short read emptied the socket. TLS reads a record at a time:
    // read on until would_block.
    if (n < buf.size() && !connection_.tls()) break;
  }
  if (state_ != State::closed) read();
}

void WsSession::on_text(std::string_view message) {
  last_received_ = Clock::now();
  if (state_ != State::open) return;
  if (settings_.metrics.frames_in) settings_.metrics.frames_in->add();
  auto now = Clock::now();
  double elapsed = std::chrono::duration<double>(now - tokens_at_).count();
  tokens_at_ = now;
  tokens_ = std::min(settings_.command_burst, tokens_ + elapsed * settings_.commands_per_second);
  bool limited = tokens_ < 1.0;
  if (!limited) tokens_ -= 1.0;
  if (commands_wait()) {
    // Behind a large command, or too many unanswered: runs later, in order
    // (and no more is read meanwhile).
    if (!alone_) alone_ = std::make_unique<Alone>();
    alone_->waiting.emplace_back(std::string(message), limited);
    return;
  }
  handler_.on_message(shared_from_this(), message, limited);
}

void WsSession::on_ping(std::string_view payload) {
  last_received_ = Clock::now();
  send(shared_frame(Opcode::pong, payload), true);
}

void WsSession::on_pong() { last_received_ = Clock::now(); }

void WsSession::on_close(std::uint16_t code, std::string_view) {
  if (state_ == State::open || state_ == State::starting) {
    // Echo the peer's code, as RFC 6455 asks, then end.
    std::uint16_t echo = (code >= 1000 && code < 5000 && code != 1005 && code != 1006) ? code : close_code::normal;
    close(echo, "", true);
  } else if (state_ == State::closing) {
    // The peer answered our close. Our close frame may still be queued (a
    // close() waits for the worker's flush pass): finish once it is written.
    shutdown_after_write_ = true;
    if (!writing_ && !dirty_ && head_ >= queue_.size()) finish();
  }
}

void WsSession::send_text(std::string_view json) {
  if (state_ != State::open && state_ != State::starting) return;
  enqueue(shared_frame(Opcode::text, json), Traffic::asked);
}

void WsSession::answer(const std::shared_ptr<PendingAnswer>& pending, std::string_view json) {
  send_text(json);
  answered(pending);
}

void WsSession::answered(const std::shared_ptr<PendingAnswer>& pending) {
  if (in_flight_ > 0) --in_flight_;
  if (alone_ && alone_->running == pending) alone_->running.reset();
  run_waiting();
}

void WsSession::run_alone(std::shared_ptr<PendingAnswer> pending) {
  if (!alone_) alone_ = std::make_unique<Alone>();
  alone_->running = std::move(pending);
}

void WsSession::run_waiting() {
  if (!alone_) {
    if (read_paused_ && !reading_paused()) read();
    return;
  }
  auto self = shared_from_this();
  while (alone_ && !alone_->running && in_flight_ < kMaxInFlight && !alone_->waiting.empty() &&
         state_ == State::open) {
    auto [text, limited] = std::move(alone_->waiting.front());
    alone_->waiting.pop_front();
    handler_.on_message(self, text, limited);
  }
  if (!alone_) return;  // finished meanwhile
  release_alone_if_idle();
  if (read_paused_ && !reading_paused()) read();
}

void WsSession::when_drained(std::function<void()> f) {
  if (state_ == State::closed) return;
  if (asked_bytes_ <= settings_.queue_bytes / 2) return f();
  if (!alone_) alone_ = std::make_unique<Alone>();
  alone_->on_drained.push_back(std::move(f));
}

void WsSession::drained() {
  if (asked_bytes_ > settings_.queue_bytes / 2) return;
  if (alone_ && !alone_->on_drained.empty()) {
    auto waiters = std::move(alone_->on_drained);
    alone_->on_drained.clear();
    for (auto& f : waiters) f();
    release_alone_if_idle();
  }
  if (read_paused_ && state_ == State::open && !reading_paused()) read();
}

void WsSession::post_text(std::string json) {
  worker_.post([self = shared_from_this(), json = std::move(json)] { self->send_text(json); });
}

void WsSession::deliver(ConversationId id, const std::shared_ptr<const std::string>& frame, const DeliveryMeta& meta) {
  if (replaying_ && meta.seq > 0) {
    auto it = replaying_->find(id);
    if (it != replaying_->end()) {
      Replay& r = it->second;
      // Held back frames count against the queue like pushed ones. Over the
      // bound they are dropped, not the session: every held event is
      // stored, and the replay reads on past the newest one dropped.
      if (queued_bytes_ - asked_bytes_ + held_bytes_ + frame->size() > settings_.queue_bytes) {
        drop_held();
        r.dropped_up_to = std::max(r.dropped_up_to, meta.seq);
        return;
      }
      held_bytes_ += frame->size();
      r.held.emplace_back(meta.seq, frame);
      return;
    }
  }
  send(frame, meta.seq == 0, meta.may_wait());
}

bool WsSession::begin_replay(ConversationId id) {
  if (!replaying_) replaying_ = std::make_unique<decltype(replaying_)::element_type>();
  return replaying_->try_emplace(id).second;
}

void WsSession::drop_held() {
  if (!replaying_) return;
  for (auto& [id, r] : *replaying_) {
    for (const auto& h : r.held) {
      held_bytes_ -= h.second->size();
      r.dropped_up_to = std::max(r.dropped_up_to, h.first);
    }
    r.held.clear();
  }
}

bool WsSession::end_replay(ConversationId id, Seq replayed_up_to, bool recovered) {
  if (!replaying_) return true;
  auto it = replaying_->find(id);
  if (it == replaying_->end()) return true;
  // Storage has the dropped ones: a recovering replay reads on. One that did
  // not recover ends anyway (the client reloads through history).
  if (recovered && it->second.dropped_up_to > replayed_up_to) return false;
  auto held = std::move(it->second.held);
  replaying_->erase(it);
  for (const auto& h : held) held_bytes_ -= h.second->size();
  if (replaying_->empty()) replaying_.reset();
  std::sort(held.begin(), held.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  Seq last = replayed_up_to;
  for (auto& [seq, frame] : held) {
    if (seq <= last) continue;  // already sent by the replay
    send(frame, false);
    last = seq;
  }
  return true;
}

void WsSession::drop_from(std::size_t first, bool only_ephemeral) {
  auto begin = queue_.begin() + static_cast<std::ptrdiff_t>(first);
  auto keep = std::remove_if(begin, queue_.end(), [&](const Outbound& o) {
    if (only_ephemeral && o.traffic != Traffic::ephemeral) return false;
    queued_bytes_ -= o.frame->size();
    if (o.traffic == Traffic::asked) asked_bytes_ -= o.frame->size();
    if (only_ephemeral && settings_.metrics.shed) settings_.metrics.shed->add();
    return true;
  });
  queue_.erase(keep, queue_.end());
}

void WsSession::send(const std::shared_ptr<const std::string>& frame, bool ephemeral, bool can_wait) {
  if (state_ != State::open && state_ != State::starting) return;
  // Only pushes count: what the client asked for is paced, not refused.
  auto pushed = [&] { return queued_bytes_ - asked_bytes_ + held_bytes_ + frame->size(); };
  if (pushed() > settings_.queue_bytes) {
    // First what storage has again (events held during a replay), then what
    // can be lost (typing, presence), before anything persistent.
    drop_held();
    if (pushed() > settings_.queue_bytes) drop_from(untouched(), true);
    if (pushed() > settings_.queue_bytes) {
      if (ephemeral) {
        if (settings_.metrics.shed) settings_.metrics.shed->add();
        return;
      }
      if (settings_.metrics.slow_closes) settings_.metrics.slow_closes->add();
      close(close_code::policy_violation,
            "slow consumer: more than " + std::to_string(settings_.queue_bytes) + " bytes waiting", true);
      return;
    }
  }
  enqueue(frame, ephemeral ? Traffic::ephemeral : Traffic::push, can_wait);
}

void WsSession::enqueue(const std::shared_ptr<const std::string>& frame, Traffic traffic, bool can_wait) {
  queued_bytes_ += frame->size();
  if (traffic == Traffic::asked) asked_bytes_ += frame->size();
  queue_.push_back(Outbound{frame, traffic});
  if (writing_ || dirty_) return;  // leaves with what is already due
  if (can_wait && worker_.batches()) {
    if (!waiting_) {
      waiting_ = true;
      worker_.mark_waiting(shared_from_this());
    }
    return;
  }
  dirty_ = true;
  worker_.mark_dirty(shared_from_this());
}

void WsSession::flush_waiting() {
  waiting_ = false;
  // Already written (something that could not wait came since), or a write
  // is under way or scheduled that takes these frames too.
  if (writing_ || dirty_ || head_ >= queue_.size()) return;
  write();
  // All it had were frames that could wait: a quiet session's, which keeps
  // no slots (a storm's batch would otherwise stay allocated in each).
  if (queue_.empty()) std::vector<Outbound>().swap(queue_);
}

// The socket (or OpenSSL's record) is full: write on once it takes more.
void WsSession::wait_writable() {
  writing_ = true;
  connection_.wait_writable([self = shared_from_this()](const boost::system::error_code& e) {
    self->writing_ = false;
    if (e) {
      self->finish();
      return;
    }
    self->write();
  });
  drained();
}

void WsSession::flush() {
  dirty_ = false;
  if (!writing_) write();
}

// Writes as much as the socket takes now, in gather writes, without any
// allocation or handler; waits for writability only when the socket is full.
void WsSession::write() {
  thread_local std::vector<asio::const_buffer> buffers;
  while (head_ < queue_.size() && state_ != State::closed) {
    buffers.clear();
    std::size_t bytes = 0;
    for (std::size_t i = head_; i < queue_.size() && buffers.size() < kMaxBuffersPerWrite; ++i) {
      const std::string& f = *queue_[i].frame;
      std::size_t skip = i == head_ ? head_offset_ : 0;
      if (!buffers.empty() && bytes + f.size() - skip > kMaxBytesPerWrite) break;
      buffers.emplace_back(f.data() + skip, f.size() - skip);
      bytes += f.size() - skip;
    }
    boost::system::error_code ec;
    std::size_t n = connection_.write_some(buffers, ec);
    if (ec == asio::error::would_block || ec == asio::error::try_again) {
      n = 0;
    } else if (ec) {
      finish();
      return;
    }
    std::size_t frames_done = 0;
    while (n > 0) {
      const std::string& f = *queue_[head_].frame;
      std::size_t left = f.size() - head_offset_;
      if (n < left) {
        head_offset_ += n;
        break;
      }
      n -= left;
      queued_bytes_ -= f.size();
      if (queue_[head_].traffic == Traffic::asked) asked_bytes_ -= f.size();
      queue_[head_].frame.reset();
      head_offset_ = 0;
      ++head_;
      ++frames_done;
    }
    if (frames_done) {
      last_written_ = Clock::now();
      if (settings_.metrics.frames_out) settings_.metrics.frames_out->add(frames_done);
    }
    // The socket took less than offered: wait until it can take more.
    if (head_ < queue_.size() && (ec || frames_done == 0 || head_offset_ > 0)) {
      return wait_writable();
    }
  }
  // Everything is out — once a TLS record OpenSSL still holds is written too.
  boost::system::error_code ec;
  if (!connection_.flush(ec)) {
    if (ec != asio::error::would_block) {
      finish();
      return;
    }
    return wait_writable();
  }
  queue_.clear();
  head_ = 0;
  // A busy session keeps a few slots between writes; a quiet one (two
  // frames a write at most: an idle session's hello, a ping) keeps none.
  if (queue_.capacity() > 16 || queue_.capacity() <= 2) std::vector<Outbound>().swap(queue_);
  if (shutdown_after_write_ && state_ == State::closing) {
    connection_.shutdown_send();
    if (!reading_) finish();
    return;
  }
  drained();
}

void WsSession::close(std::uint16_t code, std::string_view reason, bool drop_queued) {
  if (state_ == State::closing || state_ == State::closed) return;
  bool was_starting = state_ == State::starting;
  state_ = State::closing;
  close_deadline_ = Clock::now() + kCloseGrace;
  if (drop_queued) drop_from(untouched(), false);
  auto frame = std::make_shared<const std::string>(encode_close(code, reason));
  queued_bytes_ += frame->size();
  queue_.push_back(Outbound{frame, Traffic::push});
  shutdown_after_write_ = true;
  // Written in the worker's flush pass, never from here: close() is reached
  // from send() while the worker iterates a conversation's members, and a
  // write that fails would finish() and detach this session from that list.
  if (!writing_ && !dirty_) {
    dirty_ = true;
    worker_.mark_dirty(shared_from_this());
  }
  if (was_starting || read_paused_) read();  // to see the peer's answer
}

void WsSession::abandon() {
  auto self = shared_from_this();
  paused_self_.reset();
  auto alone = std::move(alone_);  // flows waiting to drain hold the session
  replaying_.reset();
}

std::shared_ptr<PendingAnswer> WsSession::expect_answer(std::string timeout_frame) {
  auto pending = std::make_shared<PendingAnswer>();
  pending->timeout = settings_.command_timeout;
  pending->progressed();
  pending->timeout_frame = std::move(timeout_frame);
  ++in_flight_;
  if (pending_.size() >= 64) std::erase_if(pending_, [](const auto& p) { return p->answered.load(); });
  pending_.push_back(pending);
  return pending;
}

void WsSession::tick(Clock::time_point now) {
  if (!pending_.empty()) {
    std::size_t timed_out = 0;
    std::erase_if(pending_, [&](const std::shared_ptr<PendingAnswer>& p) {
      if (p->answered.load()) return true;
      if (now.time_since_epoch().count() < p->deadline.load()) return false;
      if (p->answered.exchange(true)) return true;
      if (settings_.metrics.missing_answers) settings_.metrics.missing_answers->add();
      send_text(p->timeout_frame);
      ++timed_out;
      if (alone_ && alone_->running == p) alone_->running.reset();
      return true;
    });
    // After the sweep: what waited behind them may add to pending_.
    if (timed_out) {
      in_flight_ -= std::min(in_flight_, timed_out);
      run_waiting();
    }
  }
  if (state_ == State::closing) {
    if (now > close_deadline_) finish();
    return;
  }
  if (state_ == State::starting) {
    // Its conversations never loaded (storage too slow or gone): give up.
    if (now - last_received_ > settings_.idle_timeout) {
      close(close_code::internal_error, "conversations not loaded in time, retry", true);
    }
    return;
  }
  if (state_ != State::open) return;
  // While not reading, the peer cannot finish what it began: not its fault.
  if (!read_paused_ && parser_.incomplete() && now - message_started_ > settings_.idle_timeout) {
    close(close_code::policy_violation,
          "a message was not completed within " + std::to_string(settings_.idle_timeout.count()) + " s", true);
    return;
  }
  // Not reading (an answer or a replay leaving): the client is alive as
  // long as it takes what is written.
  auto alive = read_paused_ ? std::max(last_received_, last_written_) : last_received_;
  if (now - alive > settings_.idle_timeout) {
    close(close_code::going_away,
          "no frame or pong for " + std::to_string(settings_.idle_timeout.count()) + " s", true);
    return;
  }
  if (now - last_ping_ >= settings_.ping_interval) {
    last_ping_ = now;
    send(ping_frame(), true);
  }
}

void WsSession::finish() {
  if (state_ == State::closed) return;
  auto self = shared_from_this();  // what alone_ holds may hold the last reference
  state_ = State::closed;
  connection_.close();
  queue_.clear();
  head_ = head_offset_ = 0;
  queued_bytes_ = 0;
  asked_bytes_ = 0;
  in_flight_ = 0;
  replaying_.reset();
  held_bytes_ = 0;
  pending_.clear();
  auto alone = std::move(alone_);  // its waiters are dropped unrun
  auto paused = std::move(paused_self_);
  if (settings_.metrics.connections) settings_.metrics.connections->add(-1);
  handler_.on_closed(*this);
  worker_.detach(this);
}

}  // namespace switchboard::host
