// Uses a function nobody defines: linked without --no-undefined, it builds,
// and loading it must fail naming the symbol instead of crashing later.
#include "manual_descriptor.hpp"

extern "C" int switchboard_test_symbol_nobody_defines(int);

extern "C" __attribute__((visibility("default"))) int test_uses_missing(int x) {
  return switchboard_test_symbol_nobody_defines(x);
}

TEST_EXPORT_DESCRIPTOR(::switchboard::make_descriptor(::switchboard::PluginKind::bus, "test-missing-symbol", "1.0.0"))
TEST_EXPORT_NULL_FACTORY()
