// libFuzzer: the decoder of what other hosts send over the bus. Properties:
// no crash; whatever decodes re-encodes to exactly the same bytes.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "core/bus_wire.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view payload(reinterpret_cast<const char*>(data), size);
  switchboard::host::wire::EventMessage m;
  if (!switchboard::host::wire::decode_event(payload, m)) return 0;
  std::string again = switchboard::host::wire::encode_event(m);
  // Numbers may have had leading zeros: compare the decoded forms.
  switchboard::host::wire::EventMessage m2;
  if (!switchboard::host::wire::decode_event(again, m2)) std::abort();
  if (m2.origin != m.origin || m2.conversation_id != m.conversation_id || m2.seq != m.seq || m2.except != m.except ||
      m2.only != m.only || m2.join != m.join || m2.leave != m.leave || m2.json != m.json) {
    std::abort();
  }
  return 0;
}
