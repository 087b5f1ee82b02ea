// For deliberately broken test plugins: export a hand-made descriptor (and
// optionally a factory) instead of using SWITCHBOARD_PLUGIN.
#pragma once

#include "switchboard/bus.hpp"
#include "switchboard/plugin.hpp"

#define TEST_EXPORT_DESCRIPTOR(EXPR)                                                            \
  namespace test_plugin {                                                                       \
  namespace {                                                                                   \
  SWITCHBOARD_DESCRIPTOR_ATTRIBUTES constinit const ::switchboard::PluginDescriptor descriptor = \
      EXPR;                                                                                     \
  }                                                                                             \
  }

#define TEST_EXPORT_NULL_FACTORY()                                                             \
  namespace test_plugin {                                                                      \
  namespace {                                                                                  \
  std::unique_ptr<::switchboard::Plugin> create(::switchboard::PluginContext&) { return {}; } \
  }                                                                                            \
  }                                                                                            \
  BOOST_DLL_ALIAS(test_plugin::create, switchboard_plugin_create)
