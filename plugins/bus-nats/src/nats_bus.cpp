// bus-nats: the bus over a NATS server (nats.c). A subject per conversation
// under a prefix; a host subscribes only while it has members online there.
// Reconnects by itself (publishes are buffered meanwhile) and reports
// unhealthy while disconnected, so /ready turns false.
#include <nats/nats.h>

#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>

#include "switchboard/bus.hpp"

namespace nats_bus {

using namespace switchboard;

// nats.c runs threads of its own. The first bus opens the library; the last
// one closes it and waits for those threads, so the host can then unload
// this plugin safely (the host keeps every accepted plugin mapped anyway, in case the wait times out).
class Library {
 public:
  static void acquire() {
    std::lock_guard lock(mutex());
    if (users()++ == 0) nats_Open(-1);
  }
  static void release() {
    std::lock_guard lock(mutex());
    if (--users() == 0) nats_CloseAndWait(5000);
  }

 private:
  static std::mutex& mutex() {
    static std::mutex m;
    return m;
  }
  static int& users() {
    static int n = 0;
    return n;
  }
};

class NatsBus final : public Bus {
 public:
  explicit NatsBus(PluginContext& context) : log_(context.logger()) {
    const PluginConfig& config = context.config();
    url_ = config.string_or("url", "nats://127.0.0.1:4222");
    prefix_ = config.string_or("subject_prefix", "switchboard.");
    auto reconnect_wait_ms = config.integer_or("reconnect_wait_ms", 500);
    auto connect_timeout_ms = config.integer_or("connect_timeout_ms", 2000);
    auto reconnect_buffer = config.integer_or("reconnect_buffer_bytes", 8 << 20);
    if (reconnect_wait_ms < 10) config.fail("reconnect_wait_ms", "must be at least 10");
    if (connect_timeout_ms < 10) config.fail("connect_timeout_ms", "must be at least 10");
    if (!prefix_.empty() && prefix_.back() != '.') config.fail("subject_prefix", "must end with '.'");
    dropped_ = &context.metrics().counter("bus_nats_disconnects_total", "Times the NATS connection was lost");

    Library::acquire();
    try {
      connect(context, reconnect_wait_ms, connect_timeout_ms, reconnect_buffer);
    } catch (...) {
      if (options_) natsOptions_Destroy(options_);
      Library::release();
      throw;
    }
  }

  void connect(PluginContext&, std::int64_t reconnect_wait_ms, std::int64_t connect_timeout_ms,
               std::int64_t reconnect_buffer) {
    check(natsOptions_Create(&options_), "options");
    check(natsOptions_SetURL(options_, url_.c_str()), "url");
    check(natsOptions_SetMaxReconnect(options_, -1), "reconnect");  // forever
    check(natsOptions_SetReconnectWait(options_, reconnect_wait_ms), "reconnect wait");
    check(natsOptions_SetTimeout(options_, connect_timeout_ms), "timeout");
    check(natsOptions_SetReconnectBufSize(options_, static_cast<int>(reconnect_buffer)), "reconnect buffer");
    // One delivery pool for every subscription, not a thread per subject.
    check(natsOptions_UseGlobalMessageDelivery(options_, true), "global delivery");
    check(natsOptions_SetDisconnectedCB(options_, &NatsBus::on_disconnected, this), "callbacks");
    check(natsOptions_SetReconnectedCB(options_, &NatsBus::on_reconnected, this), "callbacks");
    check(natsOptions_SetClosedCB(options_, &NatsBus::on_closed, this), "callbacks");
    // A server down at start is an outage to ride out, not a config error.
    check(natsOptions_SetRetryOnFailedConnect(options_, true, &NatsBus::on_reconnected, this), "retry");
    natsStatus s = natsConnection_Connect(&connection_, options_);
    if (s != NATS_OK && s != NATS_NOT_YET_CONNECTED) {
      std::string why = nats_GetLastError(nullptr) ? nats_GetLastError(nullptr) : natsStatus_GetText(s);
      throw std::runtime_error("cannot connect to " + url_ + ": " + why);
    }
    if (s == NATS_NOT_YET_CONNECTED) log_.warn("NATS not reachable yet; retrying in the background", {{"url", url_}});
  }

  ~NatsBus() override {
    stop();
    // nats.c reports a close on its own thread, later: wait for that report
    // before this object goes, so no callback ever sees it destroyed.
    natsConnection_Close(connection_);
    {
      std::unique_lock lock(mutex_);
      closed_changed_.wait_for(lock, std::chrono::seconds(10), [this] { return closed_; });
    }
    natsConnection_Destroy(connection_);
    natsOptions_Destroy(options_);
    Library::release();
  }

  Status start(BusHandler on_message) override {
    std::lock_guard lock(mutex_);
    if (stopped_) return make_error(Errc::conflict, "bus-nats: cannot restart a stopped bus");
    handler_ = std::move(on_message);
    return {};
  }

  void stop() noexcept override {
    std::map<std::string, natsSubscription*, std::less<>> subscriptions;
    {
      // Waits for a callback in progress; none runs the handler after this.
      std::lock_guard lock(mutex_);
      if (stopped_) return;
      stopped_ = true;
      subscriptions.swap(subscriptions_);
    }
    for (auto& [subject, sub] : subscriptions) {
      natsSubscription_Unsubscribe(sub);
      natsSubscription_Destroy(sub);
    }
  }

  Status publish(std::string_view subject, std::string_view payload) override {
    if (!valid_subject(subject)) return make_error(Errc::bad_request, "bus-nats: invalid subject \"" + std::string(subject) + "\"");
    std::string full = prefix_ + std::string(subject);
    natsStatus s = natsConnection_Publish(connection_, full.c_str(), payload.data(), static_cast<int>(payload.size()));
    if (s != NATS_OK) return make_error(Errc::unavailable, std::string("bus-nats: publish failed: ") + natsStatus_GetText(s));
    return {};
  }

  Status subscribe(std::string_view subject) override {
    if (!valid_subject(subject)) return make_error(Errc::bad_request, "bus-nats: invalid subject \"" + std::string(subject) + "\"");
    std::lock_guard lock(mutex_);
    if (stopped_) return make_error(Errc::unavailable, "bus-nats: stopped");
    std::string key(subject);
    if (subscriptions_.contains(key)) return {};
    natsSubscription* sub = nullptr;
    std::string full = prefix_ + key;
    natsStatus s = natsConnection_Subscribe(&sub, connection_, full.c_str(), &NatsBus::on_message, this);
    if (s != NATS_OK) return make_error(Errc::unavailable, std::string("bus-nats: subscribe failed: ") + natsStatus_GetText(s));
    subscriptions_.emplace(std::move(key), sub);
    return {};
  }

  Status unsubscribe(std::string_view subject) override {
    natsSubscription* sub = nullptr;
    {
      std::lock_guard lock(mutex_);
      auto it = subscriptions_.find(std::string(subject));
      if (it == subscriptions_.end()) return {};
      sub = it->second;
      subscriptions_.erase(it);
    }
    natsSubscription_Unsubscribe(sub);
    natsSubscription_Destroy(sub);
    return {};
  }

  Health health() const noexcept override {
    if (natsConnection_Status(connection_) == NATS_CONN_STATUS_CONNECTED) return {true, {}};
    return {false, "bus-nats: not connected to " + url_};
  }

 private:
  static void check(natsStatus s, const char* what) {
    if (s != NATS_OK) throw std::runtime_error(std::string("bus-nats: ") + what + ": " + natsStatus_GetText(s));
  }

  static void on_message(natsConnection*, natsSubscription*, natsMsg* msg, void* closure) {
    auto* self = static_cast<NatsBus*>(closure);
    std::string_view subject = natsMsg_GetSubject(msg);
    if (subject.starts_with(self->prefix_)) subject.remove_prefix(self->prefix_.size());
    {
      // One message at a time per bus; nothing after unsubscribe or stop.
      std::lock_guard lock(self->mutex_);
      if (!self->stopped_ && self->handler_ && self->subscriptions_.contains(std::string(subject))) {
        self->handler_(subject, std::string_view(natsMsg_GetData(msg), static_cast<std::size_t>(natsMsg_GetDataLength(msg))));
      }
    }
    natsMsg_Destroy(msg);
  }

  static void on_closed(natsConnection*, void* closure) {
    auto* self = static_cast<NatsBus*>(closure);
    std::lock_guard lock(self->mutex_);
    self->closed_ = true;
    self->closed_changed_.notify_all();
  }

  static void on_disconnected(natsConnection*, void* closure) {
    auto* self = static_cast<NatsBus*>(closure);
    {
      std::lock_guard lock(self->mutex_);
      if (self->stopped_) return;  // our own close
    }
    self->dropped_->add();
    self->log_.warn("disconnected from NATS; reconnecting", {{"url", self->url_}});
  }

  static void on_reconnected(natsConnection*, void* closure) {
    auto* self = static_cast<NatsBus*>(closure);
    self->log_.info("connected to NATS", {{"url", self->url_}});
  }

  Logger& log_;
  Counter* dropped_;
  std::string url_;
  std::string prefix_;
  natsOptions* options_ = nullptr;
  natsConnection* connection_ = nullptr;
  mutable std::mutex mutex_;
  bool stopped_ = false;
  bool closed_ = false;
  std::condition_variable closed_changed_;
  BusHandler handler_;
  std::map<std::string, natsSubscription*, std::less<>> subscriptions_;
};

}  // namespace nats_bus

SWITCHBOARD_PLUGIN(bus, "bus-nats", "0.1.0", nats_bus::NatsBus)
