// The bus as the host calls it: the plugin's bus behind the exception
// firewall. A call that throws answers an error Status (counted in
// switchboard_plugin_exceptions_total) instead of unwinding into the host;
// the handler it calls is the host's, guarded by the lifeline and caught.
#pragma once

#include "core/guarded_storage.hpp"
#include "core/lifeline.hpp"
#include "switchboard/bus.hpp"

namespace switchboard::host {

class GuardedBus final : public Bus {
 public:
  GuardedBus(Bus& inner, const Lifeline& lifeline, FirewallMetrics metrics, Logger& log)
      : inner_(inner), lifeline_(lifeline), metrics_(metrics), log_(log) {}

  Status start(BusHandler on_message) override;
  void stop() noexcept override;
  Status publish(std::string_view subject, std::string_view payload) override;
  Status subscribe(std::string_view subject) override;
  Status unsubscribe(std::string_view subject) override;
  Health health() const noexcept override;

 private:
  template <class Call>
  Status firewalled(const char* op, Call&& call) const;

  Bus& inner_;
  const Lifeline& lifeline_;
  FirewallMetrics metrics_;
  Logger& log_;
};

}  // namespace switchboard::host
