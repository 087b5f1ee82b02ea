// A bus whose factory fails, as a plugin that cannot reach its server would.
#include <stdexcept>

#include "switchboard/bus.hpp"

namespace {

class ThrowingBus final : public switchboard::Bus {
 public:
  explicit ThrowingBus(switchboard::PluginContext& context) {
    throw std::runtime_error("cannot connect to " + context.config().string_or("url", "nowhere"));
  }
  switchboard::Status start(switchboard::BusHandler) override { return {}; }
  void stop() noexcept override {}
  switchboard::Status publish(std::string_view, std::string_view) override { return {}; }
  switchboard::Status subscribe(std::string_view) override { return {}; }
  switchboard::Status unsubscribe(std::string_view) override { return {}; }
  switchboard::Health health() const noexcept override { return {}; }
};

}  // namespace

SWITCHBOARD_PLUGIN(bus, "test-throwing-bus", "1.0.0", ThrowingBus)
