#include "net/http_session.hpp"

#include <boost/asio/write.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/websocket/rfc6455.hpp>
#include <boost/beast/websocket/stream.hpp>
#include <boost/url/parse.hpp>

#include "protocol/json_codec.hpp"

namespace switchboard::host {

namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;

namespace {
// A request's header must arrive within this (slowloris), then its body;
// a WebSocket handshake must complete within the header deadline too.
constexpr auto kHeaderTimeout = std::chrono::seconds(10);
constexpr auto kBodyTimeout = std::chrono::seconds(30);
constexpr std::size_t kBodyLimit = 1 << 20;

// A JSON error answer that ends the connection (the request is not read further).
HttpResponseMessage closing_error(http::status status, std::string_view code, std::string_view message) {
  HttpResponseMessage res{status, 11};
  res.set(http::field::content_type, "application/json");
  res.body() = error_body(code, message);
  res.keep_alive(false);
  res.prepare_payload();
  return res;
}
}  // namespace

HttpSession::HttpSession(Worker& worker, boost::asio::ip::tcp::socket socket, ServerContext& context,
                         UnauthenticatedConnections::Ticket ticket)
    : worker_(worker),
      slot_(std::make_shared<ConnectionSlot>(context.open_connections)),
      ticket_(std::move(ticket)),
      connection_(context.tls ? Connection(std::move(socket), context.tls->current()) : Connection(std::move(socket))),
      context_(context),
      deadline_(worker.io()) {}

void HttpSession::start() {
  // An answer's header and body may leave in two TLS records: not 40 ms apart.
  boost::system::error_code ignored;
  connection_.socket().set_option(boost::asio::ip::tcp::no_delay(true), ignored);
  if (connection_.tls()) return handshake();
  read();
}

void HttpSession::expires_after(std::chrono::steady_clock::duration timeout) {
  deadline_.expires_after(timeout);
  deadline_.async_wait([weak = weak_from_this(), generation = ++deadline_generation_](beast::error_code ec) {
    auto self = weak.lock();
    if (ec || !self || self->deadline_generation_ != generation) return;
    self->connection_.close();  // the pending read or write ends with an error
  });
}

void HttpSession::expires_never() {
  ++deadline_generation_;
  deadline_.cancel();
}

void HttpSession::handshake() {
  expires_after(kHeaderTimeout);
  connection_.async_handshake([self = shared_from_this()](beast::error_code ec, bool tls) {
    if (ec) return;  // gone, timed out, or not TLS we can speak
    if (!tls) return self->refuse_plain_http();
    self->read();
  });
}

// nginx's answer to the same mistake: the client learns what to change.
void HttpSession::refuse_plain_http() {
  static const std::string answer = [] {
    std::string body = error_body("bad_request", "this port speaks TLS only: use https:// or wss://");
    return "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: " +
           std::to_string(body.size()) + "\r\n\r\n" + body;
  }();
  boost::system::error_code ec;
  boost::asio::write(connection_.socket(), boost::asio::buffer(answer), ec);  // small: the socket takes it whole
  connection_.socket().shutdown(boost::asio::ip::tcp::socket::shutdown_send, ec);
  connection_.close();
}

void HttpSession::read() {
  parser_.emplace();
  parser_->body_limit(kBodyLimit);
  parser_->header_limit(16 * 1024);
  expires_after(kHeaderTimeout);
  // The header first: the token is checked before a byte of body is read.
  http::async_read_header(connection_, buffer_, *parser_, [self = shared_from_this()](beast::error_code ec, std::size_t) {
    if (ec == http::error::body_limit) {
      return self->refuse(closing_error(http::status::payload_too_large, "too_large", "request body over 1 MiB"));
    }
    if (ec == http::error::header_limit) {
      return self->refuse(
          closing_error(http::status::request_header_fields_too_large, "too_large", "request header over 16 KiB"));
    }
    if (ec) return;  // closed, timed out or garbage: nothing to answer
    self->on_header();
  });
}

void HttpSession::refuse(HttpResponseMessage response) {
  response.keep_alive(false);
  write(std::move(response));
}

void HttpSession::on_header() {
  const HttpRequestMessage& header = parser_->get();
  if (context_.stopping.load()) {
    return refuse(closing_error(http::status::service_unavailable, "unavailable", "the server is shutting down"));
  }
  if (websocket::is_upgrade(header)) {
    if (!parser_->is_done()) {
      return refuse(closing_error(http::status::bad_request, "bad_request", "a WebSocket upgrade has no body"));
    }
    return upgrade(parser_->release());
  }
  boost::system::error_code peer_error;
  auto peer = connection_.socket().remote_endpoint(peer_error);
  auto from = peer.address();
  bool loopback = from.is_loopback() ||
                  (from.is_v6() && from.to_v6().is_v4_mapped() &&
                   boost::asio::ip::make_address_v4(boost::asio::ip::v4_mapped, from.to_v6()).is_loopback());
  Admission admission = context_.rest.admit(header, !peer_error && loopback);
  if (admission.refusal) {
    if (admission.refusal->result() == http::status::unauthorized) context_.unauthorized.add();
    return refuse(std::move(*admission.refusal));
  }
  if (!admission.user.empty()) ticket_.release();  // authenticated
  if (parser_->is_done()) return on_request(std::move(admission));
  expires_after(kBodyTimeout);
  http::async_read(connection_, buffer_, *parser_,
                   [self = shared_from_this(), admission = std::move(admission)](beast::error_code ec, std::size_t) mutable {
                     if (ec == http::error::body_limit) {
                       return self->refuse(
                           closing_error(http::status::payload_too_large, "too_large", "request body over 1 MiB"));
                     }
                     if (ec) return;
                     self->on_request(std::move(admission));
                   });
}

void HttpSession::on_request(Admission admission) {
  // The deadlines time the peer, not the handler (command_timeout_seconds
  // bounds that); write() arms the next one.
  expires_never();
  HttpRequestMessage request = parser_->release();
  context_.rest.handle(request, admission, [self = shared_from_this()](HttpResponseMessage response) {
    self->worker_.post([self, response = std::move(response)]() mutable { self->write(std::move(response)); });
  });
}

void HttpSession::write(HttpResponseMessage response) {
  auto shared = std::make_shared<HttpResponseMessage>(std::move(response));
  expires_after(kBodyTimeout);
  http::async_write(connection_, *shared, [self = shared_from_this(), shared](beast::error_code ec, std::size_t) {
    if (ec || !shared->keep_alive()) {
      self->connection_.shutdown_send();
      return;
    }
    self->read();
  });
}

void HttpSession::upgrade(HttpRequestMessage request) {
  auto reject = [&](http::status status, std::string_view code, const std::string& message) {
    HttpResponseMessage res{status, request.version()};
    res.set(http::field::content_type, "application/json");
    if (status == http::status::unauthorized) res.set(http::field::www_authenticate, "Bearer");
    res.body() = error_body(code, message);
    res.keep_alive(false);
    res.prepare_payload();
    write(std::move(res));
  };
  auto url = boost::urls::parse_origin_form(request.target());
  if (!url || url->path() != "/ws") {
    return reject(http::status::not_found, "not_found", "WebSocket endpoint is /ws");
  }
  const auto& origins = context_.config.server.origins;
  if (!origins.empty()) {
    auto origin = request[http::field::origin];
    if (std::find(origins.begin(), origins.end(), origin) == origins.end()) {
      return reject(http::status::forbidden, "forbidden", "origin \"" + std::string(origin) + "\" is not allowed");
    }
  }
  auto user = context_.verifier.verify(request_token(request), context_.clock.now_ms());
  if (!user) {
    context_.unauthorized.add();
    return reject(http::status::unauthorized, "unauthorized", user.error().message);
  }
  // Beast answers the handshake (within the header deadline); the host then
  // frames on the raw socket.
  expires_never();
  ticket_.release();  // authenticated
  auto ws = std::make_shared<websocket::stream<Connection>>(std::move(connection_));
  ws->set_option(websocket::stream_base::timeout{kHeaderTimeout, websocket::stream_base::none(), false});
  ws->set_option(websocket::stream_base::decorator(
      [](websocket::response_type& res) { res.set(http::field::server, "switchboard"); }));
  auto req = std::make_shared<HttpRequestMessage>(std::move(request));
  ws->async_accept(*req, [this, self = shared_from_this(), ws, req, user = user.value()](beast::error_code ec) {
    if (ec) return;
    if (context_.stopping.load()) {
      // Upgraded while the host began to stop: told so, like every session.
      auto frame = encode_close(close_code::going_away, "server shutting down");
      boost::system::error_code ignored;
      boost::asio::write(ws->next_layer(), boost::asio::buffer(frame), ignored);
      return;
    }
    auto session = std::make_shared<WsSession>(worker_, std::move(ws->next_layer()), user,
                                               ++context_.next_session_id, context_.settings, context_.sessions);
    session->hold(std::move(slot_));  // the connection stays counted while the WebSocket lives
    session->start();
  });
}

}  // namespace switchboard::host
