// The host's WebSocket framing: client frames in every legal shape, split
// anywhere, and each violation answered with its close code.
#include "net/ws_frame.hpp"

#include <gtest/gtest.h>

#include <vector>

namespace switchboard::host {
namespace {

// A masked client frame.
std::string client_frame(std::uint8_t first_byte, std::string_view payload, bool masked = true) {
  std::string f;
  f.push_back(static_cast<char>(first_byte));
  std::size_t n = payload.size();
  std::uint8_t mask_bit = masked ? 0x80 : 0;
  if (n < 126) {
    f.push_back(static_cast<char>(mask_bit | n));
  } else if (n <= 0xFFFF) {
    f.push_back(static_cast<char>(mask_bit | 126));
    f.push_back(static_cast<char>(n >> 8));
    f.push_back(static_cast<char>(n & 0xFF));
  } else {
    f.push_back(static_cast<char>(mask_bit | 127));
    for (int i = 7; i >= 0; --i) f.push_back(static_cast<char>((static_cast<std::uint64_t>(n) >> (8 * i)) & 0xFF));
  }
  const unsigned char key[4] = {0x12, 0x34, 0x56, 0x78};
  if (masked) f.append(reinterpret_cast<const char*>(key), 4);
  for (std::size_t i = 0; i < n; ++i) f.push_back(masked ? static_cast<char>(payload[i] ^ key[i % 4]) : payload[i]);
  return f;
}

struct Recorder : FrameParser::Handler {
  std::vector<std::string> texts, pings;
  int pongs = 0;
  std::optional<std::uint16_t> close;
  void on_text(std::string_view m) override { texts.emplace_back(m); }
  void on_ping(std::string_view p) override { pings.emplace_back(p); }
  void on_pong() override { ++pongs; }
  void on_close(std::uint16_t code, std::string_view) override { close = code; }
};

std::uint16_t feed(FrameParser& p, Recorder& r, std::string bytes, std::string* why = nullptr) {
  std::string reason;
  auto code = p.feed(bytes.data(), bytes.size(), r, reason);
  if (why) *why = reason;
  return code;
}

TEST(WsFrame, EncodesEveryLengthForm) {
  EXPECT_EQ(encode_frame(Opcode::text, "hi"), std::string("\x81\x02hi", 4));
  auto mid = encode_frame(Opcode::text, std::string(300, 'a'));
  EXPECT_EQ(static_cast<unsigned char>(mid[1]), 126);
  EXPECT_EQ(mid.size(), 304u);
  auto big = encode_frame(Opcode::text, std::string(70000, 'a'));
  EXPECT_EQ(static_cast<unsigned char>(big[1]), 127);
  EXPECT_EQ(big.size(), 70010u);
  EXPECT_EQ(encode_close(1008, "slow"), std::string("\x88\x06\x03\xf0slow", 8));
}

TEST(WsFrame, ValidatesUtf8) {
  EXPECT_TRUE(valid_utf8("plain ascii"));
  EXPECT_TRUE(valid_utf8("héllo 👍 中文"));
  EXPECT_FALSE(valid_utf8("\xff"));
  EXPECT_FALSE(valid_utf8("\xc0\xaf"));          // overlong '/'
  EXPECT_FALSE(valid_utf8("\xed\xa0\x80"));      // a surrogate
  EXPECT_FALSE(valid_utf8("\xf4\x90\x80\x80"));  // past U+10FFFF
  EXPECT_FALSE(valid_utf8("abc\xe2\x82"));       // truncated
}

TEST(WsFrame, ParsesFramesSplitAtEveryByte) {
  std::string stream = client_frame(0x81, "first") + client_frame(0x89, "ping!") +
                       client_frame(0x81, std::string(1000, 'z')) + client_frame(0x8A, "");
  for (std::size_t cut = 1; cut < stream.size(); cut += 7) {
    FrameParser p(64 * 1024);
    Recorder r;
    ASSERT_EQ(feed(p, r, stream.substr(0, cut)), 0);
    ASSERT_EQ(feed(p, r, stream.substr(cut)), 0);
    ASSERT_EQ(r.texts.size(), 2u) << "cut at " << cut;
    EXPECT_EQ(r.texts[0], "first");
    EXPECT_EQ(r.texts[1], std::string(1000, 'z'));
    EXPECT_EQ(r.pings, std::vector<std::string>{"ping!"});
    EXPECT_EQ(r.pongs, 1);
    EXPECT_EQ(p.buffered(), 0u) << "nothing kept once every frame is complete";
  }
}

TEST(WsFrame, JoinsFragmentsAroundControlFrames) {
  FrameParser p(64 * 1024);
  Recorder r;
  ASSERT_EQ(feed(p, r, client_frame(0x01, "he") + client_frame(0x89, "x") + client_frame(0x00, "ll") +
                           client_frame(0x80, "o")),
            0);
  EXPECT_EQ(r.texts, std::vector<std::string>{"hello"});
  EXPECT_EQ(r.pings.size(), 1u);
}

TEST(WsFrame, EachViolationHasItsCloseCode) {
  struct Case {
    std::string bytes;
    std::uint16_t code;
  };
  for (const auto& c : std::vector<Case>{
           {client_frame(0x81, "x", false), close_code::protocol_error},           // unmasked
           {client_frame(0xC1, "x"), close_code::protocol_error},                  // RSV1 without extension
           {client_frame(0x82, "\x01\x02"), close_code::unsupported_data},         // binary
           {client_frame(0x81, std::string(2000, 'a')), close_code::too_big},      // over the limit
           {client_frame(0x81, "bad \xff"), close_code::invalid_payload},          // not UTF-8
           {client_frame(0x80, "x"), close_code::protocol_error},                  // continuation, no message
           {client_frame(0x09, "x"), close_code::protocol_error},                  // fragmented ping
           {client_frame(0x83, "x"), close_code::protocol_error},                  // unknown opcode
           {client_frame(0x8B, "x"), close_code::protocol_error},                  // reserved control opcode
           {client_frame(0x01, "a") + client_frame(0x81, "b"), close_code::protocol_error},  // interleaved messages
       }) {
    FrameParser p(1024);
    Recorder r;
    std::string why;
    EXPECT_EQ(feed(p, r, c.bytes, &why), c.code) << "for bytes of size " << c.bytes.size();
    EXPECT_FALSE(why.empty());
  }
}

TEST(WsFrame, RefusesAnOversizedFrameFromItsHeaderAlone) {
  FrameParser p(1024);
  Recorder r;
  std::string header = client_frame(0x81, std::string(70000, 'a')).substr(0, 14);  // no payload sent yet
  EXPECT_EQ(feed(p, r, header), close_code::too_big);
}

TEST(WsFrame, ReportsTheCloseCode) {
  FrameParser p(1024);
  Recorder r;
  ASSERT_EQ(feed(p, r, client_frame(0x88, std::string("\x03\xe9", 2) + "bye")), 0);
  EXPECT_EQ(r.close, 1001);
}

TEST(WsFrame, OneByteSegmentsOfALargeFrameStayLinear) {
  // 4 MiB fed one byte at a time: a parser that re-copied what it holds on
  // every read would move ~8 TB here and never finish.
  std::string payload(4 << 20, 'q');
  std::string frame = client_frame(0x81, payload);
  FrameParser p(8 << 20);
  Recorder r;
  std::string why;
  for (std::size_t i = 0; i < frame.size(); ++i) {
    char byte = frame[i];
    ASSERT_EQ(p.feed(&byte, 1, r, why), 0) << "at byte " << i << ": " << why;
  }
  ASSERT_EQ(r.texts.size(), 1u);
  EXPECT_EQ(r.texts[0].size(), payload.size());
  EXPECT_EQ(p.buffered(), 0u);
}

TEST(WsFrame, RefusesCloseCodesAndReasonsAPeerMayNotSend) {
  for (std::uint16_t code : {0, 999, 1004, 1005, 1006, 1015, 1016, 2000, 2999, 5000, 65535}) {
    FrameParser p(1024);
    Recorder r;
    std::string payload{static_cast<char>(code >> 8), static_cast<char>(code & 0xFF)};
    EXPECT_EQ(feed(p, r, client_frame(0x88, payload)), close_code::protocol_error) << "code " << code;
  }
  for (std::uint16_t code : {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999}) {
    FrameParser p(1024);
    Recorder r;
    std::string payload{static_cast<char>(code >> 8), static_cast<char>(code & 0xFF)};
    EXPECT_EQ(feed(p, r, client_frame(0x88, payload + "ok")), 0) << "code " << code;
    EXPECT_EQ(r.close, code);
  }
  FrameParser p(1024);
  Recorder r;
  EXPECT_EQ(feed(p, r, client_frame(0x88, std::string("\x03\xe8", 2) + "bad \xff")), close_code::protocol_error);
}

}  // namespace
}  // namespace switchboard::host
