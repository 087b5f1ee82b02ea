// One thread with its own io_context for the host's serial side work:
// feature hooks and timers, bus (un)subscriptions, local-event hooks. Never
// a storage thread, never a worker: what runs here may be slow without
// delaying a commit or a delivery.
#pragma once

#include <boost/asio/io_context.hpp>
#include <functional>
#include <thread>

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
    thread_ = std::thread([this] {
      auto work = boost::asio::make_work_guard(io_);
      for (;;) {
        try {
          io_.run();
          return;
        } catch (const std::exception& e) {
          failed_(e.what());
        } catch (...) {
          failed_("unknown exception");
        }
      }
    });
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
