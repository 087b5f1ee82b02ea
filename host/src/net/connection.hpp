// One accepted TCP connection, plain or TLS, seen the same way by the HTTP
// session (Beast's async reads and writes) and by the WebSocket session
// (non-blocking reads and gather writes, waiting for readiness only when the
// socket is empty or full). TLS is OpenSSL on the socket itself: a read that
// finds no whole record, or a write the socket cannot take, answers
// would_block like the plain socket does, so one session logic serves both.
// Worker thread only.
#pragma once

#include <boost/asio/bind_allocator.hpp>
#include <boost/asio/compose.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/beast/websocket/teardown.hpp>
#include <memory>
#include <string>

struct ssl_st;
struct ssl_ctx_st;

namespace switchboard::host {

// Asio keeps a finished operation's memory per thread and hands it to the
// next operation that fits, whatever its size: an idle session's read wait
// would sit for hours in the block of the upgrade's write (twice its size).
// The readiness waits an idle session holds ask malloc for exactly their size.
template <class T>
struct ExactAllocator {
  using value_type = T;
  ExactAllocator() noexcept = default;
  template <class U>
  ExactAllocator(const ExactAllocator<U>&) noexcept {}
  T* allocate(std::size_t n) { return std::allocator<T>().allocate(n); }
  void deallocate(T* p, std::size_t n) noexcept { std::allocator<T>().deallocate(p, n); }
  template <class U>
  bool operator==(const ExactAllocator<U>&) const noexcept { return true; }
};

class Connection {
 public:
  using executor_type = boost::asio::ip::tcp::socket::executor_type;

  explicit Connection(boost::asio::ip::tcp::socket socket);
  // TLS: async_handshake() must complete before anything is read or written.
  Connection(boost::asio::ip::tcp::socket socket, std::shared_ptr<ssl_ctx_st> tls);
  Connection(Connection&& other) noexcept;
  Connection& operator=(Connection&&) = delete;
  ~Connection();

  executor_type get_executor() noexcept { return socket_.get_executor(); }
  boost::asio::ip::tcp::socket& socket() noexcept { return socket_; }
  bool tls() const noexcept { return ssl_ != nullptr; }

  // Non-blocking: what is there now, or would_block (wait_readable then).
  std::size_t read_some(boost::asio::mutable_buffer buffer, boost::system::error_code& ec);
  // Non-blocking: what the socket takes now (0 and would_block: wait_writable).
  // TLS: bytes count as taken once OpenSSL holds them — a record the socket
  // could not take yet stays in the connection, a copy, whatever the caller
  // does with its buffers; flush() writes it (before a shutdown, say).
  template <class ConstBuffers>
  std::size_t write_some(const ConstBuffers& buffers, boost::system::error_code& ec) {
    if (!ssl_) return socket_.write_some(buffers, ec);
    ec = {};
    std::size_t taken = 0;
    auto it = boost::asio::buffer_sequence_begin(buffers);
    auto end = boost::asio::buffer_sequence_end(buffers);
    std::size_t skip = 0;  // bytes of *it already taken
    std::string& record = *record_;
    while (flush(ec)) {
      // The next record: up to 16 KiB of what is offered, frames coalesced.
      while (it != end && record.size() < kRecord) {
        boost::asio::const_buffer b(*it);
        std::size_t n = std::min(b.size() - skip, kRecord - record.size());
        record.append(static_cast<const char*>(b.data()) + skip, n);
        skip += n;
        if (skip == b.size()) {
          ++it;
          skip = 0;
        }
      }
      if (record.empty()) break;
      taken += record.size();
    }
    if (ec == boost::asio::error::would_block && taken > 0) ec = {};
    if (record.empty() && record.capacity() > 0) std::string().swap(record);  // an idle connection holds none
    return taken;
  }
  // TLS: writes the record OpenSSL holds, if any; true when none is left
  // (would_block: wait_writable and call again). Plain: always true.
  bool flush(boost::system::error_code& ec);

  // Completes when read_some (write_some) may make progress.
  template <class Handler>
  void wait_readable(Handler&& handler) {
    if (ssl_ && tls_pending()) {
      return boost::asio::post(socket_.get_executor(),
                               [h = std::forward<Handler>(handler)]() mutable { h(boost::system::error_code{}); });
    }
    socket_.async_wait(read_wants_write_ ? socket_.wait_write : socket_.wait_read,
                       boost::asio::bind_allocator(ExactAllocator<void>(), std::forward<Handler>(handler)));
  }
  template <class Handler>
  void wait_writable(Handler&& handler) {
    socket_.async_wait(write_wants_read_ ? socket_.wait_read : socket_.wait_write,
                       boost::asio::bind_allocator(ExactAllocator<void>(), std::forward<Handler>(handler)));
  }

  // Beast's AsyncReadStream and AsyncWriteStream, for HTTP and the upgrade.
  template <class MutableBuffers, class Token>
  auto async_read_some(const MutableBuffers& buffers, Token&& token) {
    if (!ssl_) return socket_.async_read_some(buffers, std::forward<Token>(token));
    return boost::asio::async_compose<Token, void(boost::system::error_code, std::size_t)>(
        Io<MutableBuffers, true>{*this, buffers}, token, socket_);
  }
  template <class ConstBuffers, class Token>
  auto async_write_some(const ConstBuffers& buffers, Token&& token) {
    if (!ssl_) return socket_.async_write_some(buffers, std::forward<Token>(token));
    return boost::asio::async_compose<Token, void(boost::system::error_code, std::size_t)>(
        Io<ConstBuffers, false>{*this, buffers}, token, socket_);
  }

  // TLS: whether the peer opened with a TLS record; false means it spoke
  // something else (plain HTTP, most likely) and should be told so.
  // Completes once the first byte arrived (or the connection ended: `ec`).
  template <class Handler>
  void async_handshake(Handler&& handler) {
    boost::asio::async_compose<Handler, void(boost::system::error_code, bool)>(Handshake{*this}, handler, socket_);
  }

  void shutdown_send();  // TLS: close_notify first
  void close();

 private:
  std::size_t tls_read(boost::asio::mutable_buffer buffer, boost::system::error_code& ec);
  bool tls_pending() const;
  // One step of the TLS handshake: done (true), or would_block / an error.
  bool tls_accept(boost::system::error_code& ec);
  bool peer_speaks_tls(boost::system::error_code& ec);

  template <class Buffers, bool Read>
  struct Io {
    Connection& c;
    Buffers buffers;
    bool waited = false;
    std::size_t taken = 0;  // writes: bytes OpenSSL took, reported once flushed
    template <class Self>
    void operator()(Self& self, boost::system::error_code ec = {}) {
      if (ec) return self.complete(ec, 0);
      std::size_t n = 0;
      if constexpr (Read) {
        // Into the first non-empty buffer: one TLS record at most anyway.
        for (auto it = boost::asio::buffer_sequence_begin(buffers); it != boost::asio::buffer_sequence_end(buffers);
             ++it) {
          boost::asio::mutable_buffer b(*it);
          if (b.size() == 0) continue;
          n = c.tls_read(b, ec);
          break;
        }
      } else {
        // What OpenSSL holds is written before the operation completes.
        if (taken == 0) taken = c.write_some(buffers, ec);
        if (!ec && taken > 0) c.flush(ec);
        n = taken;
      }
      if (ec == boost::asio::error::would_block) {
        waited = true;
        if constexpr (Read) {
          c.wait_readable(std::move(self));
        } else {
          c.wait_writable(std::move(self));
        }
        return;
      }
      if (!waited) {  // completing inline would break Asio's promise
        waited = true;
        return boost::asio::post(c.socket_.get_executor(), [self = std::move(self), ec, n]() mutable {
          self.complete(ec, n);
        });
      }
      self.complete(ec, n);
    }
  };

  struct Handshake {
    Connection& c;
    int stage = 0;  // 0: first byte not seen; 1: handshaking
    template <class Self>
    void operator()(Self& self, boost::system::error_code ec = {}) {
      if (!ec && stage == 0) {
        bool tls = c.peer_speaks_tls(ec);
        if (ec == boost::asio::error::would_block) return c.socket_.async_wait(c.socket_.wait_read, std::move(self));
        if (!ec && !tls) return finish(self, {}, false);
        stage = 1;
      }
      if (!ec && c.tls_accept(ec)) return finish(self, {}, true);
      if (ec == boost::asio::error::would_block) {
        return c.socket_.async_wait(c.read_wants_write_ ? c.socket_.wait_write : c.socket_.wait_read,
                                    std::move(self));
      }
      finish(self, ec, false);
    }
    // Never inline: the first step runs inside async_handshake.
    template <class Self>
    void finish(Self& self, boost::system::error_code ec, bool tls) {
      boost::asio::post(c.socket_.get_executor(),
                        [self = std::move(self), ec, tls]() mutable { self.complete(ec, tls); });
    }
  };

  static constexpr std::size_t kRecord = 16 * 1024;  // a TLS record's most plaintext

  boost::asio::ip::tcp::socket socket_;
  ssl_st* ssl_ = nullptr;
  // TLS: the record being written. Once handed to SSL_write it must be
  // offered again, byte for byte, until OpenSSL takes it (its retry rule).
  // Plain connections have none (most sessions: nothing held for them).
  std::unique_ptr<std::string> record_;
  bool read_wants_write_ = false;   // the last TLS read (or handshake step) waits for writability
  bool write_wants_read_ = false;   // the last TLS write waits for readability
};

// Beast's customization points: how a websocket::stream<Connection> (the
// handshake only) tears down and times out.
void beast_close_socket(Connection& c);
void teardown(boost::beast::role_type, Connection& c, boost::system::error_code& ec);
template <class Handler>
void async_teardown(boost::beast::role_type, Connection& c, Handler&& handler) {
  c.close();
  boost::asio::post(c.get_executor(), [h = std::forward<Handler>(handler)]() mutable { h(boost::system::error_code{}); });
}

}  // namespace switchboard::host
