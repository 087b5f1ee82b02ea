// Claims to be built for the next SDK ABI.
#include "manual_descriptor.hpp"

TEST_EXPORT_DESCRIPTOR(([] {
  auto d = ::switchboard::make_descriptor(::switchboard::PluginKind::bus, "test-wrong-abi", "9.9.9");
  d.sdk_abi = SWITCHBOARD_SDK_ABI_VERSION + 1;
  return d;
}()))
TEST_EXPORT_NULL_FACTORY()
