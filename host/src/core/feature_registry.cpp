#include "core/feature_registry.hpp"

#include <boost/json/parse.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/json/serialize.hpp>
#include <atomic>
#include <boost/asio/post.hpp>
#include <stdexcept>

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

FeatureRegistry::FeatureRegistry(Storage& storage, Fanout& fanout, boost::asio::io_context& control, Logger& log,
                                 const Lifeline& lifeline, FirewallMetrics metrics)
    : storage_(storage), fanout_(fanout), control_(control), log_(log), lifeline_(lifeline), metrics_(metrics) {}

namespace {

// The name a feature gave itself, for logs: its first command type.
std::string feature_name(Feature& f) {
  try {
    auto types = f.command_types();
    return types.empty() ? std::string("a feature") : "the feature answering \"" + types.front() + "\"";
  } catch (...) {
    return "a feature";
  }
}

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
bool FeatureRegistry::firewalled(const char* what, Feature& feature, Call&& call) noexcept {
  return !firewall_described(metrics_, log_, "a feature threw; the host carries on",
                             [&] { return feature_name(feature) + " in " + what; }, std::forward<Call>(call));
}

template <class Hook>
void FeatureRegistry::each_feature_later(const char* what, Hook hook) {
  boost::asio::post(control_, lifeline_.guard([this, what, hook = std::move(hook)] {
    for (const auto& f : features_) firewalled(what, *f, [&] { hook(*f); });
  }));
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

}  // namespace

void FeatureRegistry::handle_command(Feature& feature, const Caller& caller, const Command& command, Reply reply) {
  auto [guarded, once] = once_only<Reply, Result<std::string>>(std::move(reply), lifeline_, metrics_);
  if (!firewalled("handle_command", feature, [&] { feature.handle_command(caller, command, guarded); })) {
    if (!once->answered.exchange(true)) {
      once->callback(Error{Errc::internal, "the feature handling \"" + std::string(command.type) + "\" failed"});
    }
  }
}

void FeatureRegistry::handle_http(Feature& feature, const Caller& caller, const HttpRequest& request, HttpReply reply) {
  auto [guarded, once] = once_only<HttpReply, HttpResponse>(std::move(reply), lifeline_, metrics_);
  if (!firewalled("handle_http", feature, [&] { feature.handle_http(caller, request, guarded); })) {
    if (!once->answered.exchange(true)) {
      once->callback(HttpResponse{500, R"({"error":{"code":"internal","message":"the feature handling this route failed"}})"});
    }
  }
}

void FeatureRegistry::decorate(Feature& feature, ConversationId conversation, std::vector<MessageId> messages,
                               Completion<std::vector<MessageDecoration>> done) {
  using Done = Completion<std::vector<MessageDecoration>>;
  auto [guarded, once] = once_only<Done, Result<std::vector<MessageDecoration>>>(std::move(done), lifeline_, metrics_);
  if (!firewalled("decorate", feature, [&] { feature.decorate(conversation, std::move(messages), guarded); })) {
    // History still answers, without this feature's decorations.
    if (!once->answered.exchange(true)) once->callback(std::vector<MessageDecoration>{});
  }
}

void FeatureRegistry::publish_event(const Event& event) {
  Lifeline::Entry alive(lifeline_);  // held for the whole call: the host cannot stop under it
  if (alive) fanout_.publish(event);
}

void FeatureRegistry::start(const std::vector<std::shared_ptr<Feature>>& features,
                            const std::vector<std::string>& reserved_types) {
  features_ = features;
  for (const auto& f : features_) {
    for (const auto& type : f->command_types()) {
      if (std::find(reserved_types.begin(), reserved_types.end(), type) != reserved_types.end()) {
        throw std::runtime_error("a feature claims the core command \"" + type + "\"");
      }
      if (!commands_.emplace(type, f.get()).second) {
        throw std::runtime_error("two features claim the command \"" + type + "\"");
      }
    }
    for (const auto& r : f->http_routes()) {
      routes_.push_back(Route{r.method, path_segments(r.pattern), f.get()});
    }
    if (!f->decoration_field().empty()) decorators_.push_back(f.get());
    f->start(*this);  // control plane: what it throws stops the host's start
  }
}

void FeatureRegistry::stop() noexcept {
  // The lookup tables stay as they are: workers and storage threads may still
  // read them until the host has stopped those. The features are destroyed
  // with the plugin set, after the host.
  for (const auto& f : features_) firewalled("stop", *f, [&] { f->stop(); });
}

Feature* FeatureRegistry::for_command(std::string_view type) const {
  auto it = commands_.find(type);
  return it == commands_.end() ? nullptr : it->second;
}

FeatureRegistry::RouteMatch FeatureRegistry::for_route(std::string_view method, std::string_view path) const {
  auto segments = path_segments(path);
  for (const auto& r : routes_) {
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
                                        const UserId& except) {
  Lifeline::Entry alive(lifeline_);
  if (alive) fanout_.publish_ephemeral(id, ephemeral_frame(id, type, payload_json), except);
}

void FeatureRegistry::send_to_member(ConversationId id, const UserId& member, std::string_view type,
                                     std::string_view payload_json) {
  Lifeline::Entry alive(lifeline_);
  if (alive) fanout_.publish_ephemeral(id, ephemeral_frame(id, type, payload_json), {}, member);
}

void FeatureRegistry::after(std::chrono::milliseconds delay, std::function<void()> task) {
  Lifeline::Entry alive(lifeline_);
  if (!alive) return;
  auto timer = std::make_shared<boost::asio::steady_timer>(control_, delay);
  timer->async_wait([timer, task = lifeline_.guard([this, task = std::move(task)] {
                       firewall(metrics_, log_, "a feature's timer threw; the host carries on", "after", task);
                     })](const boost::system::error_code& ec) mutable {
    if (!ec) task();
  });
}

void FeatureRegistry::event_committed(const Event& event) {
  // Already on the control executor (Fanout posts local events there).
  for (const auto& f : features_) firewalled("on_event", *f, [&] { f->on_event(event); });
}

void FeatureRegistry::session_opened(const Caller& caller) {
  each_feature_later("on_session_opened", [caller](Feature& f) { f.on_session_opened(caller); });
}

void FeatureRegistry::session_closed(const Caller& caller) {
  each_feature_later("on_session_closed", [caller](Feature& f) { f.on_session_closed(caller); });
}

}  // namespace switchboard::host
