#include "core/cluster_presence.hpp"

#include <boost/asio/post.hpp>

#include "core/run_loop.hpp"

#include <optional>

#include "core/bus_wire.hpp"

namespace switchboard::host {

namespace {

// Bus payload: "SP1", origin, then one of
//   "+" user [n id…]   online here, and (when known, up to kListed) the
//   "-" user [n id…]   offline here   user's n conversations, so the
//                                     others announce it without a read
//   "=" generation chunk chunks users   heartbeat: part of the full list
//   "x"                goodbye: this host stops
constexpr std::string_view kTag = "SP1";
constexpr std::size_t kChunkUsers = 500;
constexpr std::size_t kListed = 1000;

}  // namespace

ClusterPresence::ClusterPresence(Bus& bus, boost::asio::io_context& timers, std::string origin, PresenceTiming timing,
                                 OnChange on_change, Logger& log, Metrics& metrics)
    : bus_(bus),
      timers_(timers),
      origin_(std::move(origin)),
      timing_(timing),
      on_change_(std::move(on_change)),
      log_(log),
      remote_hosts_(metrics.gauge("presence_remote_hosts", "Other hosts whose presence lease is current")),
      expired_(metrics.counter("presence_expired_hosts_total", "Hosts whose users went offline because they fell silent")),
      local_(timers, timing.grace, [this](const UserId& user, bool online, const std::vector<ConversationId>* conversations) {
               local_changed(user, online, conversations);
             }),
      heartbeat_timer_(std::make_shared<boost::asio::steady_timer>(timers)),
      sweep_timer_(std::make_shared<boost::asio::steady_timer>(timers)) {}

ClusterPresence::~ClusterPresence() { stop(); }

void ClusterPresence::start() {
  {
    std::lock_guard lock(mutex_);
    started_ = true;
    // Until every other host has sent a heartbeat, who is online there is
    // not known yet.
    complete_after_ = std::chrono::steady_clock::now() + timing_.lease;
  }
  if (auto s = bus_.subscribe(kSubject); !s) {
    log_.warn("presence: bus subscribe failed; other hosts' users will not show", {{"error", s.error().message}});
    std::lock_guard lock(mutex_);
    complete_after_ = std::chrono::steady_clock::time_point::max();
  }
  // The timers belong to their io_context's thread: armed there.
  boost::asio::post(timers_, [this] {
    heartbeat();
    sweep();
  });
}

void ClusterPresence::stop() {
  {
    std::lock_guard lock(mutex_);
    if (stopped_ || !started_) {
      stopped_ = true;  // never started (the host failed to start): nothing to cancel, nobody to tell
      return;
    }
    stopped_ = true;
  }
  // Cancelled on the timers' own thread (an Asio timer is not thread-safe),
  // waiting a bounded time for it: that thread is running while the host stops.
  run_there_and_wait(
      timers_,
      [heartbeat = heartbeat_timer_, sweep = sweep_timer_] {
        heartbeat->cancel();
        sweep->cancel();
      },
      std::chrono::seconds(2));
  std::string bye(kTag);
  wire::put(bye, origin_);
  wire::put(bye, "x");
  publish(bye);
}

bool ClusterPresence::online(const UserId& user) const {
  if (local_.online(user)) return true;
  std::lock_guard lock(mutex_);
  return announced(user);
}

bool ClusterPresence::online_elsewhere(const UserId& user) const {
  std::lock_guard lock(mutex_);
  // While not heard from every other host yet, anyone may be there.
  return std::chrono::steady_clock::now() < complete_after_ || announced(user);
}

bool ClusterPresence::announced(const UserId& user) const {
  auto it = remote_count_.find(user);
  return it != remote_count_.end() && it->second > 0;
}

void ClusterPresence::publish(const std::string& payload) {
  if (auto s = bus_.publish(kSubject, payload); !s) {
    log_.debug("presence: bus publish failed; the next heartbeat repairs it", {{"error", s.error().message}});
  }
}

void ClusterPresence::local_changed(const UserId& user, bool online,
                                    const std::vector<ConversationId>* conversations) {
  std::string message(kTag);
  wire::put(message, origin_);
  wire::put(message, online ? "+" : "-");
  wire::put(message, user);
  if (conversations && conversations->size() <= kListed) {
    wire::put(message, static_cast<std::int64_t>(conversations->size()));
    for (ConversationId id : *conversations) wire::put(message, id);
  }
  {
    std::lock_guard order(publish_mutex_);
    publish(message);
  }
  bool elsewhere;
  {
    std::lock_guard lock(mutex_);
    elsewhere = announced(user);
  }
  if (!elsewhere) on_change_(user, online, conversations);
}

void ClusterPresence::heartbeat() {
  std::unique_lock order(publish_mutex_);
  auto users = local_.users();
  std::int64_t generation;
  {
    std::lock_guard lock(mutex_);
    if (stopped_) return;
    generation = ++generation_;
  }
  std::size_t chunks = std::max<std::size_t>(1, (users.size() + kChunkUsers - 1) / kChunkUsers);
  for (std::size_t c = 0; c < chunks; ++c) {
    std::string message(kTag);
    wire::put(message, origin_);
    wire::put(message, "=");
    wire::put(message, generation);
    wire::put(message, static_cast<std::int64_t>(c));
    wire::put(message, static_cast<std::int64_t>(chunks));
    std::size_t first = c * kChunkUsers;
    std::size_t last = std::min(users.size(), first + kChunkUsers);
    wire::put(message, static_cast<std::int64_t>(last - first));
    for (std::size_t i = first; i < last; ++i) wire::put(message, users[i]);
    publish(message);
  }
  order.unlock();
  heartbeat_timer_->expires_after(timing_.heartbeat);
  heartbeat_timer_->async_wait([this, timer = heartbeat_timer_](const boost::system::error_code& ec) {
    if (!ec) heartbeat();
  });
}

void ClusterPresence::sweep() {
  std::vector<std::pair<UserId, bool>> changes;
  {
    std::lock_guard lock(mutex_);
    if (stopped_) return;
    auto now = std::chrono::steady_clock::now();
    std::vector<std::string> silent;
    for (const auto& [origin, host] : hosts_) {
      if (host.expires <= now) silent.push_back(origin);
    }
    for (const auto& origin : silent) {
      log_.warn("presence: host fell silent; its users are offline", {{"host", origin},
                {"users", std::to_string(hosts_[origin].users.size())}});
      expired_.add();
      forget(origin, changes);
    }
  }
  announce(changes);
  // Checked often enough that a lease ends at most a tenth late.
  sweep_timer_->expires_after(std::clamp(timing_.lease / 10, std::chrono::milliseconds(50), std::chrono::milliseconds(1000)));
  sweep_timer_->async_wait([this, timer = sweep_timer_](const boost::system::error_code& ec) {
    if (!ec) sweep();
  });
}

void ClusterPresence::add(Host& host, const UserId& user, std::vector<std::pair<UserId, bool>>& changes) {
  if (!host.users.insert(user).second) return;
  if (remote_count_[user]++ == 0) changes.emplace_back(user, true);
}

void ClusterPresence::remove(Host& host, const UserId& user, std::vector<std::pair<UserId, bool>>& changes) {
  if (host.users.erase(user) == 0) return;
  auto it = remote_count_.find(user);
  if (it == remote_count_.end()) return;
  if (--it->second == 0) {
    remote_count_.erase(it);
    changes.emplace_back(user, false);
  }
}

void ClusterPresence::forget(const std::string& origin, std::vector<std::pair<UserId, bool>>& changes) {
  auto it = hosts_.find(origin);
  if (it == hosts_.end()) return;
  auto users = it->second.users;
  for (const auto& u : users) remove(it->second, u, changes);
  hosts_.erase(it);
  remote_hosts_.set(static_cast<std::int64_t>(hosts_.size()));
}

// Transitions seen from the cluster's side; a user also online here did not
// change for anyone.
void ClusterPresence::announce(const std::vector<std::pair<UserId, bool>>& changes,
                               const std::vector<ConversationId>* conversations) {
  for (const auto& [user, online] : changes) {
    if (!local_.online(user)) on_change_(user, online, conversations);
  }
}

void ClusterPresence::on_bus_message(std::string_view payload) {
  if (!payload.starts_with(kTag)) return;
  payload.remove_prefix(kTag.size());
  std::string_view origin, kind;
  if (!wire::take(payload, origin) || !wire::take(payload, kind)) {
    log_.warn("presence: malformed bus message ignored");
    return;
  }
  if (origin == origin_) return;
  std::vector<std::pair<UserId, bool>> changes;
  std::optional<std::vector<ConversationId>> listed;  // the user's conversations, if the message has them
  {
    std::lock_guard lock(mutex_);
    if (stopped_) return;
    std::string key(origin);
    if (kind == "x") {
      forget(key, changes);
    } else {
      auto [it, fresh] = hosts_.try_emplace(key);
      Host& host = it->second;
      host.expires = std::chrono::steady_clock::now() + timing_.lease;
      if (fresh) remote_hosts_.set(static_cast<std::int64_t>(hosts_.size()));
      std::string_view user;
      std::int64_t generation = 0, chunk = 0, chunks = 0;
      std::vector<UserId> users;
      if ((kind == "+" || kind == "-") && wire::take(payload, user)) {
        std::int64_t n = 0;
        if (wire::take_number(payload, n) && n >= 0 && static_cast<std::size_t>(n) <= kListed) {
          listed.emplace();
          listed->reserve(static_cast<std::size_t>(n));
          std::int64_t id = 0;
          for (std::int64_t i = 0; i < n && wire::take_number(payload, id); ++i) listed->push_back(id);
          if (listed->size() != static_cast<std::size_t>(n)) listed.reset();  // malformed: read them instead
        }
        if (kind == "+") {
          add(host, UserId(user), changes);
        } else {
          remove(host, UserId(user), changes);
        }
      } else if (kind == "=" && wire::take_number(payload, generation) && wire::take_number(payload, chunk) &&
                 wire::take_number(payload, chunks) && wire::take_users(payload, users)) {
        // A heartbeat's chunks replace the host's list once all have arrived.
        if (generation != host.generation) {
          host.generation = generation;
          host.chunks_seen = 0;
          host.incoming.clear();
        }
        for (auto& u : users) host.incoming.insert(std::move(u));
        if (++host.chunks_seen == chunks) {
          std::vector<UserId> gone;
          for (const auto& u : host.users) {
            if (!host.incoming.contains(u)) gone.push_back(u);
          }
          for (const auto& u : gone) remove(host, u, changes);
          for (const auto& u : host.incoming) add(host, u, changes);
          host.incoming.clear();
          host.chunks_seen = 0;
        }
      } else {
        log_.warn("presence: malformed bus message ignored", {{"host", origin}});
      }
    }
  }
  announce(changes, listed ? &*listed : nullptr);
}

}  // namespace switchboard::host
