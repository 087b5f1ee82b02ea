// A feature adds commands (and REST routes) to the protocol, keeps its data
// in storage records, appends conversation events and publishes them to the
// members, all through FeatureHost, never through host internals.
#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "switchboard/plugin.hpp"
#include "switchboard/result.hpp"
#include "switchboard/storage.hpp"
#include "switchboard/types.hpp"

namespace switchboard {

// Who issued a command or request: the user of the token.
struct Caller {
  UserId user;
  std::uint64_t session_id = 0;  // 0: a REST request
};

// The views are valid during the handle_command call only: copy what you
// keep for later (a completion, a timer).
struct Command {
  std::string_view type;   // e.g. "reaction.add"
  std::string_view frame;  // the whole JSON text frame, `id` and `type` included
};

// The command's single answer: the JSON object for the ack's `result`, or an
// Error (sent as an `error` frame with its stable code).
using Reply = std::function<void(Result<std::string>)>;

struct HttpRoute {
  std::string method;   // "GET", "POST", "PUT", "DELETE"
  std::string pattern;  // "/messages/:id/reactions"; ":name" matches one segment
};

// The views are valid during the handle_http call only: copy what you keep.
struct HttpRequest {
  std::string_view method;
  std::string_view path;
  std::vector<std::pair<std::string, std::string>> params;  // from ":name" segments, decoded
  std::string_view body;
};

struct HttpResponse {
  int status = 200;
  std::string body;  // JSON
};

using HttpReply = std::function<void(HttpResponse)>;

// A feature's addition to one message in history, e.g. its reactions. `json`
// is a JSON value placed in the message object under decoration_field().
struct MessageDecoration {
  MessageId message_id = 0;
  std::string json;
};

// What the host offers a running feature.
class SWITCHBOARD_API FeatureHost {
 public:
  virtual ~FeatureHost() = default;
  virtual Storage& storage() = 0;
  // Sends an event already appended to storage to every member online, on
  // every host.
  virtual void publish_event(const Event& event) = 0;
  // Sends a non-persistent event (never stored, never replayed) to the
  // members online except `except`; the first shed for slow readers.
  virtual void publish_ephemeral(ConversationId id, std::string_view type, std::string_view payload_json,
                                 const UserId& except) = 0;
  // The same, to one member only (all of their sessions: here, and on each
  // other host where cluster presence has them online). Such a frame may
  // wait up to the operator's [chat] presence_batch_ms (200 ms by default,
  // at most 5 s) to share a write with that client's next frames: for
  // pushes like unread counts, not for what must arrive at once.
  virtual void send_to_member(ConversationId id, const UserId& member, std::string_view type,
                              std::string_view payload_json) = 0;
  // Runs `task` on a host thread after `delay` (e.g. a typing timeout).
  // There is no cancel: check on arrival whether it still applies.
  virtual void after(std::chrono::milliseconds delay, std::function<void()> task) = 0;
};

class SWITCHBOARD_API Feature : public Plugin {
 public:
  // The command types this feature answers, e.g. {"reaction.add", "reaction.remove"}.
  virtual std::vector<std::string> command_types() const = 0;
  virtual std::vector<HttpRoute> http_routes() const { return {}; }

  // `host` stays valid until the object is destroyed. A feature may be
  // started on a running host (a reload added it): on_session_opened then
  // follows for every session already open.
  virtual void start(FeatureHost& host) = 0;
  // At host stop, or when a reload removes or reconfigures the feature:
  // afterwards its commands are no longer routed to it, its ephemeral sends
  // do nothing and its pending `after` tasks never run; publish_event still
  // delivers (an event a command in flight stored). Called where hooks run,
  // never concurrently with one; a command already being handled on a
  // worker may still be running: let it finish and reply.
  virtual void stop() noexcept {}

  virtual void handle_command(const Caller& caller, const Command& command, Reply reply) = 0;
  virtual void handle_http(const Caller& caller, const HttpRequest& request, HttpReply reply) {
    (void)caller;
    (void)request;
    reply(HttpResponse{404, R"({"error":{"code":"not_found","message":"no such route"}})"});
  }

  // Hooks. Called on host threads; keep them short and never block.
  // Every persistent event committed through this host (by the core or any
  // feature), once, after the commit: e.g. unpin a deleted message.
  virtual void on_event(const Event& event) { (void)event; }
  // A WebSocket session of `caller.user` opened or closed on this host.
  virtual void on_session_opened(const Caller& caller) { (void)caller; }
  virtual void on_session_closed(const Caller& caller) { (void)caller; }

  // History decoration: when decoration_field() is not empty, the host asks
  // for every page of messages it returns and adds each decoration to its
  // message under that field. Messages without a decoration get nothing.
  virtual std::string decoration_field() const { return {}; }
  virtual void decorate(ConversationId conversation, std::vector<MessageId> messages,
                        Completion<std::vector<MessageDecoration>> done) {
    (void)conversation;
    (void)messages;
    done(std::vector<MessageDecoration>{});
  }
};

constexpr PluginKind plugin_kind_of(const Feature*) noexcept { return PluginKind::feature; }

// The structs a feature exchanges with the host by value: its own, and
// storage's (it calls storage).
constexpr SharedSizes shared_sizes_of(const Feature*) noexcept {
  SharedSizes s = shared_sizes_of(static_cast<const Storage*>(nullptr));
  using W = SharedStruct;
  detail::record_size<Caller>(s, W::caller);
  detail::record_size<Command>(s, W::command);
  detail::record_size<HttpRoute>(s, W::http_route);
  detail::record_size<HttpRequest>(s, W::http_request);
  detail::record_size<HttpResponse>(s, W::http_response);
  detail::record_size<MessageDecoration>(s, W::message_decoration);
  return s;
}

}  // namespace switchboard
