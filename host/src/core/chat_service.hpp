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
#include "core/fanout.hpp"
#include "core/feature_registry.hpp"
#include "core/presence.hpp"
#include "switchboard/feature.hpp"
#include "switchboard/storage.hpp"

namespace switchboard::host {

// An operation's answer: the result object, or an Error with a stable code.
using Respond = std::function<void(Result<boost::json::value>)>;

class ChatService {
 public:
  ChatService(Storage& storage, Fanout& fanout, Presence& presence, FeatureRegistry& features,
              const ChatConfig& config, Metrics& metrics);

  using Operation = void (ChatService::*)(const Caller&, const boost::json::object&, Respond);
  // The core command types ("message.send", ...) and their operations.
  static const std::vector<std::pair<std::string, Operation>>& operations();

  void create_conversation(const Caller& caller, const boost::json::object& args, Respond done);
  void list_conversations(const Caller& caller, const boost::json::object& args, Respond done);
  void get_conversation(const Caller& caller, const boost::json::object& args, Respond done);
  void join(const Caller& caller, const boost::json::object& args, Respond done);
  void leave(const Caller& caller, const boost::json::object& args, Respond done);
  void add_member(const Caller& caller, const boost::json::object& args, Respond done);
  void remove_member(const Caller& caller, const boost::json::object& args, Respond done);
  void set_role(const Caller& caller, const boost::json::object& args, Respond done);
  void send_message(const Caller& caller, const boost::json::object& args, Respond done);
  void edit_message(const Caller& caller, const boost::json::object& args, Respond done);
  void delete_message(const Caller& caller, const boost::json::object& args, Respond done);
  void history(const Caller& caller, const boost::json::object& args, Respond done);
  void presence(const Caller& caller, const boost::json::object& args, Respond done);

  // Calls `then` with the caller's membership, or answers forbidden (the
  // conversation exists) or not_found (it does not).
  void with_member(ConversationId id, const UserId& user, Respond done, std::function<void(Member)> then);


  // Adds each decorating feature's data to the messages in `events`.
  void decorate(ConversationId id, boost::json::array events, std::function<void(boost::json::array)> done);

 private:
  void timed(std::int64_t started_ns);

  Storage& storage_;
  Fanout& fanout_;
  Presence& presence_;
  FeatureRegistry& features_;
  const ChatConfig& config_;
  Counter& persisted_;
  Histogram& storage_seconds_;
};

}  // namespace switchboard::host
