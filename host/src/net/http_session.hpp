// One TCP connection before (or without) WebSocket: reads HTTP requests,
// answers REST, or authenticates and upgrades to a WsSession. Runs on its
// worker's thread.
#pragma once

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/http/parser.hpp>
#include <memory>
#include <optional>
#include <utility>

#include "http/rest_api.hpp"
#include "net/connection.hpp"
#include "net/connection_limits.hpp"
#include "net/tls_context.hpp"
#include "net/worker.hpp"
#include "net/ws_session.hpp"

namespace switchboard::host {

struct ServerContext {
  const HostConfig& config;
  const SessionSettings& settings;
  SessionHandler& sessions;
  RestApi& rest;
  const TokenVerifier& verifier;
  Clock& clock;
  Logger& log;
  Counter& unauthorized;
  std::atomic<std::uint64_t>& next_session_id;
  // Open TCP connections (HTTP and WebSocket), for [server] max_connections.
  std::atomic<std::int64_t>& open_connections;
  Counter& refused_connections;
  UnauthenticatedConnections& unauthenticated;
  std::int64_t max_connections;  // resolved: never 0
  // Set when the host starts stopping: no new session, no new request.
  const std::atomic<bool>& stopping;
  // [server.tls]: every connection speaks TLS; nullptr: plain.
  const TlsContext* tls = nullptr;
};

class HttpSession : public std::enable_shared_from_this<HttpSession> {
 public:
  HttpSession(Worker& worker, boost::asio::ip::tcp::socket socket, ServerContext& context,
              UnauthenticatedConnections::Ticket ticket);
  void start();

 private:
  void handshake();
  void refuse_plain_http();
  // Closes the connection after `timeout` unless re-armed or disarmed first.
  void expires_after(std::chrono::steady_clock::duration timeout);
  void expires_never();
  void read();
  void on_header();
  void on_request(Admission admission);
  void refuse(HttpResponseMessage response);
  void upgrade(HttpRequestMessage request);
  void write(HttpResponseMessage response);

  Worker& worker_;
  std::shared_ptr<ConnectionSlot> slot_;
  UnauthenticatedConnections::Ticket ticket_;  // until the first request that authenticates
  Connection connection_;
  ServerContext& context_;
  boost::asio::steady_timer deadline_;
  std::uint64_t deadline_generation_ = 0;  // a deadline that fired after being re-armed does nothing
  boost::beast::flat_buffer buffer_;
  std::optional<boost::beast::http::request_parser<boost::beast::http::string_body>> parser_;
};

}  // namespace switchboard::host
