#include "broker.hpp"

#include <mutex>

namespace gochannel {

Broker& Broker::instance() {
  static Broker broker;
  return broker;
}

void Broker::subscribe(const std::string& subject, Mailbox* mailbox) {
  std::unique_lock lock(mutex_);
  subscribers_[subject].insert(mailbox);
}

void Broker::unsubscribe(const std::string& subject, Mailbox* mailbox) {
  std::unique_lock lock(mutex_);
  auto it = subscribers_.find(subject);
  if (it == subscribers_.end()) return;
  it->second.erase(mailbox);
  if (it->second.empty()) subscribers_.erase(it);
}

void Broker::unsubscribe_all(Mailbox* mailbox) {
  std::unique_lock lock(mutex_);
  for (auto it = subscribers_.begin(); it != subscribers_.end();) {
    it->second.erase(mailbox);
    it = it->second.empty() ? subscribers_.erase(it) : std::next(it);
  }
}

void Broker::publish(const std::shared_ptr<const Envelope>& envelope) {
  // Shared lock: publishers never wait for each other, only for (rare)
  // subscription changes. Posting only appends to a queue.
  std::shared_lock lock(mutex_);
  auto it = subscribers_.find(envelope->subject);
  if (it == subscribers_.end()) return;
  for (Mailbox* mailbox : it->second) mailbox->post(envelope);
}

}  // namespace gochannel
