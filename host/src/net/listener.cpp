#include "net/listener.hpp"

#include "core/run_loop.hpp"

#include <boost/asio/ip/address.hpp>
#include <stdexcept>

namespace switchboard::host {

namespace asio = boost::asio;
using asio::ip::tcp;

Listener::Listener(std::vector<Worker*> workers, const std::string& listen, ServerContext& context)
    : workers_(std::move(workers)), context_(context), acceptor_(workers_.front()->io()), backoff_(workers_.front()->io()) {
  auto colon = listen.rfind(':');
  std::string host = listen.substr(0, colon);
  if (host.size() > 1 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  boost::system::error_code ec;
  auto address = asio::ip::make_address(host.empty() ? "0.0.0.0" : host, ec);
  if (ec) throw std::runtime_error("server.listen: \"" + host + "\" is not an IP address");
  int port = 0;
  try {
    port = std::stoi(listen.substr(colon + 1));
  } catch (...) {
    throw std::runtime_error("server.listen: bad port in \"" + listen + "\"");
  }
  if (port < 0 || port > 65535) throw std::runtime_error("server.listen: bad port in \"" + listen + "\"");
  tcp::endpoint endpoint(address, static_cast<unsigned short>(port));
  acceptor_.open(endpoint.protocol(), ec);
  if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor_.bind(endpoint, ec);
  if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) throw std::runtime_error("cannot listen on " + listen + ": " + ec.message());
  endpoint_ = acceptor_.local_endpoint();
}

void Listener::start() {
  asio::post(acceptor_.get_executor(), [this] { accept(); });
}

void Listener::stop() {
  // Closed on the acceptor's thread; waits (bounded) until it is, so that no
  // connection is accepted after stop() returns.
  run_there_and_wait(
      workers_.front()->io(),
      [this] {
        boost::system::error_code ignored;
        acceptor_.close(ignored);
        backoff_.cancel();
      },
      std::chrono::seconds(2));
}

void Listener::accept() {
  Worker* worker = workers_[next_++ % workers_.size()];
  acceptor_.async_accept(worker->io(), [this, worker](boost::system::error_code ec, tcp::socket socket) {
    if (ec == asio::error::operation_aborted || !acceptor_.is_open() || context_.stopping.load()) return;
    if (ec) {
      // Out of file descriptors, most likely: do not spin, retry shortly.
      context_.log.warn("accept failed", {{"error", ec.message()}});
      backoff_.expires_after(std::chrono::milliseconds(100));
      backoff_.async_wait([this](boost::system::error_code e) {
        if (!e) accept();
      });
      return;
    }
    // Full, or this address holds its share of unauthenticated connections:
    // refuse at once rather than hold a socket we cannot serve.
    UnauthenticatedConnections::Ticket ticket;
    boost::system::error_code peer_error;
    auto peer = socket.remote_endpoint(peer_error);
    if (!peer_error) ticket = context_.unauthenticated.take(peer.address());
    if (context_.open_connections.load() >= context_.max_connections || !ticket) {
      context_.refused_connections.add();
      boost::system::error_code ignored;
      socket.close(ignored);
      accept();
      return;
    }
    worker->post([worker, socket = std::move(socket), ticket = std::move(ticket), this]() mutable {
      std::make_shared<HttpSession>(*worker, std::move(socket), context_, std::move(ticket))->start();
    });
    accept();
  });
}

}  // namespace switchboard::host
