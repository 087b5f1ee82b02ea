#include "net/ws_frame.hpp"

#include <cstring>

namespace switchboard::host {

std::string encode_frame(Opcode op, std::string_view payload) {
  std::string out;
  std::size_t n = payload.size();
  out.reserve(n + 10);
  out.push_back(static_cast<char>(0x80 | static_cast<std::uint8_t>(op)));
  if (n < 126) {
    out.push_back(static_cast<char>(n));
  } else if (n <= 0xFFFF) {
    out.push_back(static_cast<char>(126));
    out.push_back(static_cast<char>((n >> 8) & 0xFF));
    out.push_back(static_cast<char>(n & 0xFF));
  } else {
    out.push_back(static_cast<char>(127));
    for (int i = 7; i >= 0; --i) out.push_back(static_cast<char>((static_cast<std::uint64_t>(n) >> (8 * i)) & 0xFF));
  }
  out.append(payload);
  return out;
}

std::shared_ptr<const std::string> shared_frame(Opcode op, std::string_view payload) {
  return std::make_shared<const std::string>(encode_frame(op, payload));
}

std::string encode_close(std::uint16_t code, std::string_view reason) {
  std::string payload;
  payload.push_back(static_cast<char>(code >> 8));
  payload.push_back(static_cast<char>(code & 0xFF));
  payload.append(reason.substr(0, 123));
  return encode_frame(Opcode::close, payload);
}

bool valid_utf8(std::string_view text) noexcept {
  const auto* s = reinterpret_cast<const unsigned char*>(text.data());
  std::size_t n = text.size(), i = 0;
  while (i < n) {
    // Fast path over ASCII, eight bytes at a time.
    while (i + 8 <= n) {
      std::uint64_t word;
      std::memcpy(&word, s + i, 8);
      if (word & 0x8080808080808080ull) break;
      i += 8;
    }
    if (i >= n) break;
    unsigned char c = s[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    std::size_t len;
    std::uint32_t cp;
    if ((c & 0xE0) == 0xC0) {
      len = 2;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (i + len > n) return false;
    for (std::size_t k = 1; k < len; ++k) {
      if ((s[i + k] & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (s[i + k] & 0x3F);
    }
    // Overlong forms, surrogates and code points past U+10FFFF are invalid.
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10FFFF ||
        (cp >= 0xD800 && cp <= 0xDFFF)) {
      return false;
    }
    i += len;
  }
  return true;
}

namespace {

void unmask(char* data, std::size_t n, const unsigned char key[4]) {
  std::uint64_t key8;
  unsigned char k8[8] = {key[0], key[1], key[2], key[3], key[0], key[1], key[2], key[3]};
  std::memcpy(&key8, k8, 8);
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    std::uint64_t w;
    std::memcpy(&w, data + i, 8);
    w ^= key8;
    std::memcpy(data + i, &w, 8);
  }
  for (; i < n; ++i) data[i] = static_cast<char>(data[i] ^ key[i % 4]);
}

}  // namespace

std::size_t FrameParser::parse_frame(char* data, std::size_t size, Handler& handler, std::uint16_t& close,
                                     std::string& why) {
  if (size < 2) return 0;
  auto b0 = static_cast<unsigned char>(data[0]);
  auto b1 = static_cast<unsigned char>(data[1]);
  bool fin = b0 & 0x80;
  auto op = static_cast<Opcode>(b0 & 0x0F);
  bool masked = b1 & 0x80;
  std::uint64_t len = b1 & 0x7F;
  std::size_t header = 2;
  if (len == 126) {
    if (size < 4) return 0;
    len = (static_cast<std::uint64_t>(static_cast<unsigned char>(data[2])) << 8) | static_cast<unsigned char>(data[3]);
    header = 4;
  } else if (len == 127) {
    if (size < 10) return 0;
    len = 0;
    for (int i = 0; i < 8; ++i) len = (len << 8) | static_cast<unsigned char>(data[2 + i]);
    header = 10;
  }
  // Checked before the payload arrives: nobody makes us buffer a huge frame.
  if (b0 & 0x70) {
    close = close_code::protocol_error;
    why = "reserved bits set (no extension was negotiated)";
    return 1;
  }
  if (!masked) {
    close = close_code::protocol_error;
    why = "client frames must be masked";
    return 1;
  }
  bool control = static_cast<std::uint8_t>(op) & 0x8;
  if (control && (!fin || len > 125)) {
    close = close_code::protocol_error;
    why = "control frames must be unfragmented and at most 125 bytes";
    return 1;
  }
  if (op == Opcode::binary) {
    close = close_code::unsupported_data;
    why = "binary frames are not accepted; send JSON text frames";
    return 1;
  }
  // Reserved opcodes, data (0x3-0x7) and control (0xB-0xF) alike: RFC 6455 5.2.
  bool known = op == Opcode::text || op == Opcode::continuation || op == Opcode::close || op == Opcode::ping ||
               op == Opcode::pong;
  if (!known) {
    close = close_code::protocol_error;
    why = "unknown opcode";
    return 1;
  }
  if (!control && (len > max_message_ || message_.size() + len > max_message_)) {
    close = close_code::too_big;
    why = "message larger than " + std::to_string(max_message_) + " bytes";
    return 1;
  }
  std::size_t total = header + 4 + static_cast<std::size_t>(len);
  if (size < total) return 0;
  unsigned char key[4];
  std::memcpy(key, data + header, 4);
  char* payload = data + header + 4;
  std::size_t n = static_cast<std::size_t>(len);
  unmask(payload, n, key);

  switch (op) {
    case Opcode::ping: handler.on_ping({payload, n}); break;
    case Opcode::pong: handler.on_pong(); break;
    case Opcode::close: {
      std::uint16_t code = close_code::normal;
      std::string_view reason;
      if (n == 1) {
        close = close_code::protocol_error;
        why = "close frame with a one-byte payload";
        return total;
      }
      if (n >= 2) {
        code = static_cast<std::uint16_t>((static_cast<unsigned char>(payload[0]) << 8) |
                                          static_cast<unsigned char>(payload[1]));
        reason = {payload + 2, n - 2};
        // RFC 6455 7.4: codes a peer may send are 1000-1003, 1007-1014
        // (IANA-registered) and 3000-4999; 1004-1006 and 1015 are never sent.
        bool known = (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) || (code >= 3000 && code <= 4999);
        if (!known) {
          close = close_code::protocol_error;
          why = "close code " + std::to_string(code) + " is not one a peer may send";
          return total;
        }
        if (!valid_utf8(reason)) {
          close = close_code::protocol_error;
          why = "close reason is not valid UTF-8";
          return total;
        }
      }
      closed_ = true;
      handler.on_close(code, reason);
      break;
    }
    case Opcode::text:
    case Opcode::continuation: {
      if (op == Opcode::text && in_message_) {
        close = close_code::protocol_error;
        why = "new message before the previous one was finished";
        return total;
      }
      if (op == Opcode::continuation && !in_message_) {
        close = close_code::protocol_error;
        why = "continuation frame without a message";
        return total;
      }
      if (fin && !in_message_) {
        std::string_view text(payload, n);
        if (!valid_utf8(text)) {
          close = close_code::invalid_payload;
          why = "text frame is not valid UTF-8";
          return total;
        }
        handler.on_text(text);
      } else {
        in_message_ = true;
        message_.append(payload, n);
        if (fin) {
          in_message_ = false;
          std::string message;
          message.swap(message_);
          if (!valid_utf8(message)) {
            close = close_code::invalid_payload;
            why = "text message is not valid UTF-8";
            return total;
          }
          handler.on_text(message);
        }
      }
      break;
    }
    default: break;
  }
  return total;
}

namespace {

// Bytes the frame starting at `data` needs in all: its header if that is
// incomplete, else header, mask and payload. 0: not even two bytes yet.
std::size_t frame_needs(const char* data, std::size_t size) {
  if (size < 2) return 2;
  auto b1 = static_cast<unsigned char>(data[1]);
  std::uint64_t len = b1 & 0x7F;
  std::size_t header = len == 126 ? 4 : len == 127 ? 10 : 2;
  std::size_t mask = (b1 & 0x80) ? 4 : 0;
  if (size < header) return header;
  if (len == 126) {
    len = (static_cast<std::uint64_t>(static_cast<unsigned char>(data[2])) << 8) | static_cast<unsigned char>(data[3]);
  } else if (len == 127) {
    len = 0;
    for (int i = 0; i < 8; ++i) len = (len << 8) | static_cast<unsigned char>(data[2 + i]);
  }
  // parse_frame refuses anything this large before its payload arrives.
  if (len > (std::uint64_t{1} << 40)) return header + mask;
  return header + mask + static_cast<std::size_t>(len);
}

}  // namespace

std::uint16_t FrameParser::feed(char* input, std::size_t input_size, Handler& handler, std::string& why) {
  // After a close frame or a violation the stream means nothing any more:
  // what still arrives is discarded, never parsed as frames.
  if (closed_) return 0;
  std::uint16_t close = 0;
  // An unfinished frame from earlier reads is topped up with only the bytes
  // it still needs, and parsed once it is whole (or its header is refused):
  // every byte is copied at most once, however the input is segmented.
  while (!pending_.empty() && input_size > 0 && !closed_) {
    std::size_t needs = frame_needs(pending_.data(), pending_.size());
    std::size_t take = std::min(input_size, needs > pending_.size() ? needs - pending_.size() : 0);
    pending_.append(input, take);
    input += take;
    input_size -= take;
    std::size_t used = parse_frame(pending_.data(), pending_.size(), handler, close, why);
    if (close) {
      closed_ = true;
      return close;
    }
    if (used == 0) {
      if (take == 0) {  // cannot happen: a frame with all it needs parses
        why = "unparsable frame";
        closed_ = true;
        return close_code::protocol_error;
      }
      continue;  // the header grew, its full size is known now; or wait for more
    }
    std::string().swap(pending_);
  }
  if (!pending_.empty()) return 0;
  // Frames complete within `input` are parsed (and unmasked) in place; only
  // the tail of an unfinished frame is copied into pending_.
  std::size_t offset = 0;
  while (offset < input_size && !closed_) {
    std::size_t used = parse_frame(input + offset, input_size - offset, handler, close, why);
    if (close) {
      closed_ = true;
      return close;
    }
    if (used == 0) break;
    offset += used;
  }
  if (offset < input_size && !closed_) {
    // Grows geometrically as bytes arrive, never to a size the peer announced.
    pending_.assign(input + offset, input_size - offset);
  }
  return 0;
}

}  // namespace switchboard::host
