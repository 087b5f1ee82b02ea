#include "core/feature_registry.hpp"

#include <algorithm>
#include <atomic>
#include <future>
#include <stdexcept>

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

namespace switchboard::host {

std::string percent_decode(std::string_view in) {
  std::string out;
  out.reserve(in.size());
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  for (std::size_t i = 0; i < in.size(); ++i) {
    if (in[i] == '%' && i + 2 < in.size() && hex(in[i + 1]) >= 0 && hex(in[i + 2]) >= 0) {
      out += static_cast<char>(hex(in[i + 1]) * 16 + hex(in[i + 2]));
      i += 2;
    } else {
      out += in[i];
    }
  }
  return out;
}

std::vector<std::string> path_segments(std::string_view path) {
  std::vector<std::string> out;
  std::size_t i = 0;
  while (i < path.size()) {
    while (i < path.size() && path[i] == '/') ++i;
    std::size_t j = path.find('/', i);
    if (j == std::string_view::npos) j = path.size();
    if (j > i) out.emplace_back(path.substr(i, j - i));
    i = j;
  }
  return out;
}

// The FeatureHost one feature is given. After its feature is retired (a
// reload removed it) its ephemeral sends and timers do nothing; events it
// stored are still published.
class FeatureRegistry::Slot final : public FeatureHost, public std::enable_shared_from_this<Slot> {
 public:
  explicit Slot(FeatureRegistry& registry) : registry_(registry) {}
  void retire() noexcept { retired_.store(true); }
  bool retired() const noexcept { return retired_.load(); }

  Storage& storage() override { return registry_.storage_; }
  // Even once retired: the event is stored already (a command the feature
  // was handling when it was removed), and members must see it live.
  void publish_event(const Event& event) override { registry_.publish_event(event); }
  void publish_ephemeral(ConversationId id, std::string_view type, std::string_view payload_json,
                         const UserId& except) override {
    if (!retired()) registry_.publish_ephemeral(id, type, payload_json, except, {});
  }
  void send_to_member(ConversationId id, const UserId& member, std::string_view type,
                      std::string_view payload_json) override {
    if (!retired()) registry_.publish_ephemeral(id, type, payload_json, {}, member);
  }
  void after(std::chrono::milliseconds delay, std::function<void()> task) override {
    if (!retired()) registry_.after(delay, std::move(task), shared_from_this());
  }

 private:
  FeatureRegistry& registry_;
  std::atomic<bool> retired_{false};
};

FeatureRegistry::FeatureRegistry(Storage& storage, Fanout& fanout, boost::asio::io_context& control, Logger& log,
                                 const Lifeline& lifeline, FirewallMetrics metrics)
    : storage_(storage),
      fanout_(fanout),
      control_(control),
      log_(log),
      lifeline_(lifeline),
      metrics_(metrics),
      table_(std::make_shared<const Table>()) {}

FeatureRegistry::~FeatureRegistry() = default;

namespace {

// A callback the feature must call exactly once: later calls are dropped
// and counted; none runs after the host stopped.
template <class T>
struct Once {
  std::atomic<bool> answered{false};
  T callback;
  explicit Once(T c) : callback(std::move(c)) {}
};

}  // namespace

template <class Call>
bool FeatureRegistry::firewalled(const char* what, const std::string& name, Call&& call) noexcept {
  return !firewall_described(metrics_, log_, "a feature threw; the host carries on",
                             [&] { return "feature \"" + name + "\" in " + what; }, std::forward<Call>(call));
}

template <class Hook>
void FeatureRegistry::each_feature(const char* what, Hook&& hook) {
  auto now = table();
  for (const auto& e : now->entries) {
    if (!e->slot->retired()) firewalled(what, e->name, [&] { hook(*e->feature); });
  }
}

namespace {

// `callback` made once-only and guarded by the lifeline: the first call
// runs (while the host lives), later ones are dropped and counted. Also
// returns the state, so the host can answer itself if the feature threw.
template <class Callback, class Arg>
std::pair<Callback, std::shared_ptr<Once<Callback>>> once_only(Callback callback, const Lifeline& lifeline,
                                                                const FirewallMetrics& metrics) {
  auto once = std::make_shared<Once<Callback>>(std::move(callback));
  Callback guarded = [once, metrics,
                      line = lifeline.guard([](Once<Callback>& o, Arg& a) {
                        o.callback(std::move(a));
                        o.callback = nullptr;  // its captures (a session) go now, not with the last copy
                      }, &metrics.late_answers)](Arg a) mutable {
    if (once->answered.exchange(true)) {
      metrics.duplicate_answers.add();
      return;
    }
    line(*once, a);
  };
  return {std::move(guarded), std::move(once)};
}

// The name of the feature running `feature`, for logs.
template <class Entries>
std::string name_of(const Entries& entries, const Feature& feature) {
  for (const auto& e : entries) {
    if (e->feature.get() == &feature) return e->name;
  }
  return "a feature";
}

}  // namespace

void FeatureRegistry::handle_command(Feature& feature, const Caller& caller, const Command& command, Reply reply) {
  auto [guarded, once] = once_only<Reply, Result<std::string>>(std::move(reply), lifeline_, metrics_);
  auto call = [&] { feature.handle_command(caller, command, guarded); };
  if (!firewall_described(metrics_, log_, "a feature threw; the host carries on",
                          [&] { return "feature \"" + name_of(table()->entries, feature) + "\" in handle_command"; },
                          call)) {
    return;
  }
  if (!once->answered.exchange(true)) {
    once->callback(Error{Errc::internal, "the feature handling \"" + std::string(command.type) + "\" failed"});
  }
}

void FeatureRegistry::handle_http(Feature& feature, const Caller& caller, const HttpRequest& request, HttpReply reply) {
  auto [guarded, once] = once_only<HttpReply, HttpResponse>(std::move(reply), lifeline_, metrics_);
  auto call = [&] { feature.handle_http(caller, request, guarded); };
  if (!firewall_described(metrics_, log_, "a feature threw; the host carries on",
                          [&] { return "feature \"" + name_of(table()->entries, feature) + "\" in handle_http"; },
                          call)) {
    return;
  }
  if (!once->answered.exchange(true)) {
    once->callback(HttpResponse{500, R"({"error":{"code":"internal","message":"the feature handling this route failed"}})"});
  }
}

void FeatureRegistry::decorate(Feature& feature, ConversationId conversation, std::vector<MessageId> messages,
                               Completion<std::vector<MessageDecoration>> done) {
  using Done = Completion<std::vector<MessageDecoration>>;
  auto [guarded, once] = once_only<Done, Result<std::vector<MessageDecoration>>>(std::move(done), lifeline_, metrics_);
  auto call = [&] { feature.decorate(conversation, std::move(messages), guarded); };
  if (!firewall_described(metrics_, log_, "a feature threw; the host carries on",
                          [&] { return "feature \"" + name_of(table()->entries, feature) + "\" in decorate"; }, call)) {
    return;
  }
  // History still answers, without this feature's decorations.
  if (!once->answered.exchange(true)) once->callback(std::vector<MessageDecoration>{});
}

void FeatureRegistry::publish_event(const Event& event) {
  Lifeline::Entry alive(lifeline_);  // held for the whole call: the host cannot stop under it
  if (alive) fanout_.publish(event);
}

std::shared_ptr<const FeatureRegistry::Table> FeatureRegistry::table() const {
  std::lock_guard lock(table_mutex_);
  return table_;
}

void FeatureRegistry::publish(std::shared_ptr<const Table> table) {
  bool any = !table->entries.empty();
  {
    std::lock_guard lock(table_mutex_);
    table_ = std::move(table);
  }
  running_.store(any, std::memory_order_relaxed);
}

std::shared_ptr<FeatureRegistry::Table> FeatureRegistry::build(std::vector<NamedFeature> features, const Table* old) {
  auto table = std::make_shared<Table>();
  for (auto& f : features) {
    std::shared_ptr<Entry> entry;
    if (old) {
      for (const auto& e : old->entries) {
        if (e->feature == f.object) entry = e;
      }
    }
    if (!entry) entry = std::make_shared<Entry>(Entry{f.name, f.object, std::make_shared<Slot>(*this)});
    for (const auto& type : f.object->command_types()) {
      if (std::find(reserved_.begin(), reserved_.end(), type) != reserved_.end()) {
        throw std::runtime_error("feature \"" + f.name + "\" claims the core command \"" + type + "\"");
      }
      auto [it, fresh] = table->commands.emplace(type, f.object);
      if (!fresh) {
        throw std::runtime_error("two features claim the command \"" + type + "\": \"" +
                                 name_of(table->entries, *it->second) + "\" and \"" + f.name + "\"");
      }
    }
    for (const auto& r : f.object->http_routes()) {
      table->routes.push_back(Route{r.method, path_segments(r.pattern), f.object});
    }
    if (!f.object->decoration_field().empty()) table->decorators.push_back(f.object);
    table->entries.push_back(std::move(entry));
  }
  return table;
}

void FeatureRegistry::start(std::vector<NamedFeature> features, std::vector<std::string> reserved_types) {
  reserved_ = std::move(reserved_types);
  auto table = build(std::move(features), nullptr);
  publish(table);
  for (const auto& e : table->entries) e->feature->start(*e->slot);  // control plane: what it throws stops the start
}

void FeatureRegistry::replace(std::vector<NamedFeature> features) {
  auto old = table();
  std::shared_ptr<const Table> next = build(std::move(features), old.get());  // throws: nothing changed
  std::vector<std::shared_ptr<Entry>> added;
  std::vector<std::shared_ptr<Entry>> removed;
  auto contains = [](const Table& t, const std::shared_ptr<Entry>& e) {
    return std::find(t.entries.begin(), t.entries.end(), e) != t.entries.end();
  };
  for (const auto& e : next->entries) {
    if (!contains(*old, e)) added.push_back(e);
  }
  for (const auto& e : old->entries) {
    if (!contains(*next, e)) removed.push_back(e);
  }
  // On the control executor, so no hook or timer of a feature runs while it
  // starts or stops.
  // The failure crosses threads as a message, and the exception is made
  // here: an exception object made on the control thread and released there
  // after this thread read it is a race ThreadSanitizer reports (libstdc++'s
  // exception reference counts are not visible to it).
  std::promise<std::string> finished;  // empty: started
  boost::asio::post(control_, [&] {
    std::size_t started = 0;
    std::string failure;
    try {
      for (; started < added.size(); ++started) added[started]->feature->start(*added[started]->slot);
    } catch (const std::exception& e) {
      failure = e.what();
    } catch (...) {
      failure = "an exception that is not a std::exception";
    }
    if (started < added.size()) {
      // The ones started are stopped again; the old set keeps running.
      for (std::size_t i = 0; i < started; ++i) {
        added[i]->slot->retire();
        firewalled("stop", added[i]->name, [&] { added[i]->feature->stop(); });
      }
      added[started]->slot->retire();
      retired_.insert(retired_.end(), added.begin(), added.end());
      finished.set_value("feature \"" + added[started]->name + "\" cannot start: " + failure);
      return;
    }
    for (const auto& e : added) {
      for (const auto& [id, user] : sessions_) {
        firewalled("on_session_opened", e->name, [&] { e->feature->on_session_opened(Caller{user, id}); });
      }
    }
    publish(next);
    for (const auto& e : removed) {
      e->slot->retire();
      firewalled("stop", e->name, [&] { e->feature->stop(); });
      retired_.push_back(e);
    }
    finished.set_value({});
  });
  if (std::string failure = finished.get_future().get(); !failure.empty()) throw std::runtime_error(failure);
}

void FeatureRegistry::stop() noexcept {
  // The lookup tables stay as they are: workers and storage threads may still
  // read them until the host has stopped those. The features are destroyed
  // with the plugin set, after the host.
  auto now = table();
  for (const auto& e : now->entries) {
    e->slot->retire();
    firewalled("stop", e->name, [&] { e->feature->stop(); });
  }
}

std::vector<std::string> FeatureRegistry::names() const {
  std::vector<std::string> out;
  for (const auto& e : table()->entries) out.push_back(e->name);
  return out;
}

std::shared_ptr<Feature> FeatureRegistry::for_command(std::string_view type) const {
  auto now = table();
  auto it = now->commands.find(type);
  return it == now->commands.end() ? nullptr : it->second;
}

std::vector<std::shared_ptr<Feature>> FeatureRegistry::decorators() const { return table()->decorators; }

FeatureRegistry::RouteMatch FeatureRegistry::for_route(std::string_view method, std::string_view path) const {
  auto now = table();
  auto segments = path_segments(path);
  for (const auto& r : now->routes) {
    if (r.method != method || r.segments.size() != segments.size()) continue;
    RouteMatch m{r.feature, {}};
    bool ok = true;
    for (std::size_t i = 0; i < segments.size() && ok; ++i) {
      if (!r.segments[i].empty() && r.segments[i][0] == ':') {
        m.params.emplace_back(r.segments[i].substr(1), percent_decode(segments[i]));
      } else {
        ok = r.segments[i] == segments[i];
      }
    }
    if (ok) return m;
  }
  return {};
}

std::string FeatureRegistry::ephemeral_frame(ConversationId id, std::string_view type, std::string_view payload_json) {
  boost::json::object frame;
  frame["type"] = type;
  frame["conversation_id"] = id;
  std::error_code ec;
  auto payload = boost::json::parse(payload_json, ec);
  if (!ec && payload.is_object()) {
    for (auto& [k, v] : payload.as_object()) {
      if (!frame.contains(k)) frame[k] = v;
    }
  }
  return boost::json::serialize(frame);
}

void FeatureRegistry::publish_ephemeral(ConversationId id, std::string_view type, std::string_view payload_json,
                                        const UserId& except, const UserId& only) {
  Lifeline::Entry alive(lifeline_);
  if (alive) fanout_.publish_ephemeral(id, ephemeral_frame(id, type, payload_json), except, only);
}

void FeatureRegistry::after(std::chrono::milliseconds delay, std::function<void()> task, std::shared_ptr<Slot> slot) {
  Lifeline::Entry alive(lifeline_);
  if (!alive) return;
  auto timer = std::make_shared<boost::asio::steady_timer>(control_, delay);
  timer->async_wait([timer, task = lifeline_.guard([this, slot = std::move(slot), task = std::move(task)] {
                       if (slot->retired()) return;  // its feature was removed or stopped
                       firewall(metrics_, log_, "a feature's timer threw; the host carries on", "after", task);
                     })](const boost::system::error_code& ec) mutable {
    if (!ec) task();
  });
}

void FeatureRegistry::event_committed(const Event& event) {
  // Already on the control executor (Fanout posts local events there).
  each_feature("on_event", [&](Feature& f) { f.on_event(event); });
}

void FeatureRegistry::session_opened(const Caller& caller) {
  // One handler: the set of open sessions and the hooks move together, so a
  // feature added by replace() in between sees each session opened once.
  boost::asio::post(control_, lifeline_.guard([this, caller] {
    sessions_.emplace(caller.session_id, caller.user);
    each_feature("on_session_opened", [&](Feature& f) { f.on_session_opened(caller); });
  }));
}

void FeatureRegistry::session_closed(const Caller& caller) {
  boost::asio::post(control_, lifeline_.guard([this, caller] {
    sessions_.erase(caller.session_id);
    each_feature("on_session_closed", [&](Feature& f) { f.on_session_closed(caller); });
  }));
}

}  // namespace switchboard::host
