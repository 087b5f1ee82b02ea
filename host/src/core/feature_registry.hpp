// The loaded features as the host uses them: which feature answers which
// command type and REST route, and who decorates history. Also the
// FeatureHost every feature receives. The set of features can change on a
// running host (replace()): lookups read an immutable table swapped whole.
//
// Every call into a feature goes through here, behind the exception
// firewall: a feature that throws gets the caller one `internal` answer and
// is counted; a reply called twice is dropped and counted. Hooks (on_event,
// session opened/closed) and timers run on the control executor, never on a
// storage thread or a worker. After the lifeline closes, a feature's calls
// into the host do nothing.
#pragma once

#include <boost/asio/io_context.hpp>
#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/fanout.hpp"
#include "core/guarded_storage.hpp"
#include "core/lifeline.hpp"
#include "switchboard/feature.hpp"

namespace switchboard::host {

// A feature as the registry runs it: its plugin's name and its object.
struct NamedFeature {
  std::string name;
  std::shared_ptr<Feature> object;
};

class FeatureRegistry final {
 public:
  // `control`: the serial executor running hooks and timers.
  FeatureRegistry(Storage& storage, Fanout& fanout, boost::asio::io_context& control, Logger& log,
                  const Lifeline& lifeline, FirewallMetrics metrics);
  ~FeatureRegistry();

  // Registers and starts each feature, before the control executor runs.
  // Throws std::runtime_error when two features claim one command type or
  // route, or claim a core one (`reserved_types`).
  void start(std::vector<NamedFeature> features, std::vector<std::string> reserved_types);
  // Live: `features` become the running set. A feature already running (the
  // same object) keeps running untouched; a new one is started, told of the
  // sessions open now, and its commands, routes and hooks work from then
  // on; one left out is stopped: its commands answer `unknown_type`, its
  // calls into the host and its pending timers do nothing. Its object lives
  // on until the registry goes (a command it was handling still answers).
  // Checks the claims first and throws std::runtime_error (as start()) with
  // nothing changed; a new feature whose start() throws makes it throw too,
  // the old set still running. Blocks until done: call it from a
  // control-plane thread, never from a worker or the control executor, and
  // only between start() and stop().
  void replace(std::vector<NamedFeature> features);
  void stop() noexcept;

  // Whether any feature runs (the hooks are worth calling).
  bool any() const noexcept { return running_.load(std::memory_order_relaxed); }
  // The names of the running features, in order.
  std::vector<std::string> names() const;

  // Lookups from any thread. The shared_ptr keeps the feature alive for
  // the call, even if a reload removes it meanwhile.
  std::shared_ptr<Feature> for_command(std::string_view type) const;
  struct RouteMatch {
    std::shared_ptr<Feature> feature;
    std::vector<std::pair<std::string, std::string>> params;
  };
  RouteMatch for_route(std::string_view method, std::string_view path) const;
  std::vector<std::shared_ptr<Feature>> decorators() const;

  // Firewalled calls into a feature: `reply` / `done` is called exactly once.
  void handle_command(Feature& feature, const Caller& caller, const Command& command, Reply reply);
  void handle_http(Feature& feature, const Caller& caller, const HttpRequest& request, HttpReply reply);
  void decorate(Feature& feature, ConversationId conversation, std::vector<MessageId> messages,
                Completion<std::vector<MessageDecoration>> done);

  // Hooks, forwarded to every running feature.
  void event_committed(const Event& event);  // on the control executor
  void session_opened(const Caller& caller);
  void session_closed(const Caller& caller);

 private:
  class Slot;  // the FeatureHost one feature is given
  struct Entry {
    std::string name;
    std::shared_ptr<Feature> feature;
    std::shared_ptr<Slot> slot;
  };
  struct Route {
    std::string method;
    std::vector<std::string> segments;
    std::shared_ptr<Feature> feature;
  };
  // What the lookups read: built whole, then published; never changed.
  struct Table {
    std::vector<std::shared_ptr<Entry>> entries;
    std::map<std::string, std::shared_ptr<Feature>, std::less<>> commands;
    std::vector<Route> routes;
    std::vector<std::shared_ptr<Feature>> decorators;
  };

  std::shared_ptr<const Table> table() const;
  // The table for `features`, reusing the entries of `old` for objects it
  // runs already. Throws std::runtime_error on a conflicting claim.
  std::shared_ptr<Table> build(std::vector<NamedFeature> features, const Table* old);
  void publish(std::shared_ptr<const Table> table);
  std::string ephemeral_frame(ConversationId id, std::string_view type, std::string_view payload_json);
  // Runs `call` on `feature`, catching what it throws (counted, logged).
  template <class Call>
  bool firewalled(const char* what, const std::string& name, Call&& call) noexcept;
  // `hook` on each running feature, firewalled. On the control executor.
  template <class Hook>
  void each_feature(const char* what, Hook&& hook);
  // FeatureHost, for the slots.
  void publish_event(const Event& event);
  void publish_ephemeral(ConversationId id, std::string_view type, std::string_view payload_json,
                         const UserId& except, const UserId& only);
  void after(std::chrono::milliseconds delay, std::function<void()> task, std::shared_ptr<Slot> slot);

  Storage& storage_;
  Fanout& fanout_;
  boost::asio::io_context& control_;
  Logger& log_;
  const Lifeline& lifeline_;
  FirewallMetrics metrics_;
  std::vector<std::string> reserved_;
  mutable std::mutex table_mutex_;
  std::shared_ptr<const Table> table_;
  std::atomic<bool> running_{false};
  // Removed features, kept alive until the registry goes: a completion or
  // a reply of theirs may still be queued somewhere.
  std::vector<std::shared_ptr<Entry>> retired_;
  // The sessions open on this host (control executor only), told to a
  // feature added live.
  std::unordered_map<std::uint64_t, UserId> sessions_;  // open sessions: id -> user
};

std::string percent_decode(std::string_view in);

// "/messages/42/reactions" -> {"messages", "42", "reactions"} (still encoded)
std::vector<std::string> path_segments(std::string_view path);

}  // namespace switchboard::host
