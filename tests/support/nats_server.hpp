// A real nats-server on a free loopback port, owned by a test so that a
// fault test can stop it and start it again on the same port.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "support/process.hpp"

namespace switchboard::testing {

class NatsServer {
 public:
  NatsServer();  // starts it; throws if it does not accept connections within 10 s
  ~NatsServer();
  std::string url() const { return "nats://127.0.0.1:" + std::to_string(port_); }
  void stop();
  void start();

 private:
  std::uint16_t port_ = 0;
  std::unique_ptr<Process> process_;
};

// A TCP port on 127.0.0.1 that was free a moment ago.
std::uint16_t free_port();
// True once something accepts connections on 127.0.0.1:port, false at the deadline.
bool wait_for_port(std::uint16_t port, std::chrono::milliseconds deadline);

}  // namespace switchboard::testing
