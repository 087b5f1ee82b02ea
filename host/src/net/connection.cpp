#include "net/connection.hpp"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/socket.h>

namespace switchboard::host {

namespace asio = boost::asio;
using boost::system::error_code;

Connection::Connection(asio::ip::tcp::socket socket) : socket_(std::move(socket)) {}

Connection::Connection(asio::ip::tcp::socket socket, std::shared_ptr<SSL_CTX> tls) : socket_(std::move(socket)) {
  error_code ec;
  socket_.non_blocking(true, ec);
  ssl_ = SSL_new(tls.get());  // holds its own reference to the context
  record_ = std::make_unique<std::string>();
  if (ssl_ && SSL_set_fd(ssl_, socket_.native_handle()) != 1) {
    SSL_free(ssl_);
    ssl_ = nullptr;
  }
  if (!ssl_) {
    ERR_clear_error();
    socket_.close(ec);  // every operation now fails: the connection ends
  }
}

Connection::Connection(Connection&& other) noexcept
    : socket_(std::move(other.socket_)),
      ssl_(std::exchange(other.ssl_, nullptr)),
      record_(std::move(other.record_)),
      read_wants_write_(other.read_wants_write_),
      write_wants_read_(other.write_wants_read_) {}

Connection::~Connection() {
  if (ssl_) SSL_free(ssl_);
}

namespace {

enum class Wants { nothing, read, write };

// One OpenSSL call (returning 1 on success) on a clean error queue — another
// library's leftovers would read as this call's failure — with a failure
// put in the plain socket's vocabulary: would_block and the direction to
// wait for, eof, or an error.
template <class Call>
bool tls_step(SSL* ssl, error_code& ec, Wants& wants, Call call) {
  ec = {};
  wants = Wants::nothing;
  if (!ssl) {
    ec = asio::error::bad_descriptor;
    return false;
  }
  ERR_clear_error();
  errno = 0;
  int rc = call();
  if (rc == 1) return true;
  switch (SSL_get_error(ssl, rc)) {
    case SSL_ERROR_WANT_READ:
      wants = Wants::read;
      ec = asio::error::would_block;
      break;
    case SSL_ERROR_WANT_WRITE:
      wants = Wants::write;
      ec = asio::error::would_block;
      break;
    case SSL_ERROR_ZERO_RETURN:
      ec = asio::error::eof;  // close_notify: the peer is done
      break;
    case SSL_ERROR_SYSCALL:
      ec = errno ? error_code(errno, asio::error::get_system_category()) : error_code(asio::error::eof);
      break;
    default:
      ec = asio::error::connection_aborted;  // a TLS protocol error
      break;
  }
  ERR_clear_error();
  return false;
}

}  // namespace

std::size_t Connection::read_some(asio::mutable_buffer buffer, error_code& ec) {
  if (!ssl_) return socket_.read_some(buffer, ec);
  return tls_read(buffer, ec);
}

std::size_t Connection::tls_read(asio::mutable_buffer buffer, error_code& ec) {
  std::size_t n = 0;
  Wants wants;
  bool ok = tls_step(ssl_, ec, wants, [&] { return SSL_read_ex(ssl_, buffer.data(), buffer.size(), &n); });
  read_wants_write_ = wants == Wants::write;
  return ok ? n : 0;
}

bool Connection::flush(error_code& ec) {
  ec = {};
  if (!ssl_ || record_->empty()) return true;
  std::size_t n = 0;
  Wants wants;
  bool ok = tls_step(ssl_, ec, wants, [&] { return SSL_write_ex(ssl_, record_->data(), record_->size(), &n); });
  write_wants_read_ = wants == Wants::read;
  if (ok) record_->clear();
  return ok;
}

bool Connection::tls_pending() const { return ssl_ && SSL_pending(ssl_) > 0; }

bool Connection::peer_speaks_tls(error_code& ec) {
  ec = {};
  unsigned char first = 0;
  ssize_t n = ::recv(socket_.native_handle(), &first, 1, MSG_PEEK);
  if (n == 1) return first == 0x16;  // a TLS handshake record
  if (n == 0) {
    ec = asio::error::eof;
  } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
    ec = asio::error::would_block;
  } else {
    ec = error_code(errno, asio::error::get_system_category());
  }
  return false;
}

bool Connection::tls_accept(error_code& ec) {
  Wants wants;
  bool ok = tls_step(ssl_, ec, wants, [&] { return SSL_accept(ssl_); });
  read_wants_write_ = wants == Wants::write;
  return ok;
}

void Connection::shutdown_send() {
  if (ssl_ && SSL_is_init_finished(ssl_)) {
    ERR_clear_error();
    SSL_shutdown(ssl_);  // close_notify, if the socket takes it now
    ERR_clear_error();
  }
  error_code ignored;
  socket_.shutdown(asio::ip::tcp::socket::shutdown_send, ignored);
}

void Connection::close() {
  // The TLS state goes first: a closed descriptor's number may be reused.
  if (ssl_) SSL_free(std::exchange(ssl_, nullptr));
  error_code ignored;
  socket_.close(ignored);
}

void beast_close_socket(Connection& c) { c.close(); }

void teardown(boost::beast::role_type, Connection& c, error_code& ec) {
  c.close();
  ec = {};
}

}  // namespace switchboard::host
