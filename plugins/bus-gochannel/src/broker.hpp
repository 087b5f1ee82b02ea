// The in-process "network" that every bus-gochannel instance in a process
// shares: a subject table from which publish hands a message to each
// subscribed instance's mailbox.
#pragma once

#include <map>
#include <memory>
#include <set>
#include <shared_mutex>
#include <string>
#include <string_view>

namespace gochannel {

// One published message, shared by every mailbox it is delivered to.
struct Envelope {
  std::string subject;
  std::string payload;
};

class Mailbox {
 public:
  virtual ~Mailbox() = default;
  // Never blocks for long: a full mailbox drops the message.
  virtual void post(const std::shared_ptr<const Envelope>& envelope) = 0;
};

class Broker {
 public:
  static Broker& instance();

  void subscribe(const std::string& subject, Mailbox* mailbox);
  void unsubscribe(const std::string& subject, Mailbox* mailbox);
  void unsubscribe_all(Mailbox* mailbox);
  void publish(const std::shared_ptr<const Envelope>& envelope);

 private:
  std::shared_mutex mutex_;
  std::map<std::string, std::set<Mailbox*>, std::less<>> subscribers_;
};

}  // namespace gochannel
