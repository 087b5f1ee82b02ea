// Puts each conversation's events back in seq order before this host
// delivers them. Events of one conversation committed on several hosts (or
// by several storage connections) can reach a host out of order: an event
// whose predecessor has not arrived waits up to `wait`; then the missing
// events are read from storage, so members get every event once, in order.
// Only conversations this host tracks (it has sessions in them) are
// sequenced; the first event after tracking starts sets the position.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/delivery_meta.hpp"
#include "switchboard/services.hpp"

namespace switchboard::host {

struct SequencedEvent {
  std::shared_ptr<const std::string> frame;
  std::shared_ptr<const DeliveryMeta> meta;  // meta->seq > 0
};

class EventSequencer {
 public:
  // Hands an event to the local sessions; called under the sequencer's lock,
  // so it must only post (it does: to the workers).
  using Release = std::function<void(ConversationId, SequencedEvent)>;
  // Reads events with after < seq < before from storage; calls back (on any
  // thread) with those found, ascending, or an empty list on failure.
  using Fill = std::function<void(ConversationId, Seq after, Seq before,
                                  std::function<void(std::vector<SequencedEvent>)>)>;

  EventSequencer(boost::asio::io_context& timers, std::chrono::milliseconds wait, Release release, Fill fill,
                 Metrics& metrics);
  ~EventSequencer();

  // Any thread.
  void offer(ConversationId id, SequencedEvent event);
  // A session here is in the conversation; `known_last`, if given, is the
  // conversation's last seq as storage showed it to that session: sequencing
  // starts after it (and reads storage once after `wait` for what the bus
  // subscription missed meanwhile).
  void track(ConversationId id, Seq known_last = 0);
  // Whether a user has a session on this host: a join event for them starts
  // sequencing the conversation at once, before their session subscribes.
  void set_local_user_check(std::function<bool(const UserId&)> check) { is_local_ = std::move(check); }
  // No session here is in the conversation any more, unless `still_wanted`
  // (checked under the sequencer's lock) says one came meanwhile.
  void untrack(ConversationId id, const std::function<bool()>& still_wanted = {});
  void stop();

 private:
  struct State {
    Seq next = 0;  // 0: not known yet
    std::map<Seq, SequencedEvent> held;
    std::chrono::steady_clock::time_point waiting_since;
    bool filling = false;
    bool probe = false;    // read storage once after `wait`: events sent before this host subscribed
    bool tracked = false;  // a session here is in the conversation
  };

  void release_in_order(ConversationId id, State& state);  // lock held
  void arm();                                              // lock held
  void check();
  void filled(ConversationId id, Seq before, std::vector<SequencedEvent> events);

  // Storage answers may come after this object is gone: they go through this.
  struct Alive {
    std::mutex mutex;
    EventSequencer* self = nullptr;
  };

  std::shared_ptr<Alive> alive_ = std::make_shared<Alive>();
  boost::asio::io_context& timers_;
  std::chrono::milliseconds wait_;
  Release release_;
  std::function<bool(const UserId&)> is_local_;
  Fill fill_;
  Counter& filled_events_;
  Counter& skipped_;
  Counter& stale_;
  std::mutex mutex_;
  std::unordered_map<ConversationId, State> states_;
  std::set<ConversationId> waiting_;
  std::shared_ptr<boost::asio::steady_timer> timer_;
  bool armed_ = false;
  bool stopped_ = false;
};

}  // namespace switchboard::host
