#include "core/guarded_bus.hpp"

namespace switchboard::host {

template <class Call>
Status GuardedBus::firewalled(const char* op, Call&& call) const {
  try {
    return std::forward<Call>(call)();
  } catch (const std::exception& e) {
    metrics_.plugin_exceptions.add();
    log_.error("the bus threw instead of answering", {{"operation", op}, {"error", e.what()}});
    return Error{Errc::internal, std::string("bus failed in ") + op + ": " + e.what()};
  } catch (...) {
    metrics_.plugin_exceptions.add();
    log_.error("the bus threw instead of answering", {{"operation", op}});
    return Error{Errc::internal, std::string("bus failed in ") + op};
  }
}

Status GuardedBus::start(BusHandler on_message) {
  // The handler runs on the bus's threads: guarded, and nothing it throws
  // reaches them. Captures nothing of this object.
  BusHandler guarded = [line = lifeline_.guard([handler = std::move(on_message)](std::string_view subject,
                                                                                   std::string_view payload) {
                          handler(subject, payload);
                        }),
                        metrics = metrics_, &log = log_](std::string_view subject, std::string_view payload) mutable {
    try {
      line(subject, payload);
    } catch (const std::exception& e) {
      metrics.plugin_exceptions.add();
      log.error("handling a bus message threw; it was dropped", {{"subject", subject}, {"error", e.what()}});
    } catch (...) {
      metrics.plugin_exceptions.add();
      log.error("handling a bus message threw; it was dropped", {{"subject", subject}});
    }
  };
  return firewalled("start", [&] { return inner_.start(std::move(guarded)); });
}

void GuardedBus::stop() noexcept {
  try {
    inner_.stop();
  } catch (...) {
    metrics_.plugin_exceptions.add();
    log_.error("the bus threw in stop()");
  }
}

Status GuardedBus::publish(std::string_view subject, std::string_view payload) {
  return firewalled("publish", [&] { return inner_.publish(subject, payload); });
}

Status GuardedBus::subscribe(std::string_view subject) {
  return firewalled("subscribe", [&] { return inner_.subscribe(subject); });
}

Status GuardedBus::unsubscribe(std::string_view subject) {
  return firewalled("unsubscribe", [&] { return inner_.unsubscribe(subject); });
}

Health GuardedBus::health() const {
  try {
    return inner_.health();
  } catch (const std::exception& e) {
    metrics_.plugin_exceptions.add();
    return Health{false, std::string("health check threw: ") + e.what()};
  }
}

}  // namespace switchboard::host
