// One thread with its own io_context for the host's serial side work:
// feature hooks and timers, bus (un)subscriptions, local-event hooks. Never
// a storage thread, never a worker: what runs here may be slow without
// delaying a commit or a delivery.
#pragma once

#include <boost/asio/io_context.hpp>
#include <functional>
#include <thread>

#include "core/run_loop.hpp"

namespace switchboard::host {

class ControlExecutor {
 public:
  // `failed` is told of an exception that escaped a handler (the thread runs on).
  explicit ControlExecutor(std::function<void(const char*)> failed) : failed_(std::move(failed)) {}
  ~ControlExecutor() { stop(); }
  ControlExecutor(const ControlExecutor&) = delete;
  ControlExecutor& operator=(const ControlExecutor&) = delete;

  boost::asio::io_context& io() { return io_; }
  void start() {
    thread_ = std::thread([this] { run_until_stopped(io_, failed_); });
  }
  // Stops at once: handlers still queued never run (they are destroyed with
  // the io_context). Joins the thread.
  void stop() {
    io_.stop();
    if (thread_.joinable()) thread_.join();
  }

 private:
  std::function<void(const char*)> failed_;
  boost::asio::io_context io_{1};
  std::thread thread_;
};

}  // namespace switchboard::host
