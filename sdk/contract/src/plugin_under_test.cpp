#include "switchboard/contract/plugin_under_test.hpp"

#include <stdexcept>

namespace switchboard::contract {

namespace {
PluginUnderTest* current = nullptr;
}

void set_plugin_under_test(PluginUnderTest* plugin) { current = plugin; }

PluginUnderTest& plugin_under_test() {
  if (!current) throw std::logic_error("no plugin under test: call set_plugin_under_test first");
  return *current;
}

}  // namespace switchboard::contract
