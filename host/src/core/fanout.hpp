// Delivery of conversation events to every member online: framed once,
// handed to each local worker, and published on the bus (subject
// "conv.<id>"; "joins" for events that add members) for the other hosts,
// which deliver it to their own sessions.
// A host subscribes to a conversation's subject only while one of its
// sessions is in that conversation.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/event_sequencer.hpp"
#include "net/worker.hpp"
#include "switchboard/bus.hpp"
#include "switchboard/storage.hpp"
#include "switchboard/services.hpp"

namespace switchboard::host {

class Fanout {
 public:
  Fanout(Bus& bus, Storage& storage, Logger& log, Metrics& metrics, std::string origin);

  // Before any event: events are sequenced on the first worker's timers.
  void set_workers(std::vector<Worker*> workers, std::chrono::milliseconds reorder_wait);
  // Subscribes to the joins subject (after the bus started).
  void start();
  void stop();
  void set_local_user_check(std::function<bool(const UserId&)> check) {
    sequencer_->set_local_user_check(std::move(check));
  }
  static constexpr std::string_view kJoinsSubject = "joins";

  // Any thread.
  void publish(const Event& event);
  void publish_ephemeral(ConversationId id, std::string_view json, const UserId& except, const UserId& only = {});
  // To this host's sessions only (each host announces what it sees itself).
  void deliver_ephemeral_here(ConversationId id, std::string_view json, const UserId& except);
  // Called with every event published from this host (committed here), once.
  void on_local_event(std::function<void(const Event&)> hook) { local_event_ = std::move(hook); }
  void on_bus_message(std::string_view subject, std::string_view payload);

  // Worker threads: a worker has its first / lost its last session in `id`.
  void add_interest(ConversationId id, Seq known_last = 0);
  void remove_interest(ConversationId id);
  void count_deliveries(std::size_t n) { deliveries_.add(n); }

  static std::string subject(ConversationId id) { return "conv." + std::to_string(id); }

 private:
  void deliver_local(ConversationId id, std::shared_ptr<const std::string> frame,
                     std::shared_ptr<const DeliveryMeta> meta);
  void send_to_bus(ConversationId id, const DeliveryMeta& meta, std::string_view json);
  void fill_gap(ConversationId id, Seq after, Seq before, std::function<void(std::vector<SequencedEvent>)> done);

  Bus& bus_;
  Storage& storage_;
  Logger& log_;
  Metrics& metrics_;
  std::unique_ptr<EventSequencer> sequencer_;
  std::string origin_;
  std::vector<Worker*> workers_;
  Counter& deliveries_;
  Counter& bus_errors_;
  Histogram& bus_seconds_;
  std::mutex interest_mutex_;
  std::unordered_map<ConversationId, int> interest_;
  std::function<void(const Event&)> local_event_;
};

// Which sessions an event (un)subscribes: member.join / member.leave carry
// "user_id", conversation.create carries "members".
DeliveryMeta delivery_meta(const Event& event);

}  // namespace switchboard::host
