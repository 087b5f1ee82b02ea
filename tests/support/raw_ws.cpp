#include "support/raw_ws.hpp"

#include <poll.h>

#include <boost/asio/write.hpp>
#include <thread>

namespace switchboard::testing {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

RawSocket connect_from(asio::io_context& io, const std::string& from, std::uint16_t port, int receive_buffer) {
  tcp::socket s(io);
  s.open(tcp::v4());
  if (receive_buffer > 0) s.set_option(asio::socket_base::receive_buffer_size(receive_buffer));
  s.bind(tcp::endpoint(asio::ip::make_address(from), 0));
  s.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
  return s;
}

std::string client_frame(std::uint8_t b0, const std::string& payload) {
  std::string f;
  f.push_back(static_cast<char>(b0));
  std::size_t n = payload.size();
  if (n < 126) {
    f.push_back(static_cast<char>(0x80 | n));
  } else if (n <= 0xFFFF) {
    f.push_back(static_cast<char>(0x80 | 126));
    f.push_back(static_cast<char>(n >> 8));
    f.push_back(static_cast<char>(n & 0xFF));
  } else {
    f.push_back(static_cast<char>(0x80 | 127));
    for (int i = 7; i >= 0; --i) f.push_back(static_cast<char>((static_cast<std::uint64_t>(n) >> (8 * i)) & 0xFF));
  }
  const char mask[4] = {0x11, 0x22, 0x33, 0x44};
  f.append(mask, 4);
  for (std::size_t i = 0; i < n; ++i) f.push_back(static_cast<char>(payload[i] ^ mask[i % 4]));
  return f;
}

namespace {

// Reads exactly `n` bytes by the deadline; false on timeout or end of stream.
bool read_exact(RawSocket& s, char* out, std::size_t n, Clock::time_point until) {
  std::size_t got = 0;
  while (got < n) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - Clock::now()).count();
    if (left <= 0) return false;
    pollfd p{s.native_handle(), POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left)) <= 0) return false;
    boost::system::error_code ec;
    std::size_t k = s.read_some(asio::buffer(out + got, n - got), ec);
    if (ec == asio::error::would_block) continue;
    if (ec || k == 0) return false;
    got += k;
  }
  return true;
}

}  // namespace

RawSocket raw_websocket(asio::io_context& io, std::uint16_t port, const std::string& token, std::string* response,
                        int receive_buffer) {
  auto s = connect_from(io, "127.0.0.1", port, receive_buffer);
  std::string req = "GET /ws?token=" + token +
                    " HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
                    "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n";
  asio::write(s, asio::buffer(req));
  std::string got;
  auto until = Clock::now() + std::chrono::seconds(10);
  char c;
  while (got.find("\r\n\r\n") == std::string::npos && read_exact(s, &c, 1, until)) got += c;
  if (response) *response = got;
  return s;
}

std::uint16_t ServerFrame::close_code() const {
  if (payload.size() < 2) return 1005;
  return static_cast<std::uint16_t>((static_cast<unsigned char>(payload[0]) << 8) | static_cast<unsigned char>(payload[1]));
}

std::optional<ServerFrame> read_frame(RawSocket& s, std::chrono::milliseconds deadline) {
  auto until = Clock::now() + deadline;
  unsigned char h[2];
  if (!read_exact(s, reinterpret_cast<char*>(h), 2, until)) return std::nullopt;
  ServerFrame f;
  f.fin = h[0] & 0x80;
  f.opcode = h[0] & 0x0F;
  std::uint64_t n = h[1] & 0x7F;
  if (n == 126 || n == 127) {
    unsigned char ext[8];
    std::size_t k = n == 126 ? 2 : 8;
    if (!read_exact(s, reinterpret_cast<char*>(ext), k, until)) return std::nullopt;
    n = 0;
    for (std::size_t i = 0; i < k; ++i) n = (n << 8) | ext[i];
  }
  f.payload.resize(static_cast<std::size_t>(n));
  if (n > 0 && !read_exact(s, f.payload.data(), f.payload.size(), until)) return std::nullopt;
  return f;
}

std::optional<std::uint16_t> read_close(RawSocket& s, std::chrono::milliseconds deadline) {
  auto until = Clock::now() + deadline;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - Clock::now());
    if (left.count() <= 0) return std::nullopt;
    auto f = read_frame(s, left);
    if (!f) {
      // Ended without a close frame, or nothing by the deadline.
      return closed_by_peer(s, std::chrono::milliseconds(1)) ? std::optional<std::uint16_t>(1006) : std::nullopt;
    }
    if (f->opcode == 0x8) return f->close_code();
  }
}

bool closed_by_peer(RawSocket& s, std::chrono::milliseconds deadline) {
  auto until = Clock::now() + deadline;
  char buf[4096];
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - Clock::now()).count();
    pollfd p{s.native_handle(), POLLIN, 0};
    int ready = ::poll(&p, 1, static_cast<int>(std::max<long>(left, 0)));
    if (ready <= 0) return false;
    boost::system::error_code ec;
    s.read_some(asio::buffer(buf), ec);
    if (ec == asio::error::would_block) continue;
    if (ec) return true;  // eof or reset
    if (Clock::now() >= until) return false;
  }
}

int read_status(RawSocket& s) {
  std::string got;
  char c;
  auto until = Clock::now() + std::chrono::seconds(10);
  while (got.find("\r\n") == std::string::npos && read_exact(s, &c, 1, until)) got += c;
  if (got.rfind("HTTP/1.1 ", 0) != 0) return 0;
  return std::stoi(got.substr(9, 3));
}

}  // namespace switchboard::testing
