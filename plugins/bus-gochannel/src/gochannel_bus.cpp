#include "gochannel_bus.hpp"

#include "switchboard/plugin.hpp"

namespace gochannel {

using switchboard::Errc;
using switchboard::make_error;
using switchboard::Status;

namespace {

std::size_t queue_bytes(const switchboard::PluginConfig& config) {
  auto bytes = config.integer_or("queue_bytes", 64 << 20);
  if (bytes <= 0) config.fail("queue_bytes", "must be a positive number of bytes");
  return static_cast<std::size_t>(bytes);
}

}  // namespace

GochannelBus::GochannelBus(switchboard::PluginContext& context)
    : log_(context.logger()),
      queue_bytes_limit_(queue_bytes(context.config())),
      dropped_(context.metrics().counter("bus_gochannel_dropped_total",
                                         "Messages dropped because a subscriber's mailbox was full")),
      delivered_(context.metrics().counter("bus_gochannel_delivered_total", "Messages handed to a host")) {}

GochannelBus::~GochannelBus() { stop(); }

Status GochannelBus::start(switchboard::BusHandler on_message) {
  std::lock_guard lock(mutex_);
  if (running_) return make_error(Errc::conflict, "bus-gochannel: already started");
  if (stopping_) return make_error(Errc::conflict, "bus-gochannel: cannot restart a stopped bus");
  handler_ = std::move(on_message);
  running_ = true;
  dispatcher_ = std::thread([this] { run(); });
  return {};
}

void GochannelBus::stop() noexcept {
  {
    std::lock_guard lock(mutex_);
    if (stopping_) return;
    stopping_ = true;
  }
  Broker::instance().unsubscribe_all(this);
  wake_.notify_all();
  if (dispatcher_.joinable()) {
    if (dispatcher_.get_id() == std::this_thread::get_id()) {
      dispatcher_.detach();  // called from our own handler: it ends after this callback
    } else {
      dispatcher_.join();
    }
  }
}

Status GochannelBus::publish(std::string_view subject, std::string_view payload) {
  if (!switchboard::valid_subject(subject)) {
    return make_error(Errc::bad_request, "bus-gochannel: invalid subject \"" + std::string(subject) + "\"");
  }
  Broker::instance().publish(std::make_shared<const Envelope>(Envelope{std::string(subject), std::string(payload)}));
  return {};
}

Status GochannelBus::subscribe(std::string_view subject) {
  if (!switchboard::valid_subject(subject)) {
    return make_error(Errc::bad_request, "bus-gochannel: invalid subject \"" + std::string(subject) + "\"");
  }
  {
    std::lock_guard lock(mutex_);
    if (stopping_) return make_error(Errc::unavailable, "bus-gochannel: stopped");
    if (!subscribed_.emplace(subject).second) return {};
  }
  Broker::instance().subscribe(std::string(subject), this);
  return {};
}

Status GochannelBus::unsubscribe(std::string_view subject) {
  {
    std::lock_guard lock(mutex_);
    auto it = subscribed_.find(subject);
    if (it == subscribed_.end()) return {};
    subscribed_.erase(it);
  }
  Broker::instance().unsubscribe(std::string(subject), this);
  return {};
}

switchboard::Health GochannelBus::health() const noexcept {
  std::lock_guard lock(mutex_);
  if (stopping_) return {false, "bus-gochannel: stopped"};
  return {true, {}};
}

void GochannelBus::post(const std::shared_ptr<const Envelope>& envelope) {
  std::size_t size = envelope->payload.size() + envelope->subject.size();
  {
    std::lock_guard lock(mutex_);
    if (stopping_) return;
    if (queued_bytes_ + size > queue_bytes_limit_ && !queue_.empty()) {
      dropped_.add();
      // One warning per burst of drops, not one line per message.
      if (dropped_since_warning_++ == 0) {
        log_.warn("subscriber mailbox full, dropping messages",
                  {{"queued_bytes", std::to_string(queued_bytes_)}, {"limit", std::to_string(queue_bytes_limit_)}});
      }
      return;
    }
    queue_.push_back(envelope);
    queued_bytes_ += size;
  }
  wake_.notify_one();
}

void GochannelBus::run() {
  std::unique_lock lock(mutex_);
  for (;;) {
    wake_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
    if (stopping_) return;
    auto envelope = std::move(queue_.front());
    queue_.pop_front();
    queued_bytes_ -= envelope->payload.size() + envelope->subject.size();
    if (queue_.empty()) dropped_since_warning_ = 0;
    // Checked at delivery, not at publish: once unsubscribe returns, nothing
    // more arrives on that subject, even what was already queued.
    if (!subscribed_.contains(envelope->subject)) continue;
    lock.unlock();
    handler_(envelope->subject, envelope->payload);
    delivered_.add();
    lock.lock();
  }
}

}  // namespace gochannel

SWITCHBOARD_PLUGIN(bus, "bus-gochannel", "0.1.0", gochannel::GochannelBus)
