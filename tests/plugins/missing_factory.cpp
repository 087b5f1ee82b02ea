// A valid descriptor but no factory.
#include "manual_descriptor.hpp"

TEST_EXPORT_DESCRIPTOR(::switchboard::make_descriptor(::switchboard::PluginKind::bus, "test-missing-factory", "1.0.0"))
