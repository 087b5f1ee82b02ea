// Accepts connections and spreads them over the workers, round robin.
#pragma once

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <memory>
#include <vector>

#include "net/http_session.hpp"

namespace switchboard::host {

class Listener {
 public:
  // Throws std::runtime_error naming the address when it cannot listen.
  Listener(std::vector<Worker*> workers, const std::string& listen, ServerContext& context);
  void start();
  void stop();  // any thread
  boost::asio::ip::tcp::endpoint endpoint() const { return endpoint_; }

 private:
  void accept();

  std::vector<Worker*> workers_;
  ServerContext& context_;
  boost::asio::ip::tcp::acceptor acceptor_;
  boost::asio::steady_timer backoff_;
  boost::asio::ip::tcp::endpoint endpoint_;
  std::size_t next_ = 0;
};

}  // namespace switchboard::host
