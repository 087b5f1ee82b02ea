// feature-pins: members with the configured role (and, by default, a
// message's author) pin messages. Pins are records plus conversation events,
// so they survive restarts and reach offline members on resume; deleting a
// pinned message unpins it.
#pragma once

#include "switchboard/feature.hpp"

namespace pins {

class PinsFeature final : public switchboard::Feature {
 public:
  explicit PinsFeature(switchboard::PluginContext& context);

  std::vector<std::string> command_types() const override { return {"pin.add", "pin.remove", "pins"}; }
  std::vector<switchboard::HttpRoute> http_routes() const override;
  void start(switchboard::FeatureHost& host) override { host_ = &host; }
  void handle_command(const switchboard::Caller& caller, const switchboard::Command& command,
                      switchboard::Reply reply) override;
  void handle_http(const switchboard::Caller& caller, const switchboard::HttpRequest& request,
                   switchboard::HttpReply reply) override;
  void on_event(const switchboard::Event& event) override;
  std::string decoration_field() const override { return "pinned"; }
  void decorate(switchboard::ConversationId conversation, std::vector<switchboard::MessageId> messages,
                switchboard::Completion<std::vector<switchboard::MessageDecoration>> done) override;

 private:
  void pin(const switchboard::UserId& user, switchboard::MessageId message, bool add, switchboard::Reply reply);
  void list(const switchboard::UserId& user, switchboard::ConversationId conversation, switchboard::Reply reply);

  switchboard::FeatureHost* host_ = nullptr;
  switchboard::Role min_role_;
  bool author_may_pin_;
  std::int64_t max_pins_;
};

}  // namespace pins
