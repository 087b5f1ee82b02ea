// The loaded features as the host uses them: which feature answers which
// command type and REST route, and who decorates history. Also the
// FeatureHost every feature receives.
//
// Every call into a feature goes through here, behind the exception
// firewall: a feature that throws gets the caller one `internal` answer and
// is counted; a reply called twice is dropped and counted. Hooks (on_event,
// session opened/closed) and timers run on the control executor, never on a
// storage thread or a worker. After the lifeline closes, a feature's calls
// into the host do nothing.
#pragma once

#include <boost/asio/io_context.hpp>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/fanout.hpp"
#include "core/guarded_storage.hpp"
#include "core/lifeline.hpp"
#include "switchboard/feature.hpp"

namespace switchboard::host {

class FeatureRegistry final : public FeatureHost {
 public:
  // `control`: the serial executor running hooks and timers.
  FeatureRegistry(Storage& storage, Fanout& fanout, boost::asio::io_context& control, Logger& log,
                  const Lifeline& lifeline, FirewallMetrics metrics);

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

  // Firewalled calls into a feature: `reply` / `done` is called exactly once.
  void handle_command(Feature& feature, const Caller& caller, const Command& command, Reply reply);
  void handle_http(Feature& feature, const Caller& caller, const HttpRequest& request, HttpReply reply);
  void decorate(Feature& feature, ConversationId conversation, std::vector<MessageId> messages,
                Completion<std::vector<MessageDecoration>> done);

  // FeatureHost
  Storage& storage() override { return storage_; }
  void publish_event(const Event& event) override;
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
  // Runs `call` on `feature`, catching what it throws (counted, logged).
  template <class Call>
  bool firewalled(const char* what, Feature& feature, Call&& call) noexcept;
  // Each hook on the control executor, once per feature.
  template <class Hook>
  void each_feature_later(const char* what, Hook hook);

  Storage& storage_;
  Fanout& fanout_;
  boost::asio::io_context& control_;
  Logger& log_;
  const Lifeline& lifeline_;
  FirewallMetrics metrics_;
  std::vector<std::shared_ptr<Feature>> features_;
  std::map<std::string, Feature*, std::less<>> commands_;
  std::vector<Route> routes_;
  std::vector<Feature*> decorators_;
};

std::string percent_decode(std::string_view in);

// "/messages/42/reactions" -> {"messages", "42", "reactions"} (still encoded)
std::vector<std::string> path_segments(std::string_view path);

}  // namespace switchboard::host
