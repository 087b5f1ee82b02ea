// bus-gochannel: the single-host bus. Each instance (a host) has a mailbox
// drained by its own thread, so a slow handler delays only its own host and
// never a publisher or another subscriber.
#pragma once

#include <condition_variable>
#include <deque>
#include <mutex>
#include <set>
#include <thread>

#include "broker.hpp"
#include "switchboard/bus.hpp"

namespace gochannel {

class GochannelBus final : public switchboard::Bus, private Mailbox {
 public:
  explicit GochannelBus(switchboard::PluginContext& context);
  ~GochannelBus() override;

  switchboard::Status start(switchboard::BusHandler on_message) override;
  void stop() noexcept override;
  switchboard::Status publish(std::string_view subject, std::string_view payload) override;
  switchboard::Status subscribe(std::string_view subject) override;
  switchboard::Status unsubscribe(std::string_view subject) override;
  switchboard::Health health() const noexcept override;

 private:
  void post(const std::shared_ptr<const Envelope>& envelope) override;
  void run();

  switchboard::Logger& log_;
  const std::size_t queue_bytes_limit_;
  switchboard::Counter& dropped_;
  switchboard::Counter& delivered_;

  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::shared_ptr<const Envelope>> queue_;
  std::size_t queued_bytes_ = 0;
  std::set<std::string, std::less<>> subscribed_;
  std::uint64_t dropped_since_warning_ = 0;
  bool running_ = false;
  bool stopping_ = false;
  switchboard::BusHandler handler_;
  std::thread dispatcher_;
};

}  // namespace gochannel
