// Limits on connections: how many are open (HTTP and WebSocket, for
// [server] max_connections), and how many from one address have not
// authenticated yet ([server] max_unauthenticated_per_ip), so idle or
// slow-handshake sockets from one client cannot take the host's capacity.
#pragma once

#include <array>
#include <atomic>
#include <boost/asio/ip/address.hpp>
#include <cstdint>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <utility>

namespace switchboard::host {

// Counts a connection as open for as long as it lives (HTTP, then WebSocket).
class ConnectionSlot {
 public:
  explicit ConnectionSlot(std::atomic<std::int64_t>& open) : open_(&open) { ++*open_; }
  ~ConnectionSlot() {
    if (open_) --*open_;
  }
  ConnectionSlot(ConnectionSlot&& other) noexcept : open_(std::exchange(other.open_, nullptr)) {}
  ConnectionSlot(const ConnectionSlot&) = delete;
  ConnectionSlot& operator=(const ConnectionSlot&) = delete;
  ConnectionSlot& operator=(ConnectionSlot&&) = delete;

 private:
  std::atomic<std::int64_t>* open_;
};

class UnauthenticatedConnections {
 public:
  explicit UnauthenticatedConnections(std::int64_t per_address) : per_address_(per_address) {}

  // Held from accept until the connection authenticates (or closes).
  class Ticket {
   public:
    Ticket() = default;
    Ticket(UnauthenticatedConnections* owner, boost::asio::ip::address address)
        : owner_(owner), address_(std::move(address)) {}
    Ticket(Ticket&& o) noexcept : owner_(std::exchange(o.owner_, nullptr)), address_(o.address_) {}
    Ticket& operator=(Ticket&& o) noexcept {
      if (this != &o) {
        release();
        owner_ = std::exchange(o.owner_, nullptr);
        address_ = o.address_;
      }
      return *this;
    }
    ~Ticket() { release(); }
    void release() {
      if (owner_) std::exchange(owner_, nullptr)->give_back(address_);
    }
    explicit operator bool() const { return owner_ != nullptr; }

   private:
    UnauthenticatedConnections* owner_ = nullptr;
    boost::asio::ip::address address_;
  };

  // An empty ticket if `address` already holds its share.
  Ticket take(const boost::asio::ip::address& address) {
    std::lock_guard lock(mutex_);
    auto& n = counts_[address];
    if (per_address_ > 0 && n >= per_address_) {
      if (n == 0) counts_.erase(address);
      return {};
    }
    ++n;
    return Ticket(this, address);
  }

 private:
  void give_back(const boost::asio::ip::address& address) {
    std::lock_guard lock(mutex_);
    auto it = counts_.find(address);
    if (it != counts_.end() && --it->second <= 0) counts_.erase(it);
  }

  std::int64_t per_address_;
  std::mutex mutex_;
  std::unordered_map<boost::asio::ip::address, std::int64_t> counts_;
};

}  // namespace switchboard::host
