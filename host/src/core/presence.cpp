#include "core/presence.hpp"

namespace switchboard::host {

LocalPresence::LocalPresence(boost::asio::io_context& timers, std::chrono::milliseconds grace, OnChange on_change)
    : timers_(timers), grace_(grace), on_change_(std::move(on_change)) {}

void LocalPresence::session_opened(const UserId& user) {
  std::lock_guard lock(mutex_);
  Entry& e = users_[user];
  if (e.going_offline) {
    // Back within the grace period: nobody saw them leave.
    e.going_offline->cancel();
    e.going_offline.reset();
    e.conversations.reset();
  }
  ++e.sessions;
}

void LocalPresence::session_ready(const UserId& user, const std::vector<ConversationId>& conversations) {
  {
    std::lock_guard lock(mutex_);
    auto it = users_.find(user);
    if (it == users_.end() || it->second.sessions == 0 || it->second.announced) return;
    it->second.announced = true;
  }
  on_change_(user, true, &conversations);
}

void LocalPresence::session_closed(const UserId& user, const std::vector<ConversationId>* conversations) {
  std::lock_guard lock(mutex_);
  auto it = users_.find(user);
  if (it == users_.end() || it->second.sessions == 0) return;
  if (--it->second.sessions > 0) return;
  auto timer = std::make_shared<boost::asio::steady_timer>(timers_, grace_);
  it->second.going_offline = timer;
  if (conversations) it->second.conversations = std::make_unique<std::vector<ConversationId>>(*conversations);
  timer->async_wait([this, user, timer](const boost::system::error_code& ec) {
    if (ec) return;  // cancelled: they came back
    std::unique_ptr<std::vector<ConversationId>> conversations;
    {
      std::lock_guard lock(mutex_);
      auto it = users_.find(user);
      if (it == users_.end() || it->second.going_offline != timer || it->second.sessions > 0) return;
      conversations = std::move(it->second.conversations);
      bool announced = it->second.announced;
      users_.erase(it);
      if (!announced) return;  // never told online (no session got ready): nothing to take back
    }
    on_change_(user, false, conversations.get());
  });
}

bool LocalPresence::online(const UserId& user) const {
  std::lock_guard lock(mutex_);
  auto it = users_.find(user);
  return it != users_.end();
}

bool LocalPresence::has_session_here(const UserId& user) const {
  std::lock_guard lock(mutex_);
  auto it = users_.find(user);
  return it != users_.end() && it->second.sessions > 0;
}

std::vector<UserId> LocalPresence::users() const {
  std::lock_guard lock(mutex_);
  std::vector<UserId> out;
  out.reserve(users_.size());
  for (const auto& [user, entry] : users_) out.push_back(user);
  return out;
}

}  // namespace switchboard::host
