#include "core/feature_registry.hpp"

#include <boost/json/parse.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/json/serialize.hpp>
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

FeatureRegistry::FeatureRegistry(Storage& storage, Fanout& fanout, boost::asio::io_context& timers, Logger& log)
    : storage_(storage), fanout_(fanout), timers_(timers), log_(log) {}

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
    f->start(*this);
  }
}

void FeatureRegistry::stop() noexcept {
  for (const auto& f : features_) f->stop();
  features_.clear();
  commands_.clear();
  routes_.clear();
  decorators_.clear();
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
  fanout_.publish_ephemeral(id, ephemeral_frame(id, type, payload_json), except);
}

void FeatureRegistry::send_to_member(ConversationId id, const UserId& member, std::string_view type,
                                     std::string_view payload_json) {
  fanout_.publish_ephemeral(id, ephemeral_frame(id, type, payload_json), {}, member);
}

void FeatureRegistry::after(std::chrono::milliseconds delay, std::function<void()> task) {
  auto timer = std::make_shared<boost::asio::steady_timer>(timers_, delay);
  timer->async_wait([timer, task = std::move(task)](const boost::system::error_code& ec) {
    if (!ec) task();
  });
}

void FeatureRegistry::event_committed(const Event& event) {
  for (const auto& f : features_) f->on_event(event);
}

void FeatureRegistry::session_opened(const Caller& caller) {
  for (const auto& f : features_) f->on_session_opened(caller);
}

void FeatureRegistry::session_closed(const Caller& caller) {
  for (const auto& f : features_) f->on_session_closed(caller);
}

}  // namespace switchboard::host
