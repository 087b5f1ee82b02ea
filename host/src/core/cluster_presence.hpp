// Presence for the whole cluster. Each host announces on the bus when a user
// comes online or goes offline here, and every heartbeat the full list of
// its online users: a lease that other hosts renew each time they hear from
// it. A host that falls silent (killed, cut off) has its users expire on the
// others after the lease; one stopping cleanly says goodbye at once. A user
// is online while any host has them. Every host announces the transitions it
// sees to its own sessions, so nothing is announced twice.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <unordered_set>

#include "core/presence.hpp"
#include "switchboard/bus.hpp"
#include "switchboard/services.hpp"

namespace switchboard::host {

struct PresenceTiming {
  std::chrono::milliseconds grace{10000};      // a user's last session closed: offline after this
  std::chrono::milliseconds heartbeat{3000};   // how often this host announces its users
  std::chrono::milliseconds lease{10000};      // a silent host's users expire after this
};

class ClusterPresence final : public Presence {
 public:
  static constexpr std::string_view kSubject = "presence";

  ClusterPresence(Bus& bus, boost::asio::io_context& timers, std::string origin, PresenceTiming timing,
                  OnChange on_change, Logger& log, Metrics& metrics);
  ~ClusterPresence() override;

  // Subscribes and starts the heartbeat. stop() says goodbye to the others.
  void start();
  void stop();

  void session_opened(const UserId& user) override { local_.session_opened(user); }
  void session_ready(const UserId& user, const std::vector<ConversationId>& conversations) override {
    local_.session_ready(user, conversations);
  }
  void session_closed(const UserId& user, const std::vector<ConversationId>* conversations = nullptr) override {
    local_.session_closed(user, conversations);
  }
  bool online(const UserId& user) const override;
  bool has_session_here(const UserId& user) const override { return local_.has_session_here(user); }
  bool online_elsewhere(const UserId& user) const override;
  bool online_here(const UserId& user) const { return local_.online(user); }

  // From the bus handler, for messages on kSubject.
  void on_bus_message(std::string_view payload);

 private:
  struct Host {
    std::unordered_set<UserId> users;
    std::chrono::steady_clock::time_point expires;
    std::int64_t generation = -1;  // of the snapshot being assembled
    std::int64_t chunks_seen = 0;
    std::unordered_set<UserId> incoming;
  };

  void local_changed(const UserId& user, bool online, const std::vector<ConversationId>* conversations);
  bool announced(const UserId& user) const;  // by another host, within its lease; under mutex_
  void heartbeat();
  void sweep();
  // Lock held. Records `user` on/off for `host`; appends cluster transitions.
  void add(Host& host, const UserId& user, std::vector<std::pair<UserId, bool>>& changes);
  void remove(Host& host, const UserId& user, std::vector<std::pair<UserId, bool>>& changes);
  void forget(const std::string& origin, std::vector<std::pair<UserId, bool>>& changes);
  // `conversations`: the changed user's, when a "+"/"-" message listed them.
  void announce(const std::vector<std::pair<UserId, bool>>& changes,
                const std::vector<ConversationId>* conversations = nullptr);
  void publish(const std::string& payload);

  Bus& bus_;
  boost::asio::io_context& timers_;
  std::string origin_;
  PresenceTiming timing_;
  OnChange on_change_;
  Logger& log_;
  Gauge& remote_hosts_;
  Counter& expired_;
  LocalPresence local_;

  // A heartbeat's list and a change are published in the order they were
  // observed, so a stale list never follows an "offline".
  std::mutex publish_mutex_;
  mutable std::mutex mutex_;
  std::unordered_map<std::string, Host> hosts_;      // other hosts, by origin
  std::unordered_map<UserId, int> remote_count_;     // on how many other hosts each user is online
  std::int64_t generation_ = 0;
  std::shared_ptr<boost::asio::steady_timer> heartbeat_timer_;
  std::shared_ptr<boost::asio::steady_timer> sweep_timer_;
  bool started_ = false;
  // Before this, the other hosts' users are not all known (the first lease
  // after start; never, if presence could not subscribe).
  std::chrono::steady_clock::time_point complete_after_ = std::chrono::steady_clock::time_point::max();
  bool stopped_ = false;
};

}  // namespace switchboard::host
