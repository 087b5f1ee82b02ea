// A command's path written top to bottom: a C++20 coroutine that co_awaits
// storage (any SDK Completion) and co_returns its one answer.
//
//   Flow<json::value> ChatService::join(Caller caller, json::object args) {
//     auto c = co_await storage_.get_conversation(id);   // a Result<Conversation>
//     if (!c) co_return c.error();
//     ...
//     co_return json::value(std::move(r));
//   }
//   chat.join(caller, std::move(args)).answer(reply);   // starts it
//
// - Lazy: a flow runs when answer() starts it, or when another flow
//   co_awaits it (then it hands its result back to that one).
// - A completion resumes the flow inline, on the thread that called it, so
//   a flow costs no hop the callbacks it replaces did not.
// - The answer is the co_return, and only that: an exception escaping the
//   body becomes `internal`. So a flow answers exactly once by construction.
// - A completion destroyed without being called (the storage dropped it:
//   after the host stopped, or a broken plugin) destroys the whole flow
//   without answering: nothing runs against the host and nothing leaks. A
//   WebSocket command then gets its deadline's `internal`.
//
// Parameters of a flow are copied into its frame: take them by value, never
// by reference (the caller's objects are gone by the first co_await).
#pragma once

#include <atomic>
#include <coroutine>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "switchboard/result.hpp"
#include "switchboard/storage.hpp"

namespace switchboard::host {

template <class T>
class Flow;

namespace flow_detail {

// What every flow's promise shares: its place in a chain of nested flows.
struct Link {
  std::coroutine_handle<> self;
  Link* awaited_by = nullptr;  // the flow that co_awaits this one
  // The outermost flow: its frame owns the nested ones (through the Flow
  // objects they are awaited as), so destroying it destroys the chain.
  std::coroutine_handle<> root() {
    Link* l = this;
    while (l->awaited_by) l = l->awaited_by;
    return l->self;
  }
};

inline Error from_exception(std::exception_ptr e) noexcept {
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& x) {
    return Error{Errc::internal, std::string("internal error: ") + x.what()};
  } catch (...) {
    return Error{Errc::internal, "internal error"};
  }
}

template <class T>
struct Promise : Link {
  std::optional<Result<T>> result;
  std::function<void(Result<T>)> answer;  // the outermost flow's only

  Promise() { self = std::coroutine_handle<Promise>::from_promise(*this); }
  Flow<T> get_return_object() noexcept { return Flow<T>(std::coroutine_handle<Promise>::from_promise(*this)); }
  std::suspend_always initial_suspend() noexcept { return {}; }

  struct Final {
    bool await_ready() noexcept { return false; }
    std::coroutine_handle<> await_suspend(std::coroutine_handle<Promise> h) noexcept {
      Promise& p = h.promise();
      if (p.awaited_by) return p.awaited_by->self;  // back to the awaiting flow
      auto answer = std::move(p.answer);
      Result<T> r = std::move(*p.result);
      h.destroy();  // the frame goes before the answer: its locals are released
      if (answer) {
        try {
          answer(std::move(r));
        } catch (...) {  // an answer that cannot be sent is not the flow's to report
        }
      }
      return std::noop_coroutine();
    }
    void await_resume() noexcept {}
  };
  Final final_suspend() noexcept { return {}; }

  void return_value(Result<T> r) { result.emplace(std::move(r)); }
  void unhandled_exception() noexcept { result.emplace(from_exception(std::current_exception())); }
};

}  // namespace flow_detail

template <class T>
class [[nodiscard]] Flow {
 public:
  using promise_type = flow_detail::Promise<T>;

  Flow(Flow&& other) noexcept : h_(std::exchange(other.h_, {})) {}
  Flow& operator=(Flow&&) = delete;
  ~Flow() {
    if (h_) h_.destroy();
  }

  // Starts the flow; `answer` gets its result exactly once — or never, if a
  // completion it waits for is dropped. Whatever the flow holds is released
  // before `answer` runs.
  void answer(std::function<void(Result<T>)> answer) && {
    auto h = std::exchange(h_, {});
    h.promise().answer = std::move(answer);
    h.resume();
  }
  // Starts a flow whose result nobody waits for.
  void start() && { std::move(*this).answer(nullptr); }

  // Awaited by another flow: runs it, then resumes the awaiting one with its
  // Result<T>.
  bool await_ready() const noexcept { return false; }
  template <class P>
  std::coroutine_handle<> await_suspend(std::coroutine_handle<P> awaiting) noexcept {
    h_.promise().awaited_by = &awaiting.promise();
    return h_;
  }
  Result<T> await_resume() { return std::move(*h_.promise().result); }

 private:
  friend struct flow_detail::Promise<T>;
  explicit Flow(std::coroutine_handle<promise_type> h) noexcept : h_(h) {}
  std::coroutine_handle<promise_type> h_;
};

// co_await on any call that answers through a Completion<T>:
//
//   Result<Member> m = co_await completion<Member>(
//       [&](Completion<Member> done) { storage.get_member(id, user, std::move(done)); });
//
// `start` runs when the flow suspends; the completion may run on any thread,
// before `start` returns or long after, and resumes the flow there.
template <class T, class Start>
class Completed {
  enum Phase : int { waiting_to_suspend, suspended, completed, dropped };

  // Shared by every copy of the completion handed out: it outlives this
  // awaiter (a storage may destroy its copy after the flow moved on).
  struct Call {
    explicit Call(Completed* a) : awaiter(a) {}
    Call(const Call&) = delete;
    ~Call() {
      if (!called.exchange(true)) awaiter->drop();
    }
    void operator()(Result<T> r) {
      if (!called.exchange(true)) awaiter->complete(std::move(r));
    }
    Completed* awaiter;
    std::atomic<bool> called{false};
  };

 public:
  explicit Completed(Start start) : start_(std::move(start)) {}
  Completed(const Completed&) = delete;

  bool await_ready() const noexcept { return false; }
  template <class P>
  bool await_suspend(std::coroutine_handle<P> h) noexcept {
    flow_ = &h.promise();
    auto call = std::make_shared<Call>(this);
    try {
      start_(Completion<T>([call](Result<T> r) { (*call)(std::move(r)); }));
    } catch (...) {
      if (!call->called.exchange(true)) {
        result_.emplace(flow_detail::from_exception(std::current_exception()));
        return false;
      }
    }
    call.reset();  // if that was the last copy, the completion was dropped
    // Suspend unless the completion already ran (or was dropped).
    return phase_.exchange(suspended, std::memory_order_acq_rel) == waiting_to_suspend;
  }
  Result<T> await_resume() { return std::move(*result_); }

 private:
  void complete(Result<T> r) {
    result_.emplace(std::move(r));
    if (phase_.exchange(completed, std::memory_order_acq_rel) == suspended) flow_->self.resume();
  }
  void drop() {
    // Read only if dropped before the flow suspended: it then goes on with
    // this error. Written first, so the suspending thread sees it.
    result_.emplace(Error{Errc::internal, "a completion was destroyed without being called"});
    if (phase_.exchange(dropped, std::memory_order_acq_rel) == suspended) flow_->root().destroy();
  }

  Start start_;
  flow_detail::Link* flow_ = nullptr;
  std::optional<Result<T>> result_;
  std::atomic<int> phase_{waiting_to_suspend};
};

template <class T, class Start>
Completed<T, std::decay_t<Start>> completion(Start&& start) {
  return Completed<T, std::decay_t<Start>>(std::forward<Start>(start));
}

}  // namespace switchboard::host
