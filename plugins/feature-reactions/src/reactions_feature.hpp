// feature-reactions: one reaction per (user, message, emoji). Reactions are
// conversation events (so resume carries them), stored as records (so any
// storage keeps them), and decorate messages in history.
#pragma once

#include <string>

#include "switchboard/feature.hpp"

namespace reactions {

class ReactionsFeature final : public switchboard::Feature {
 public:
  explicit ReactionsFeature(switchboard::PluginContext& context);

  std::vector<std::string> command_types() const override { return {"reaction.add", "reaction.remove"}; }
  std::vector<switchboard::HttpRoute> http_routes() const override;
  void start(switchboard::FeatureHost& host) override { host_ = &host; }
  void handle_command(const switchboard::Caller& caller, const switchboard::Command& command,
                      switchboard::Reply reply) override;
  void handle_http(const switchboard::Caller& caller, const switchboard::HttpRequest& request,
                   switchboard::HttpReply reply) override;
  std::string decoration_field() const override { return "reactions"; }
  void decorate(switchboard::ConversationId conversation, std::vector<switchboard::MessageId> messages,
                switchboard::Completion<std::vector<switchboard::MessageDecoration>> done) override;

 private:
  void react(const switchboard::UserId& user, switchboard::MessageId message, std::string emoji, bool add,
             switchboard::Reply reply);

  switchboard::FeatureHost* host_ = nullptr;
  std::size_t max_emoji_bytes_;
  switchboard::Counter& reactions_;
};

}  // namespace reactions
