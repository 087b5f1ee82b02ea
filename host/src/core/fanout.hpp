// Delivery of conversation events to every member online: framed once,
// handed to the workers that have sessions in the conversation, and
// published on the bus (subject "conv.<id>"; "joins" for events that add
// members) for the other hosts, which deliver it to their own sessions.
// A host subscribes to a conversation's subject only while one of its
// sessions is in that conversation.
//
// Owns the workers (one io_context and thread each) and the sequencers that
// put each conversation's events in seq order (sharded by conversation, each
// with its own lock). Which workers have members of which conversation is
// kept in sharded maps; bus (un)subscriptions are reconciled on the control
// executor, so no lock is ever held across a call into the bus.
#pragma once

#include <array>
#include <deque>
#include <atomic>
#include <boost/asio/io_context.hpp>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "core/delivery_meta.hpp"
#include "core/event_sequencer.hpp"
#include "core/presence.hpp"
#include "net/worker.hpp"
#include "switchboard/bus.hpp"
#include "switchboard/services.hpp"
#include "switchboard/storage.hpp"

namespace switchboard::host {

struct FanoutOptions {
  std::string origin;  // this host, on the bus
  std::size_t threads = 1;
  std::chrono::milliseconds reorder_wait{250};
  std::chrono::milliseconds batch_window{0};  // how long a can_wait frame may wait
};

class Fanout final : public WorkerListener {
 public:
  // `control`: a serial executor for bus (un)subscriptions and local-event hooks.
  Fanout(Bus& bus, Storage& storage, boost::asio::io_context& control, Logger& log, Metrics& metrics,
         FanoutOptions options);
  ~Fanout() override;  // stops the workers if still running

  std::size_t size() const { return workers_.size(); }
  Worker& worker(std::size_t i) { return *workers_[i]; }
  std::vector<Worker*> workers() const;

  // Starts the workers' threads, subscribes to the joins subject.
  void start(std::chrono::seconds sweep_every);
  // Stops sequencing (pending gap reads are ignored).
  void stop_sequencing();
  // Stops every worker's io_context and joins its thread.
  void stop_workers();

  static constexpr std::string_view kJoinsSubject = "joins";

  // Any thread.
  void publish(const Event& event);
  // With `only` (a feature's frame to one member, e.g. unread.update), the
  // frame may wait up to the batch window ([chat] presence_batch_ms) to leave
  // with that client's next frames, as presence updates do.
  void publish_ephemeral(ConversationId id, std::string_view json, const UserId& except, const UserId& only = {});
  // To this host's sessions only (each host announces what it sees itself).
  // `can_wait`: the frame may wait up to the batch window to share a write.
  void deliver_ephemeral_here(ConversationId id, std::string_view json, const UserId& except, bool can_wait = false);
  // Called with every event published from this host (committed here), once,
  // on the control executor, while `wanted()` says so (checked on each
  // publish, from any thread: the event is only copied for a hook that
  // wants it). Set before start. Events reach the control executor in
  // batches: one handler takes up to kLocalEventsPerHandler of those
  // published meanwhile (and posts itself again for the rest, so timers and
  // hooks run in between), not one handler — often a wake-up — each.
  void on_local_event(std::function<void(const Event&)> hook, std::function<bool()> wanted) {
    local_event_ = std::move(hook);
    local_event_wanted_ = std::move(wanted);
  }
  void on_bus_message(std::string_view subject, std::string_view payload);
  // Where users have sessions: the sequencers ask whether the users an
  // event adds are here, and a frame for one member crosses the bus only if
  // that member is online elsewhere. Set before start; outlives the workers.
  void set_presence(const Presence& presence);

  static std::string subject(ConversationId id) { return "conv." + std::to_string(id); }

  // WorkerListener (worker threads).
  void first_member(std::size_t worker, ConversationId id, Seq known_last) override;
  void last_member_left(std::size_t worker, ConversationId id) override;
  void delivered(std::size_t frames) override { deliveries_.add(frames); }
  void handler_failed(std::size_t worker, const char* what) override;

 private:
  struct Interest {
    std::uint64_t members = 0;  // bit i: worker i has members
    // Worker deliveries of join events not processed yet. While any is
    // pending, every event of the conversation goes to every worker, so that
    // it reaches the joining sessions after their join, in each worker's order.
    std::uint32_t joins_pending = 0;
  };
  struct InterestShard {
    std::mutex mutex;
    std::unordered_map<ConversationId, Interest> conversations;
  };
  static constexpr std::size_t kShards = 64;

  InterestShard& shard(ConversationId id) { return interest_[static_cast<std::size_t>(id) % kShards]; }
  EventSequencer& sequencer(ConversationId id) { return *sequencers_[static_cast<std::size_t>(id) % sequencers_.size()]; }
  std::uint64_t interested_workers(ConversationId id);  // members only
  // Which workers an event goes to; an event that adds members counts as pending on each.
  std::uint64_t delivery_mask(ConversationId id, bool adds_members);
  void join_delivered(ConversationId id);
  // Control executor: subscribes or unsubscribes `id` to match the interest.
  void reconcile(ConversationId id);
  void deliver_local(ConversationId id, std::shared_ptr<const std::string> frame,
                     std::shared_ptr<const DeliveryMeta> meta);
  void send_to_bus(ConversationId id, const DeliveryMeta& meta, std::string_view json);
  void tell_local_event(const Event& event);
  void run_local_events();  // control executor
  void fill_gap(ConversationId id, Seq after, Seq before, std::function<void(std::vector<SequencedEvent>)> done);

  Bus& bus_;
  Storage& storage_;
  boost::asio::io_context& control_;
  Logger& log_;
  FanoutOptions options_;
  Counter& deliveries_;
  Counter& bus_errors_;
  Counter& handler_failures_;
  Histogram& bus_seconds_;
  const Presence* presence_ = nullptr;
  std::function<void(const Event&)> local_event_;
  std::function<bool()> local_event_wanted_;
  static constexpr std::size_t kLocalEventsPerHandler = 256;
  std::mutex local_events_mutex_;
  // Published, not yet handed to the hook. Not bounded here: it grows only
  // with commits, which storage's write queue bounds, and the hook's
  // promise is every event once.
  std::deque<Event> local_events_;

  std::array<InterestShard, kShards> interest_;
  std::unordered_set<ConversationId> subscribed_;  // control executor only

  // Destroyed first the sequencers, then the workers whose io_contexts run their timers.
  std::vector<std::unique_ptr<Worker>> workers_;
  std::vector<std::unique_ptr<EventSequencer>> sequencers_;
};

// Which sessions an event (un)subscribes: member.join / member.leave carry
// "user_id", conversation.create carries "members".
DeliveryMeta delivery_meta(const Event& event);

}  // namespace switchboard::host
