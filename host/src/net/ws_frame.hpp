// WebSocket framing (RFC 6455) after the handshake. Beast performs the
// handshake; the host frames and parses itself so that a broadcast is framed
// once and shared by every recipient, queued frames leave in one gather
// write, and an idle connection holds no buffer.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace switchboard::host {

enum class Opcode : std::uint8_t { continuation = 0x0, text = 0x1, binary = 0x2, close = 0x8, ping = 0x9, pong = 0xA };

namespace close_code {
inline constexpr std::uint16_t normal = 1000;
inline constexpr std::uint16_t going_away = 1001;
inline constexpr std::uint16_t protocol_error = 1002;
inline constexpr std::uint16_t unsupported_data = 1003;  // binary frames
inline constexpr std::uint16_t invalid_payload = 1007;   // invalid UTF-8
inline constexpr std::uint16_t policy_violation = 1008;  // slow consumer
inline constexpr std::uint16_t too_big = 1009;
inline constexpr std::uint16_t internal_error = 1011;
}  // namespace close_code

// A complete unmasked server frame (header and payload).
std::string encode_frame(Opcode op, std::string_view payload);
std::shared_ptr<const std::string> shared_frame(Opcode op, std::string_view payload);
std::string encode_close(std::uint16_t code, std::string_view reason);

bool valid_utf8(std::string_view text) noexcept;

// Parses client frames incrementally. Holds only the bytes of an unfinished
// frame or fragmented message, and releases them once complete.
class FrameParser {
 public:
  explicit FrameParser(std::size_t max_message) : max_message_(max_message) {}

  struct Handler {
    virtual ~Handler() = default;
    virtual void on_text(std::string_view message) = 0;
    virtual void on_ping(std::string_view payload) = 0;
    virtual void on_pong() = 0;
    virtual void on_close(std::uint16_t code, std::string_view reason) = 0;
  };

  // Consumes `size` bytes at `data` (unmasking them in place). Returns 0, or
  // the close code the connection must be closed with (protocol error,
  // binary, too big, bad UTF-8); `why` says why.
  std::uint16_t feed(char* data, std::size_t size, Handler& handler, std::string& why);

  // Heap bytes held for unfinished frames or messages (a short string's
  // inline capacity lives in the parser itself and is not counted).
  std::size_t buffered() const noexcept { return heap(pending_) + heap(message_); }
  // A frame or a fragmented message has begun and is not complete yet.
  bool incomplete() const noexcept { return !pending_.empty() || in_message_; }

 private:
  static std::size_t heap(const std::string& s) noexcept { return s.capacity() > std::string().capacity() ? s.capacity() : 0; }
  // Parses one frame from `data`; returns bytes consumed (0: incomplete).
  std::size_t parse_frame(char* data, std::size_t size, Handler& handler, std::uint16_t& close, std::string& why);

  std::size_t max_message_;
  std::string pending_;  // bytes of an incomplete frame
  std::string message_;  // fragments of an incomplete text message
  bool in_message_ = false;
  bool closed_ = false;
};

}  // namespace switchboard::host
