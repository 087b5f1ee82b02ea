// Fan-in for asynchronous calls: start n of them, get every result once,
// in order, after the last one completes (on whichever thread finished it).
//
//   gather<Message>(ids.size(),
//       [&](std::size_t i, Completion<Message> done) { storage.get_message(ids[i], done); },
//       [](std::vector<Result<Message>> messages) { ... });
#pragma once

#include <cstddef>
#include <memory>
#include <mutex>
#include <optional>
#include <utility>
#include <vector>

#include "switchboard/storage.hpp"

namespace switchboard {

template <class T, class Start, class Done>
void gather(std::size_t n, Start&& start, Done&& done) {
  if (n == 0) {
    done(std::vector<Result<T>>{});
    return;
  }
  struct State {
    std::mutex mutex;
    std::vector<std::optional<Result<T>>> results;
    std::size_t left;
    std::optional<std::decay_t<Done>> done;  // a lambda has no default constructor
  };
  auto state = std::make_shared<State>();
  state->results.resize(n);
  state->left = n;
  state->done.emplace(std::forward<Done>(done));
  for (std::size_t i = 0; i < n; ++i) {
    start(i, Completion<T>([state, i](Result<T> r) {
      std::unique_lock lock(state->mutex);
      state->results[i].emplace(std::move(r));
      if (--state->left > 0) return;
      lock.unlock();
      std::vector<Result<T>> all;
      all.reserve(state->results.size());
      for (auto& result : state->results) all.push_back(std::move(*result));
      (*state->done)(std::move(all));
    }));
  }
}

}  // namespace switchboard
