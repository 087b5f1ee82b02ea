// An in-process bus with one bug: unsubscribe does nothing. The contract
// runner must catch it and name the failing case.
#include <map>
#include <mutex>
#include <set>

#include "switchboard/bus.hpp"

namespace {

class BrokenBus;
std::mutex registry_mutex;
std::set<BrokenBus*> registry;

class BrokenBus final : public switchboard::Bus {
 public:
  explicit BrokenBus(switchboard::PluginContext&) {}
  ~BrokenBus() override { stop(); }
  switchboard::Status start(switchboard::BusHandler h) override {
    std::lock_guard lock(registry_mutex);
    handler_ = std::move(h);
    registry.insert(this);
    return {};
  }
  void stop() noexcept override {
    std::lock_guard lock(registry_mutex);
    registry.erase(this);
  }
  switchboard::Status publish(std::string_view subject, std::string_view payload) override {
    if (!switchboard::valid_subject(subject)) return switchboard::make_error(switchboard::Errc::bad_request, "bad subject");
    std::lock_guard lock(registry_mutex);
    for (BrokenBus* b : registry) {
      if (b->subjects_.contains(std::string(subject))) b->handler_(subject, payload);
    }
    return {};
  }
  switchboard::Status subscribe(std::string_view subject) override {
    if (!switchboard::valid_subject(subject)) return switchboard::make_error(switchboard::Errc::bad_request, "bad subject");
    std::lock_guard lock(registry_mutex);
    subjects_.emplace(subject);
    return {};
  }
  switchboard::Status unsubscribe(std::string_view) override { return {}; }  // the bug
  switchboard::Health health() const noexcept override { return {}; }

 private:
  switchboard::BusHandler handler_;
  std::set<std::string> subjects_;
};

}  // namespace

SWITCHBOARD_PLUGIN(bus, "test-broken-bus", "1.0.0", BrokenBus)
