// Blocks until an asynchronous operation completes. For tests, tools and the
// control plane; never call it on a thread that must stay responsive.
#pragma once

#include <future>
#include <utility>

#include "switchboard/result.hpp"
#include "switchboard/storage.hpp"

namespace switchboard {

// wait<Conversation>([&](auto done) { storage.get_conversation(id, done); })
template <class T, class Start>
Result<T> wait(Start&& start) {
  auto promise = std::make_shared<std::promise<Result<T>>>();
  auto future = promise->get_future();
  std::forward<Start>(start)(Completion<T>([promise](Result<T> r) { promise->set_value(std::move(r)); }));
  return future.get();
}

}  // namespace switchboard
