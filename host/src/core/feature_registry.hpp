// The loaded features as the host uses them: which feature answers which
// command type and REST route, and who decorates history. Also the
// FeatureHost every feature receives.
#pragma once

#include <boost/asio/io_context.hpp>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/fanout.hpp"
#include "switchboard/feature.hpp"

namespace switchboard::host {

class FeatureRegistry final : public FeatureHost {
 public:
  FeatureRegistry(Storage& storage, Fanout& fanout, boost::asio::io_context& timers, Logger& log);

  // Registers and starts each feature. Throws std::runtime_error when two
  // features claim one command type or route, or claim a core one.
  void start(const std::vector<std::shared_ptr<Feature>>& features, const std::vector<std::string>& reserved_types);
  void stop() noexcept;

  Feature* for_command(std::string_view type) const;
  struct RouteMatch {
    Feature* feature = nullptr;
    std::vector<std::pair<std::string, std::string>> params;
  };
  RouteMatch for_route(std::string_view method, std::string_view path) const;
  const std::vector<Feature*>& decorators() const { return decorators_; }

  // FeatureHost
  Storage& storage() override { return storage_; }
  void publish_event(const Event& event) override { fanout_.publish(event); }
  void publish_ephemeral(ConversationId id, std::string_view type, std::string_view payload_json,
                         const UserId& except) override;
  void send_to_member(ConversationId id, const UserId& member, std::string_view type,
                      std::string_view payload_json) override;
  void after(std::chrono::milliseconds delay, std::function<void()> task) override;

  // Hooks, forwarded to every feature.
  void event_committed(const Event& event);
  void session_opened(const Caller& caller);
  void session_closed(const Caller& caller);

 private:
  struct Route {
    std::string method;
    std::vector<std::string> segments;
    Feature* feature;
  };

  std::string ephemeral_frame(ConversationId id, std::string_view type, std::string_view payload_json);

  Storage& storage_;
  Fanout& fanout_;
  boost::asio::io_context& timers_;
  Logger& log_;
  std::vector<std::shared_ptr<Feature>> features_;
  std::map<std::string, Feature*, std::less<>> commands_;
  std::vector<Route> routes_;
  std::vector<Feature*> decorators_;
};

std::string percent_decode(std::string_view in);

// "/messages/42/reactions" -> {"messages", "42", "reactions"} (still encoded)
std::vector<std::string> path_segments(std::string_view path);

}  // namespace switchboard::host
