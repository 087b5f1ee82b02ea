#include "net/worker.hpp"

#include <boost/asio/post.hpp>

#include "core/run_loop.hpp"
#include "net/ws_session.hpp"

namespace switchboard::host {

Worker::Worker(std::size_t index, WorkerListener& listener, std::chrono::milliseconds batch_window)
    : index_(index), listener_(listener), batch_window_(batch_window) {}

Worker::~Worker() { stop(); }

void Worker::start(std::chrono::seconds sweep_every) {
  sweep_every_ = sweep_every;
  sweep();
  thread_ = std::thread([this] {
    run_until_stopped(io_, [this](const char* what) { listener_.handler_failed(index_, what); });
  });
}

void Worker::stop() {
  io_.stop();
  join();
  if (thread_.joinable()) return;  // called from the worker itself
  // A session not reading holds itself (WsSession::read), and a flow
  // waiting for it to drain holds it too; nothing runs on this worker any
  // more, so let go of them here, once.
  std::vector<std::shared_ptr<WsSession>> sessions;
  for (WsSession* s : sessions_) {
    if (auto alive = s->weak_from_this().lock()) sessions.push_back(std::move(alive));
  }
  sessions_.clear();
  users_.clear();
  members_.clear();
  for (auto& s : sessions) s->abandon();
}

void Worker::join() {
  if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) thread_.join();
}

void Worker::attach(WsSession* session) {
  session->worker_slot = sessions_.size();
  sessions_.push_back(session);
  users_.emplace(session->user(), session);
}

void Worker::detach(WsSession* session) {
  std::size_t slot = session->worker_slot;
  if (slot < sessions_.size() && sessions_[slot] == session) {
    sessions_[slot] = sessions_.back();
    sessions_[slot]->worker_slot = slot;
    sessions_.pop_back();
  }
  auto [first, last] = users_.equal_range(session->user());
  for (auto it = first; it != last; ++it) {
    if (it->second == session) {
      users_.erase(it);
      break;
    }
  }
  // Copy: unsubscribe edits the session's list.
  auto conversations = session->conversations();
  for (ConversationId id : conversations) unsubscribe(session, id);
}

void Worker::subscribe(WsSession* session, ConversationId id, Seq known_last) {
  if (session->in(id)) return;
  session->add_conversation(id);
  auto& list = members_[id];
  if (list.empty()) listener_.first_member(index_, id, known_last);
  list.push_back(session);
}

void Worker::unsubscribe(WsSession* session, ConversationId id) {
  if (!session->in(id)) return;
  session->remove_conversation(id);
  auto it = members_.find(id);
  if (it == members_.end()) return;
  std::erase(it->second, session);
  if (it->second.empty()) {
    members_.erase(it);
    listener_.last_member_left(index_, id);
  }
}

void Worker::deliver(ConversationId id, const std::shared_ptr<const std::string>& frame,
                     const std::shared_ptr<const DeliveryMeta>& meta) {
  // (Un)subscribing and delivering never attach or detach a session: the
  // user's range stays valid while it is walked.
  for (const auto& user : meta->join) {
    auto [first, last] = users_.equal_range(user);
    for (auto it = first; it != last; ++it) subscribe(it->second, id);
  }
  if (!meta->only.empty()) {
    std::size_t delivered = 0;
    auto [first, last] = users_.equal_range(meta->only);
    for (auto it = first; it != last; ++it) {
      if (!it->second->in(id)) continue;
      it->second->deliver(id, frame, *meta);
      ++delivered;
    }
    listener_.delivered(delivered);
  } else if (auto it = members_.find(id); it != members_.end()) {
    std::size_t delivered = 0;
    for (WsSession* s : it->second) {
      if (!meta->except.empty() && s->user() == meta->except) continue;
      s->deliver(id, frame, *meta);
      ++delivered;
    }
    listener_.delivered(delivered);
  }
  for (const auto& user : meta->leave) {
    auto [first, last] = users_.equal_range(user);
    for (auto it = first; it != last; ++it) unsubscribe(it->second, id);
  }
}

void Worker::close_all(std::uint16_t code, std::string reason) {
  auto sessions = sessions_;
  for (WsSession* s : sessions) s->close(code, reason);
}

void Worker::mark_dirty(std::shared_ptr<WsSession> session) {
  dirty_.push_back(std::move(session));
  if (flush_posted_) return;
  flush_posted_ = true;
  post([this] {
    flush_posted_ = false;
    std::vector<std::shared_ptr<WsSession>> batch;
    batch.swap(dirty_);
    for (auto& s : batch) s->flush();
  });
}

void Worker::mark_waiting(std::shared_ptr<WsSession> session) {
  bool first = waiting_.empty();
  waiting_.push_back(std::move(session));
  if (!first) return;
  // One timer for the worker: every session that waits is written when the
  // window that its first frame opened ends.
  batch_timer_.expires_after(batch_window_);
  batch_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (ec) return;
    std::deque<std::shared_ptr<WsSession>> batch;
    batch.swap(waiting_);
    for (auto& s : batch) s->flush_waiting();
  });
}

void Worker::sweep() {
  auto now = std::chrono::steady_clock::now();
  auto sessions = sessions_;  // tick may detach
  for (WsSession* s : sessions) s->tick(now);
  sweep_timer_.expires_after(sweep_every_);
  sweep_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (!ec) sweep();
  });
}

}  // namespace switchboard::host
