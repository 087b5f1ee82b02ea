// One worker per core: an io_context run by one thread, the sessions it
// owns, and which of them are in which conversation. A broadcast reaches a
// worker as one posted call carrying the shared frame; the worker writes it
// to its sessions without any lock.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "switchboard/types.hpp"

namespace switchboard::host {

class WsSession;
class Fanout;

// Who must be (un)subscribed when an event is delivered, and its seq.
struct DeliveryMeta {
  Seq seq = 0;                    // 0: ephemeral
  std::vector<UserId> join;       // subscribe these users' sessions first
  std::vector<UserId> leave;      // unsubscribe them after delivering
  UserId except;                  // do not deliver to this user (ephemeral events)
  UserId only;                    // deliver to this user only (ephemeral events)
};

class Worker {
 public:
  Worker(std::size_t index, Fanout& fanout);
  ~Worker();

  boost::asio::io_context& io() { return io_; }
  std::size_t index() const { return index_; }
  void start(std::chrono::seconds sweep_every);
  void stop();  // stops the io_context and joins the thread
  void join();

  // Any thread.
  template <class F>
  void post(F&& f) {
    boost::asio::post(io_, std::forward<F>(f));
  }

  // Worker thread only.
  void attach(WsSession* session);
  void detach(WsSession* session);
  // `known_last`: the conversation's last seq as the session loaded it (0: unknown).
  void subscribe(WsSession* session, ConversationId id, Seq known_last = 0);
  void unsubscribe(WsSession* session, ConversationId id);
  void deliver(ConversationId id, const std::shared_ptr<const std::string>& frame,
               const std::shared_ptr<const DeliveryMeta>& meta);
  // Closes every session with 1001 (graceful stop).
  void close_all(std::uint16_t code, std::string reason);
  // A session with frames to write: written in one pass after the handlers
  // already queued on this worker, so a burst leaves in one gather write.
  void mark_dirty(std::shared_ptr<WsSession> session);
  std::size_t session_count() const { return sessions_.size(); }

 private:
  void sweep();

  std::size_t index_;
  Fanout& fanout_;
  boost::asio::io_context io_{1};
  boost::asio::steady_timer sweep_timer_{io_};
  std::chrono::seconds sweep_every_{5};
  std::thread thread_;
  std::vector<WsSession*> sessions_;
  std::unordered_map<ConversationId, std::vector<WsSession*>> members_;
  std::unordered_map<UserId, std::vector<WsSession*>> users_;
  std::vector<std::shared_ptr<WsSession>> dirty_;
  bool flush_posted_ = false;
};

}  // namespace switchboard::host
