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
//   a flow costs no hop the callbacks it replaces did not, and code after a
//   co_await runs where the callback would have (a storage thread, never
//   the session's worker unless the call completed there).
// - The answer is the co_return, and only that: an exception escaping the
//   body becomes `internal` (and is reported to the FlowFaults given to
//   answer()). So a flow answers exactly once by construction.
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
#include <string_view>
#include <thread>
#include <utility>

#include "switchboard/result.hpp"
#include "switchboard/storage.hpp"

namespace switchboard::host {

template <class T>
class Flow;

// Told when host code throws inside a flow (the flow then answers
// `internal`) or while its answer is delivered: logged and counted there.
class FlowFaults {
 public:
  virtual void threw(std::string_view what) noexcept = 0;

 protected:
  ~FlowFaults() = default;
};

namespace flow_detail {

// What every flow's promise shares: its place in a chain of nested flows.
struct Link {
  std::coroutine_handle<> self;
  Link* awaited_by = nullptr;    // the flow that co_awaits this one
  FlowFaults* faults = nullptr;  // the outermost flow's, from answer()
  // The outermost flow: its frame owns the nested ones (through the Flow
  // objects they are awaited as), so destroying it destroys the chain.
  Link& root() {
    Link* l = this;
    while (l->awaited_by) l = l->awaited_by;
    return *l;
  }
  void report(std::string_view what) noexcept {
    if (FlowFaults* f = root().faults) f->threw(what);
  }
};

inline std::string what_of(std::exception_ptr e) noexcept {
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& x) {
    return x.what();
  } catch (...) {
    return "an exception not derived from std::exception";
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
      FlowFaults* faults = p.faults;
      Result<T> r = std::move(*p.result);
      h.destroy();  // the frame goes before the answer: its locals are released
      if (answer) {
        try {
          answer(std::move(r));
        } catch (...) {
          if (faults) faults->threw(what_of(std::current_exception()));
        }
      }
      return std::noop_coroutine();
    }
    void await_resume() noexcept {}
  };
  Final final_suspend() noexcept { return {}; }

  void return_value(Result<T> r) { result.emplace(std::move(r)); }
  void unhandled_exception() noexcept {
    std::string what = what_of(std::current_exception());
    report(what);
    result.emplace(Error{Errc::internal, "internal error: " + what});
  }
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
  void answer(std::function<void(Result<T>)> answer, FlowFaults* faults = nullptr) && {
    auto h = std::exchange(h_, {});
    h.promise().answer = std::move(answer);
    h.promise().faults = faults;
    h.resume();
  }
  // Starts a flow whose result nobody waits for.
  void start(FlowFaults* faults = nullptr) && { std::move(*this).answer(nullptr, faults); }

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
// `start` runs when the flow suspends. The completion may run on any thread,
// before `start` returns or long after; the flow goes on on that thread. A
// completion called on another thread while the flow is still suspending
// (between `start` handing it out and returning) waits those few
// instructions, then resumes the flow itself.
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
    suspending_ = std::this_thread::get_id();
    std::shared_ptr<Call> call;
    try {
      call = std::make_shared<Call>(this);
      start_(Completion<T>([call](Result<T> r) { (*call)(std::move(r)); }));
    } catch (...) {
      if (!call || !call->called.exchange(true)) {  // it answered before throwing: that answer stands
        std::string what = flow_detail::what_of(std::current_exception());
        flow_->report(what);
        result_.emplace(Error{Errc::internal, "internal error: " + what});
        return false;
      }
    }
    call.reset();  // if that was the last copy, the completion was dropped
    switch (phase_.exchange(suspended, std::memory_order_acq_rel)) {
      case waiting_to_suspend:
        return true;  // its completion resumes the flow, or drops it
      case completed:
        return false;  // completed on this thread, inside `start`: go on here
      default:
        flow_->root().self.destroy();  // dropped on this thread, inside `start`
        return true;
    }
  }
  Result<T> await_resume() { return std::move(*result_); }

 private:
  // On another thread than the one suspending the flow, wait until it has.
  void wait_for_suspension() {
    if (std::this_thread::get_id() == suspending_) return;
    for (int spins = 0; phase_.load(std::memory_order_acquire) == waiting_to_suspend; ++spins) {
      if (spins > 64) std::this_thread::yield();
    }
  }
  void complete(Result<T> r) {
    result_.emplace(std::move(r));
    wait_for_suspension();
    if (phase_.exchange(completed, std::memory_order_acq_rel) == suspended) flow_->self.resume();
  }
  void drop() {
    wait_for_suspension();
    if (phase_.exchange(dropped, std::memory_order_acq_rel) == suspended) flow_->root().self.destroy();
  }

  Start start_;
  flow_detail::Link* flow_ = nullptr;
  std::thread::id suspending_;
  std::optional<Result<T>> result_;
  std::atomic<int> phase_{waiting_to_suspend};
};

template <class T, class Start>
Completed<T, std::decay_t<Start>> completion(Start&& start) {
  return Completed<T, std::decay_t<Start>>(std::forward<Start>(start));
}

}  // namespace switchboard::host
