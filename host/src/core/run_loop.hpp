// Runs an io_context on the calling thread until it is stopped. An exception
// escaping a handler (a bug) costs that handler, never the thread or the
// process: `failed` is told and the loop runs on.
#pragma once

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <chrono>
#include <exception>
#include <future>
#include <memory>

namespace switchboard::host {

template <class Failed>
void run_until_stopped(boost::asio::io_context& io, Failed&& failed) {
  auto work = boost::asio::make_work_guard(io);
  for (;;) {
    try {
      io.run();
      return;
    } catch (const std::exception& e) {
      failed(e.what());
    } catch (...) {
      failed("unknown exception");
    }
  }
}

// Runs `f` on `io`'s thread (Asio objects are not thread-safe) and waits for
// it to have run, at most `limit`: that thread may already be gone.
template <class F>
void run_there_and_wait(boost::asio::io_context& io, F f, std::chrono::milliseconds limit) {
  auto done = std::make_shared<std::promise<void>>();
  auto ran = done->get_future();
  boost::asio::post(io, [f = std::move(f), done]() mutable {
    f();
    done->set_value();
  });
  ran.wait_for(limit);
}

}  // namespace switchboard::host
