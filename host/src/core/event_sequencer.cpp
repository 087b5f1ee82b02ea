#include "core/event_sequencer.hpp"

#include <boost/asio/post.hpp>
#include <limits>

namespace switchboard::host {

EventSequencer::EventSequencer(boost::asio::io_context& timers, std::chrono::milliseconds wait, Release release,
                               Fill fill, Metrics& metrics)
    : timers_(timers),
      wait_(wait),
      release_(std::move(release)),
      fill_(std::move(fill)),
      filled_events_(metrics.counter("sequencer_filled_events_total",
                                     "Events read from storage because they were late or lost on the bus")),
      skipped_(metrics.counter("sequencer_skipped_events_total",
                               "Events storage could not supply for a gap; clients recover them by resume")),
      stale_(metrics.counter("sequencer_stale_events_total", "Events that arrived after their position was passed")),
      timer_(std::make_shared<boost::asio::steady_timer>(timers)) {
  alive_->self = this;
}

EventSequencer::~EventSequencer() {
  stop();
  std::lock_guard lock(alive_->mutex);
  alive_->self = nullptr;
}

void EventSequencer::stop() {
  std::lock_guard lock(mutex_);
  stopped_ = true;
  // On the timer's own thread: an Asio timer is not thread-safe. `stopped_`
  // already keeps check() from doing anything or arming it again.
  boost::asio::post(timers_, [timer = timer_] { timer->cancel(); });
}

void EventSequencer::track(ConversationId id, Seq known_last) {
  std::lock_guard lock(mutex_);
  State& state = states_[id];
  state.tracked = true;
  if (state.next == 0 && known_last > 0) {
    state.next = known_last + 1;
    state.probe = true;
    state.waiting_since = std::chrono::steady_clock::now();
    waiting_.insert(id);
    arm();
  }
}

void EventSequencer::untrack(ConversationId id, const std::function<bool()>& still_wanted) {
  std::lock_guard lock(mutex_);
  if (still_wanted && still_wanted()) return;
  auto it = states_.find(id);
  if (it == states_.end()) return;
  // Nobody here is left to receive them, but keep the order for anyone
  // joining meanwhile: hand over what is held.
  for (auto& [seq, event] : it->second.held) release_(id, std::move(event));
  waiting_.erase(id);
  states_.erase(it);
}

void EventSequencer::offer(ConversationId id, SequencedEvent event) {
  std::lock_guard lock(mutex_);
  auto it = states_.find(id);
  if (it == states_.end()) {
    // A member with a session here joins: from this event on, order it, and
    // once `wait` has passed read what was sent before the bus subscription
    // of this host took effect.
    bool joins_here = false;
    if (is_local_) {
      for (const auto& user : event.meta->join) joins_here = joins_here || is_local_(user);
    }
    if (joins_here) {
      State& state = states_[id];
      state.next = event.meta->seq + 1;
      state.probe = true;
      state.waiting_since = std::chrono::steady_clock::now();
      waiting_.insert(id);
      arm();
    }
    release_(id, std::move(event));  // no session here (yet): nothing to order
    return;
  }
  State& state = it->second;
  Seq seq = event.meta->seq;
  if (state.next == 0) state.next = seq;
  if (seq < state.next) {
    stale_.add();
    return;
  }
  if (seq > state.next) {
    if (state.held.empty()) state.waiting_since = std::chrono::steady_clock::now();
    state.held.emplace(seq, std::move(event));
    waiting_.insert(id);
    arm();
    return;
  }
  release_(id, std::move(event));
  ++state.next;
  release_in_order(id, state);
}

void EventSequencer::release_in_order(ConversationId id, State& state) {
  while (!state.held.empty() && state.held.begin()->first <= state.next) {
    auto node = state.held.extract(state.held.begin());
    if (node.key() == state.next) {
      release_(id, std::move(node.mapped()));
      ++state.next;
    } else {
      stale_.add();
    }
  }
  if (state.held.empty()) {
    if (!state.probe) waiting_.erase(id);
  } else {
    state.waiting_since = std::chrono::steady_clock::now();
  }
}

void EventSequencer::arm() {
  if (armed_ || stopped_) return;
  armed_ = true;
  timer_->expires_after(std::max(wait_ / 4, std::chrono::milliseconds(5)));
  timer_->async_wait([this, timer = timer_](const boost::system::error_code& ec) {
    if (ec) return;
    check();
  });
}

void EventSequencer::check() {
  std::vector<std::pair<ConversationId, std::pair<Seq, Seq>>> gaps;
  {
    std::lock_guard lock(mutex_);
    armed_ = false;
    if (stopped_) return;
    auto now = std::chrono::steady_clock::now();
    for (ConversationId id : waiting_) {
      State& state = states_[id];
      if (state.filling || (state.held.empty() && !state.probe) || now - state.waiting_since < wait_) continue;
      state.filling = true;
      state.probe = false;
      Seq before = state.held.empty() ? std::numeric_limits<Seq>::max() : state.held.begin()->first;
      gaps.push_back({id, {state.next - 1, before}});
    }
    if (!waiting_.empty()) arm();
  }
  for (const auto& [id, range] : gaps) {
    fill_(id, range.first, range.second,
          [alive = alive_, id = id, before = range.second](std::vector<SequencedEvent> events) {
            std::lock_guard lock(alive->mutex);
            if (alive->self) alive->self->filled(id, before, std::move(events));
          });
  }
}

void EventSequencer::filled(ConversationId id, Seq before, std::vector<SequencedEvent> events) {
  std::lock_guard lock(mutex_);
  auto it = states_.find(id);
  if (it == states_.end()) return;
  State& state = it->second;
  state.filling = false;
  for (auto& event : events) {
    Seq seq = event.meta->seq;
    if (seq < state.next) continue;  // arrived on the bus meanwhile
    if (!state.held.empty() && seq >= state.held.begin()->first) break;
    if (seq > state.next) {
      // Storage has no event between: none will come (seq is gap-free in
      // storage; this is a failed or lagging read). Move on to what it has.
      skipped_.add(static_cast<std::uint64_t>(seq - state.next));
      state.next = seq;
    }
    release_(id, std::move(event));
    filled_events_.add();
    ++state.next;
  }
  if (!state.held.empty() && state.held.begin()->first > state.next) {
    bool probe = before == std::numeric_limits<Seq>::max();  // not asked for this gap
    if (!probe && state.next < before) {
      // The gap this read was for is still open: storage could not supply
      // it (or failed). Waiting longer would hold everything after it, so
      // skip it; clients see the jump in seq and resume.
      skipped_.add(static_cast<std::uint64_t>(state.held.begin()->first - state.next));
      state.next = state.held.begin()->first;
    } else {
      // A newer gap opened after this read was asked for: give it its own wait.
      state.waiting_since = std::chrono::steady_clock::now();
      waiting_.insert(id);
      arm();
    }
  }
  release_in_order(id, state);
  if (!state.tracked && state.held.empty()) {
    // The member who joined never subscribed here (gone meanwhile).
    waiting_.erase(id);
    states_.erase(it);
  }
}

}  // namespace switchboard::host
