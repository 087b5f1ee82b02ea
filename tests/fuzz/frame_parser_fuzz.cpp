// libFuzzer: the WebSocket frame parser on arbitrary client bytes, fed in
// segments whose sizes come from the input itself. Properties: no crash or
// sanitizer report; every text message delivered is valid UTF-8 and within
// the limit; what the parser holds stays bounded by the limit.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "net/ws_frame.hpp"

namespace {

using switchboard::host::FrameParser;

constexpr std::size_t kLimit = 4096;

struct Checker final : FrameParser::Handler {
  void on_text(std::string_view message) override {
    if (message.size() > kLimit || !switchboard::host::valid_utf8(message)) std::abort();
  }
  void on_ping(std::string_view payload) override {
    if (payload.size() > 125) std::abort();
  }
  void on_pong() override {}
  void on_close(std::uint16_t, std::string_view reason) override {
    if (!switchboard::host::valid_utf8(reason)) std::abort();
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  // First byte: the segment size pattern (1..16 bytes, or everything at once).
  std::size_t step = data[0] % 17;
  std::string input(reinterpret_cast<const char*>(data + 1), size - 1);
  FrameParser parser(kLimit);
  Checker checker;
  std::string why;
  std::size_t at = 0;
  while (at < input.size()) {
    std::size_t n = step == 0 ? input.size() - at : std::min(step, input.size() - at);
    std::uint16_t code = parser.feed(input.data() + at, n, checker, why);
    if (code != 0) {
      if (why.empty()) std::abort();  // every close says why
      break;
    }
    at += n;
    if (parser.buffered() > 2 * (kLimit + 14) + 64) std::abort();
  }
  return 0;
}
