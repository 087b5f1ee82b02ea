// libFuzzer: a text frame decoded into a command (as the dispatcher does),
// and a subscribe's positions. Properties: no crash; a refusal is an error
// frame that is itself valid JSON; a decoded command has a string type and
// a string or number id.
#include <boost/json/parse.hpp>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "protocol/command_frame.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto decoded = switchboard::host::decode_command(text);
  if (auto* refused = std::get_if<std::string>(&decoded)) {
    std::error_code ec;
    auto v = boost::json::parse(*refused, ec);
    if (ec || !v.is_object() || v.as_object()["type"] != "error") std::abort();
    return 0;
  }
  auto& command = std::get<switchboard::host::CommandFrame>(decoded);
  if (!(command.id.is_string() || command.id.is_number())) std::abort();
  auto positions = switchboard::host::decode_positions(command.args(), 64);
  if (positions && positions->size() > 64) std::abort();
  return 0;
}
