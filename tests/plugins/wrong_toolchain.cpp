// Claims to be built by another compiler major version.
#include "manual_descriptor.hpp"

TEST_EXPORT_DESCRIPTOR(([] {
  auto d = ::switchboard::make_descriptor(::switchboard::PluginKind::bus, "test-wrong-toolchain", "1.0.0");
  d.compiler_major = SWITCHBOARD_COMPILER_MAJOR - 1;
  d.compiler_minor = 3;
  return d;
}()))
TEST_EXPORT_NULL_FACTORY()
