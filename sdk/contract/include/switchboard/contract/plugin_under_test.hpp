// The contract suites test whatever plugin is registered here. The runner,
// switchboard-contract, registers the plugin it loads; a plugin author may
// also link the suites into their own test binary and register a factory.
#pragma once

#include <cstdint>
#include <memory>

#include "switchboard/bus.hpp"
#include "switchboard/storage.hpp"

namespace switchboard::contract {

class PluginUnderTest {
 public:
  virtual ~PluginUnderTest() = default;
  // A new instance, as a new host process would create it. Two buses made
  // here are two hosts on the same network; two storages made one after the
  // other (the first destroyed) are a restart.
  virtual std::shared_ptr<Bus> make_bus() = 0;
  virtual std::shared_ptr<Storage> make_storage() = 0;
  // The SDK minor the plugin was built against: cases for what came later
  // skip themselves (the host never calls it on such a plugin either).
  virtual std::uint32_t sdk_minor() const { return SWITCHBOARD_SDK_VERSION_MINOR; }
};

void set_plugin_under_test(PluginUnderTest* plugin);
PluginUnderTest& plugin_under_test();

}  // namespace switchboard::contract
