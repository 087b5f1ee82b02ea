#include "support/nats_server.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <stdexcept>
#include <thread>

namespace switchboard::testing {

namespace {

std::string nats_server_binary() {
  for (const char* p : {"/usr/sbin/nats-server", "/usr/bin/nats-server", "/usr/local/bin/nats-server"}) {
    if (std::filesystem::exists(p)) return p;
  }
  throw std::runtime_error("nats-server is not installed (scripts/install-deps.sh installs it)");
}

bool connects(std::uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  ::close(fd);
  return ok;
}

}  // namespace

std::uint16_t free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

bool wait_for_port(std::uint16_t port, std::chrono::milliseconds deadline) {
  auto until = std::chrono::steady_clock::now() + deadline;
  while (std::chrono::steady_clock::now() < until) {
    if (connects(port)) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

NatsServer::NatsServer() : port_(free_port()) { start(); }

NatsServer::~NatsServer() { stop(); }

void NatsServer::start() {
  process_ = std::make_unique<Process>(
      std::vector<std::string>{nats_server_binary(), "-a", "127.0.0.1", "-p", std::to_string(port_)});
  if (!wait_for_port(port_, std::chrono::seconds(10))) {
    throw std::runtime_error("nats-server did not start:\n" + process_->output());
  }
}

void NatsServer::stop() {
  if (!process_) return;
  process_->signal(15);
  process_->wait(std::chrono::seconds(10));
  process_.reset();
}

}  // namespace switchboard::testing
