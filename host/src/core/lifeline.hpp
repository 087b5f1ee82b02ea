// The one guard around every callback the host hands to a plugin (storage
// completions, the bus handler, feature replies and timers). While open, a
// guarded call runs; close() waits for the calls running now and makes every
// later one a no-op, so nothing reaches a host object after the host stopped,
// whatever a plugin still holds.
#pragma once

#include <atomic>
#include <memory>
#include <thread>
#include <utility>

#include "switchboard/services.hpp"

namespace switchboard::host {

class Lifeline {
  struct State {
    std::atomic<bool> closed{false};
    std::atomic<int> active{0};
  };

 public:
  Lifeline() = default;
  Lifeline(const Lifeline&) = delete;
  Lifeline& operator=(const Lifeline&) = delete;

  // Held while a guarded call runs; false when the lifeline is closed.
  class Entry {
   public:
    explicit Entry(const Lifeline& line) : Entry(line.state_.get()) {}
    explicit Entry(State* state) : state_(state) {
      // Sequentially consistent on both sides: either close() sees this
      // entry active and waits, or this entry sees the lifeline closed.
      state_->active.fetch_add(1);
      if (state_->closed.load()) {
        state_->active.fetch_sub(1);
        state_ = nullptr;
      }
    }
    ~Entry() {
      if (state_) state_->active.fetch_sub(1);
    }
    Entry(const Entry&) = delete;
    Entry& operator=(const Entry&) = delete;
    explicit operator bool() const { return state_ != nullptr; }

   private:
    State* state_;
  };

  bool open() const { return !state_->closed.load(); }

  // After close() returns no guarded call is running or will run. Never call
  // it from a guarded call.
  void close() {
    state_->closed.store(true);
    while (state_->active.load() > 0) std::this_thread::yield();
  }

  // `f`, guarded: runs only while the lifeline is open. The state is shared,
  // so a guarded callable may outlive the Lifeline itself.
  // `dropped`, if given, counts the calls that came too late.
  template <class F>
  auto guard(F f, Counter* dropped = nullptr) const {
    return [state = state_, f = std::move(f), dropped](auto&&... args) mutable {
      Entry entry(state.get());
      if (entry) {
        f(std::forward<decltype(args)>(args)...);
      } else if (dropped) {
        dropped->add();
      }
    };
  }

 private:
  std::shared_ptr<State> state_ = std::make_shared<State>();
};

}  // namespace switchboard::host
