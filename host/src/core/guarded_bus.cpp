#include "core/guarded_bus.hpp"

namespace switchboard::host {

template <class Call>
Status GuardedBus::firewalled(const char* op, Call&& call) const {
  Status status;
  if (auto why = firewall(metrics_, log_, "the bus threw instead of answering", op, [&] { status = call(); })) {
    return Error{Errc::internal, std::string("bus failed in ") + op + ": " + *why};
  }
  return status;
}

Status GuardedBus::start(BusHandler on_message) {
  // The handler runs on the bus's threads: guarded, and nothing it throws
  // reaches them. Captures nothing of this object.
  BusHandler guarded = [line = lifeline_.guard([handler = std::move(on_message)](std::string_view subject,
                                                                                   std::string_view payload) {
                          handler(subject, payload);
                        }),
                        metrics = metrics_, &log = log_](std::string_view subject, std::string_view payload) mutable {
    firewall(metrics, log, "handling a bus message threw; it was dropped", subject, [&] { line(subject, payload); });
  };
  return firewalled("start", [&] { return inner_.start(std::move(guarded)); });
}

void GuardedBus::stop() noexcept { firewall(metrics_, log_, "the bus threw", "stop", [&] { inner_.stop(); }); }

Status GuardedBus::publish(std::string_view subject, std::string_view payload) {
  return firewalled("publish", [&] { return inner_.publish(subject, payload); });
}

Status GuardedBus::subscribe(std::string_view subject) {
  return firewalled("subscribe", [&] { return inner_.subscribe(subject); });
}

Status GuardedBus::unsubscribe(std::string_view subject) {
  return firewalled("unsubscribe", [&] { return inner_.unsubscribe(subject); });
}

Health GuardedBus::health() const noexcept {
  Health health;
  if (auto why = firewall(metrics_, log_, "the bus threw", "health", [&] { health = inner_.health(); })) {
    return Health{false, "health check threw: " + *why};
  }
  return health;
}

}  // namespace switchboard::host
