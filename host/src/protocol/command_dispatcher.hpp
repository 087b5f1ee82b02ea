// Turns a session's text frames into commands: parses, checks, rate-limits,
// routes to the core or to a feature plugin, and answers each command with
// exactly one ack or error echoing its id. Also opens sessions (loads their
// conversations) and runs resume.
#pragma once

#include <atomic>
#include <boost/json/array.hpp>
#include <boost/json/value.hpp>
#include <memory>

#include "config/host_config.hpp"
#include "core/chat_service.hpp"
#include "core/feature_registry.hpp"
#include "core/presence.hpp"
#include "net/ws_session.hpp"
#include "protocol/command_frame.hpp"

namespace switchboard::host {

class CommandDispatcher final : public SessionHandler {
 public:
  CommandDispatcher(ChatService& chat, FeatureRegistry& features, Storage& storage, Presence& presence,
                    const HostConfig& config, Logger& log, FirewallMetrics firewall);

  void on_open(const std::shared_ptr<WsSession>& session) override;
  void on_message(const std::shared_ptr<WsSession>& session, std::string_view text, bool rate_limited) override;
  void on_closed(WsSession& session) override;

  std::size_t live_sessions() const { return live_.load(); }

 private:
  void load_conversations(std::shared_ptr<WsSession> session, ConversationId after, std::size_t loaded);
  void resume(std::shared_ptr<WsSession> session, std::shared_ptr<PendingAnswer> pending, boost::json::value id,
              std::vector<Position> positions,
              std::size_t next);
  void replay(std::shared_ptr<WsSession> session, Position position, std::function<void()> then);
  void replay_page(std::shared_ptr<WsSession> session, Position position, Seq from, std::function<void()> then);

  ChatService& chat_;
  FeatureRegistry& features_;
  Storage& storage_;
  Presence& presence_;
  const HostConfig& config_;
  Logger& log_;
  FirewallMetrics firewall_;
  std::map<std::string, ChatService::Operation, std::less<>> operations_;
  std::atomic<std::size_t> live_{0};
};

}  // namespace switchboard::host
