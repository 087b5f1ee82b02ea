#include "cli/admin_client.hpp"

#include <chrono>
#include <filesystem>
#include <utility>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <boost/beast/ssl.hpp>
// Asio's SSL layer, compiled here only: the server speaks TLS with its own
// Connection, this client is its one user.
#include <boost/asio/ssl/impl/src.hpp>

namespace switchboard::host {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

namespace {

// The host and port to dial for `listen` (brackets of an IPv6 host removed).
std::pair<std::string, std::string> dial_target(const std::string& listen) {
  auto colon = listen.rfind(':');
  std::string host = colon == std::string::npos ? listen : listen.substr(0, colon);
  std::string port = colon == std::string::npos ? "8080" : listen.substr(colon + 1);
  if (host.size() > 1 && host.front() == '[') host = host.substr(1, host.size() - 2);
  if (host.empty() || host == "0.0.0.0") host = "127.0.0.1";
  if (host == "::") host = "::1";
  return {host, port};
}

}  // namespace

std::string admin_address(const std::string& listen) {
  auto [host, port] = dial_target(listen);
  return (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" + port;
}

namespace {

template <class Stream>
std::optional<AdminAnswer> exchange(Stream& stream, const std::string& target, const std::string& host,
                                    const std::string& body, std::string& error) {
  http::request<http::string_body> req{http::verb::post, target, 11};
  req.set(http::field::host, host);
  req.set(http::field::content_type, "application/json");
  req.set("X-Switchboard-Admin", "reload");
  req.body() = body;
  req.prepare_payload();
  beast::error_code ec;
  http::write(stream, req, ec);
  beast::flat_buffer buffer;
  http::response<http::string_body> res;
  if (!ec) http::read(stream, buffer, res, ec);
  if (ec) {
    error = "no answer from " + host + ": " + ec.message();
    return std::nullopt;
  }
  return AdminAnswer{static_cast<int>(res.result_int()), res.body()};
}

}  // namespace

std::optional<AdminAnswer> ask_reload(const HostConfig& config, bool dry_run, std::string& error) {
  std::string address = admin_address(config.server.listen);
  auto [host, port] = dial_target(config.server.listen);
  if (port == "0") {
    error = "[server] listen of " + config.file.string() + " has port 0 (any free one): the CLI cannot find the host; "
            "send it SIGHUP instead";
    return std::nullopt;
  }
  asio::io_context io;
  beast::error_code ec;
  asio::ip::tcp::resolver resolver(io);
  auto endpoints = resolver.resolve(host, port, ec);
  beast::tcp_stream tcp(io);
  if (!ec) {
    tcp.expires_after(std::chrono::seconds(30));  // a reload waits for new features to start
    tcp.connect(endpoints, ec);
  }
  if (ec) {
    error = "cannot reach a host at " + address + " ([server] listen of " + config.file.string() + "): " + ec.message();
    return std::nullopt;
  }
  std::string target = dry_run ? "/admin/reload?dry_run=1" : "/admin/reload";
  // The file meant: a host running with another one refuses.
  std::error_code canon_error;
  auto file = std::filesystem::weakly_canonical(config.file, canon_error);
  std::string body = boost::json::serialize(boost::json::object{{"config", (canon_error ? config.file : file).string()}});
  if (!config.server.tls.enabled()) return exchange(tcp, target, address, body, error);
  // Our own host on this machine: its certificate is not what is checked here.
  asio::ssl::context tls(asio::ssl::context::tls_client);
  tls.set_verify_mode(asio::ssl::verify_none);
  beast::ssl_stream<beast::tcp_stream> stream(std::move(tcp), tls);
  stream.handshake(asio::ssl::stream_base::client, ec);
  if (ec) {
    error = "TLS handshake with " + address + " failed: " + ec.message();
    return std::nullopt;
  }
  return exchange(stream, target, address, body, error);
}

}  // namespace switchboard::host
