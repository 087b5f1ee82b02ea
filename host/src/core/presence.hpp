// Who is online. A user goes online with their first session and offline a
// grace period after their last one closes, so a page reload does not flap.
// ClusterPresence extends it across the hosts of a cluster.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "switchboard/types.hpp"

namespace switchboard::host {

class Presence {
 public:
  // Called (from any thread) when a user goes online (true) or offline,
  // with the user's conversations when known (the session that opened has
  // them loaded), or null: then they are for the callee to read.
  using OnChange =
      std::function<void(const UserId& user, bool online, const std::vector<ConversationId>* conversations)>;
  virtual ~Presence() = default;
  // A session opened: the user counts as here (a reload within the grace
  // period cancels going offline), but a user who was offline is announced
  // only once a session is ready.
  virtual void session_opened(const UserId& user) = 0;
  // A session of `user` loaded its conversations: if the user's coming
  // online is not announced yet, it is now, to those conversations (only
  // read during the call).
  virtual void session_ready(const UserId& user, const std::vector<ConversationId>& conversations) = 0;
  // `conversations`: the closing session's; kept through the grace period
  // for the offline announcement when it is the user's last.
  virtual void session_closed(const UserId& user, const std::vector<ConversationId>* conversations = nullptr) = 0;
  virtual bool online(const UserId& user) const = 0;
  // Whether a session of `user` is open on this host now (no grace period).
  virtual bool has_session_here(const UserId& user) const = 0;
  // Whether another host has announced `user` online (within its lease) —
  // or may have: true while that is not known (just started).
  virtual bool online_elsewhere(const UserId& user) const = 0;
};

class LocalPresence final : public Presence {
 public:
  LocalPresence(boost::asio::io_context& timers, std::chrono::milliseconds grace, OnChange on_change);
  void session_opened(const UserId& user) override;
  void session_ready(const UserId& user, const std::vector<ConversationId>& conversations) override;
  void session_closed(const UserId& user, const std::vector<ConversationId>* conversations = nullptr) override;
  bool online(const UserId& user) const override;
  bool has_session_here(const UserId& user) const override;
  bool online_elsewhere(const UserId&) const override { return false; }  // knows no other host
  std::vector<UserId> users() const;  // everyone online on this host

 private:
  struct Entry {
    int sessions = 0;
    bool announced = false;  // its coming online was told (a session was ready)
    std::shared_ptr<boost::asio::steady_timer> going_offline;
    // During the grace period only: the last session's conversations.
    std::unique_ptr<std::vector<ConversationId>> conversations;
  };

  boost::asio::io_context& timers_;
  std::chrono::milliseconds grace_;
  OnChange on_change_;
  mutable std::mutex mutex_;
  std::unordered_map<UserId, Entry> users_;
};

}  // namespace switchboard::host
