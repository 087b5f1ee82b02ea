// A real WebSocket client (Boost.Beast) for end-to-end tests: every wait
// has a deadline, frames arrive on a background thread.
#pragma once

#include <boost/json/value.hpp>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

namespace switchboard::testing {

using namespace std::chrono_literals;

struct HttpResult {
  int status = 0;
  std::string body;
  boost::json::value json() const;
};

// One request on a fresh connection; status 0 if the server could not be reached.
HttpResult http_request(std::uint16_t port, const std::string& method, const std::string& target,
                        const std::string& body = "", const std::string& token = "",
                        const std::map<std::string, std::string>& headers = {});

// The HTTP status of a WebSocket upgrade attempt (101 when accepted).
int upgrade_status(std::uint16_t port, const std::string& target, const std::map<std::string, std::string>& headers = {});

class WsClient {
 public:
  struct Options {
    std::string target = "/ws";
    std::map<std::string, std::string> headers;
    int receive_buffer = 0;  // SO_RCVBUF, to make a slow reader
    bool read = true;        // false: do not read until closed() (a stalled client)
    bool raw = false;        // closed() reads raw frames and never answers pings
  };

  // Connects and waits for `hello`. Throws std::runtime_error on failure.
  WsClient(std::uint16_t port, const std::string& token);
  WsClient(std::uint16_t port, const std::string& token, Options options);
  ~WsClient();

  void send(const std::string& text);
  void send_json(const boost::json::value& v);
  void send_binary(const std::string& data);
  // Sends a command and returns its ack/error (other frames stay queued).
  boost::json::object command(boost::json::object command, std::chrono::milliseconds deadline = 10s);

  // The next frame, or nothing by the deadline.
  std::optional<boost::json::object> next(std::chrono::milliseconds deadline = 10s);
  // The next frame of `type` (frames before it are dropped), or nothing.
  std::optional<boost::json::object> next_of(const std::string& type, std::chrono::milliseconds deadline = 10s);
  // Drops every frame received so far.
  void drain();
  // Waits for the connection to end; the close code (1006 if none was sent).
  std::optional<int> closed(std::chrono::milliseconds deadline = 10s);
  // True if no frame arrives within `quiet`.
  bool silent_for(std::chrono::milliseconds quiet);
  void close();

  const boost::json::object& hello() const { return hello_; }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  boost::json::object hello_;
  int next_id_ = 1000;
};

}  // namespace switchboard::testing
