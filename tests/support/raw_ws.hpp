// Raw sockets for tests that must send what no well-behaved client would:
// hand-built WebSocket frames, partial headers, idle connections, from a
// chosen 127.0.0.x address. Every read has a deadline.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

namespace switchboard::testing {

using RawSocket = boost::asio::ip::tcp::socket;

// A TCP connection to 127.0.0.1:`port` from `from` (any 127.0.0.x).
// `receive_buffer`: SO_RCVBUF set before connecting (0: the system's).
RawSocket connect_from(boost::asio::io_context& io, const std::string& from, std::uint16_t port,
                       int receive_buffer = 0);

// A masked client frame: `b0` is FIN/RSV/opcode, the payload length is encoded as needed.
std::string client_frame(std::uint8_t b0, const std::string& payload);

// A WebSocket connection after the handshake (its `hello` not read yet).
// `response` receives the handshake response headers, if given.
RawSocket raw_websocket(boost::asio::io_context& io, std::uint16_t port, const std::string& token,
                        std::string* response = nullptr, int receive_buffer = 0);

// One frame from the server, or nothing if none arrived by the deadline or
// the connection ended first.
struct ServerFrame {
  std::uint8_t opcode = 0;
  bool fin = true;
  std::string payload;
  std::uint16_t close_code() const;  // for a close frame: its code (1005 if none)
};
std::optional<ServerFrame> read_frame(RawSocket& s, std::chrono::milliseconds deadline);

// Reads frames until a close frame (its code) or the end of the connection
// (1006), by the deadline (nothing); frames before it are skipped.
std::optional<std::uint16_t> read_close(RawSocket& s, std::chrono::milliseconds deadline);

// Whether the peer has closed `s` (EOF or reset) within the deadline.
bool closed_by_peer(RawSocket& s, std::chrono::milliseconds deadline);

// An HTTP response's status code read from `s` (0 if none).
int read_status(RawSocket& s);

}  // namespace switchboard::testing
