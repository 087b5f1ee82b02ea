// The chat's core operations, shared by WebSocket commands and REST: they
// check the caller's rights, write through storage (acknowledged only after
// the commit) and publish the resulting event to the members.
#pragma once

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>
#include <functional>
#include <string>
#include <vector>

#include "config/host_config.hpp"
#include "core/awaited_storage.hpp"
#include "core/fanout.hpp"
#include "core/flow.hpp"
#include "core/feature_registry.hpp"
#include "core/presence.hpp"
#include "switchboard/feature.hpp"
#include "switchboard/storage.hpp"

namespace switchboard::host {

// An operation's answer: the result object, or an Error with a stable code.
using Respond = std::function<void(Result<boost::json::value>)>;

// Each operation is one flow (core/flow.hpp): its checks, its storage calls
// and its publish read top to bottom, and its co_return is its one answer.
// Start one with `chat.send_message(caller, std::move(args)).answer(respond)`.
class ChatService {
 public:
  ChatService(Storage& storage, Fanout& fanout, Presence& presence, FeatureRegistry& features,
              const ChatConfig& config, Metrics& metrics, Logger& log);

  // Where host code that throws inside a command's flow is logged and
  // counted (switchboard_command_exceptions_total): give it to answer().
  FlowFaults* faults() { return &faults_; }

  using Answer = Flow<boost::json::value>;
  using Operation = Answer (ChatService::*)(Caller, boost::json::object);
  // The core command types ("message.send", ...) and their operations.
  static const std::vector<std::pair<std::string, Operation>>& operations();
  // The direct_key of the direct conversation between `a` and `b`.
  static std::string direct_pair_key(UserId a, UserId b);

  Answer create_conversation(Caller caller, boost::json::object args);
  Answer list_conversations(Caller caller, boost::json::object args);
  Answer get_conversation(Caller caller, boost::json::object args);
  Answer join(Caller caller, boost::json::object args);
  Answer leave(Caller caller, boost::json::object args);
  Answer add_member(Caller caller, boost::json::object args);
  Answer remove_member(Caller caller, boost::json::object args);
  Answer set_role(Caller caller, boost::json::object args);
  Answer send_message(Caller caller, boost::json::object args);
  Answer edit_message(Caller caller, boost::json::object args);
  Answer delete_message(Caller caller, boost::json::object args);
  Answer history(Caller caller, boost::json::object args);
  Answer presence(Caller caller, boost::json::object args);

  // The caller's membership, or forbidden (the conversation exists) or
  // not_found (it does not).
  Flow<Member> membership(ConversationId id, UserId user);

  // `events` with each decorating feature's data added to their messages.
  Flow<boost::json::array> decorate(ConversationId id, boost::json::array events);

 private:
  void timed(std::int64_t started_ns);
  // Whether `owner` may stop being one (leave, or step down when not
  // `leaving`): another owner remains — or, leaving, nobody else does.
  Flow<bool> ownership_kept(ConversationId id, UserId owner, bool leaving);

  struct Faults final : FlowFaults {
    Faults(Logger& l, Counter& c) : log(l), count(c) {}
    void threw(std::string_view what) noexcept override {
      count.add();
      log.error("host code threw in a command (answered internal)", {{"error", what}});
    }
    Logger& log;
    Counter& count;
  };

  AwaitedStorage storage_;
  Fanout& fanout_;
  Presence& presence_;
  FeatureRegistry& features_;
  const ChatConfig& config_;
  Counter& persisted_;
  Histogram& storage_seconds_;
  Faults faults_;
};

}  // namespace switchboard::host
