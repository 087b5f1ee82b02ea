// Claims to be built against the next SDK major version.
#include "manual_descriptor.hpp"

TEST_EXPORT_DESCRIPTOR(([] {
  auto d = ::switchboard::make_descriptor(::switchboard::PluginKind::bus, "test-wrong-abi", "9.9.9");
  d.sdk_major = SWITCHBOARD_SDK_VERSION_MAJOR + 1;
  return d;
}()))
TEST_EXPORT_NULL_FACTORY()
