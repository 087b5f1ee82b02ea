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
#include "core/awaited_storage.hpp"
#include "core/chat_service.hpp"
#include "core/flow.hpp"
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
  // Subscribes the session to its user's conversations, then says hello.
  Flow<bool> open(std::shared_ptr<WsSession> session);
  std::string hello(const WsSession& session, std::size_t conversations) const;
  // `subscribe`: replays each position in turn, then answers.
  Flow<boost::json::value> resume(std::shared_ptr<WsSession> session, std::shared_ptr<PendingAnswer> pending,
                                  std::vector<Position> positions);
  // One position: the events after it, then a `resume` frame; true if recovered.
  Flow<bool> replay(std::shared_ptr<WsSession> session, std::shared_ptr<PendingAnswer> pending, Position position);
  static constexpr int kReplayPage = 32;
  static constexpr int kMaxCatchUpRounds = 64;

  ChatService& chat_;
  FeatureRegistry& features_;
  AwaitedStorage storage_;
  Presence& presence_;
  const HostConfig& config_;
  Logger& log_;
  FirewallMetrics firewall_;
  std::map<std::string, ChatService::Operation, std::less<>> operations_;
  std::atomic<std::size_t> live_{0};
};

}  // namespace switchboard::host
