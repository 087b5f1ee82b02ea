// One worker per core: an io_context run by one thread, the sessions it
// owns, and which of them are in which conversation. A broadcast reaches a
// worker as one posted call carrying the shared frame; the worker writes it
// to its sessions without any lock.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include "core/delivery_meta.hpp"
#include "switchboard/types.hpp"

namespace switchboard::host {

class WsSession;

// What a worker tells the owner of delivery about its sessions (Fanout
// implements it). Called on the worker's thread.
class WorkerListener {
 public:
  virtual ~WorkerListener() = default;
  // The worker's first session in `id` / its last one left.
  virtual void first_member(std::size_t worker, ConversationId id, Seq known_last) = 0;
  virtual void last_member_left(std::size_t worker, ConversationId id) = 0;
  virtual void delivered(std::size_t frames) = 0;
  // An exception escaped a handler on this worker (it keeps running).
  virtual void handler_failed(std::size_t worker, const char* what) = 0;
};

class Worker {
 public:
  // `batch_window`: how long a frame that can wait (presence) waits for
  // others to the same session before it is written anyway.
  Worker(std::size_t index, WorkerListener& listener, std::chrono::milliseconds batch_window = {});
  ~Worker();

  boost::asio::io_context& io() { return io_; }
  std::size_t index() const { return index_; }
  void start(std::chrono::seconds sweep_every);
  void stop();  // stops the io_context and joins the thread; handlers still queued never run
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
  // A session with only frames that can wait: written at the end of the
  // batch window, or sooner with anything that cannot wait. Only while
  // batches() (WsSession checks).
  void mark_waiting(std::shared_ptr<WsSession> session);
  bool batches() const { return batch_window_.count() > 0; }  // false: nothing waits
  std::size_t session_count() const { return sessions_.size(); }

 private:
  void sweep();

  std::size_t index_;
  WorkerListener& listener_;
  boost::asio::io_context io_{1};
  boost::asio::steady_timer sweep_timer_{io_};
  std::chrono::seconds sweep_every_{5};
  std::thread thread_;
  std::vector<WsSession*> sessions_;
  std::unordered_map<ConversationId, std::vector<WsSession*>> members_;
  // Keyed by a view of the session's own user id (it outlives its entry):
  // one small node per session, nothing else.
  std::unordered_multimap<std::string_view, WsSession*> users_;
  std::vector<std::shared_ptr<WsSession>> dirty_;
  bool flush_posted_ = false;
  std::chrono::milliseconds batch_window_;
  boost::asio::steady_timer batch_timer_{io_};
  // A deque: in a storm every session may wait at once, and one vector that
  // large would be mmapped, which makes glibc raise its mmap and trim
  // thresholds for good (+100 bytes of RSS per idle connection measured).
  std::deque<std::shared_ptr<WsSession>> waiting_;
};

}  // namespace switchboard::host
