// The metrics registry's namespacing of plugin metrics and its refusal of a
// name registered by another owner (host/src/metrics/metrics_registry.hpp).
#include <gtest/gtest.h>

#include <stdexcept>
#include <string>

#include "metrics/metrics_registry.hpp"

namespace switchboard::host {
namespace {

std::string message_of(auto&& register_it) {
  try {
    register_it();
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "(nothing thrown)";
}

TEST(MetricsNamespace, PluginNamesGetThePluginsPrefix) {
  MetricsRegistry m;
  EXPECT_EQ(MetricsRegistry::plugin_namespace("storage-postgres"), "storage_postgres_");
  EXPECT_EQ(MetricsRegistry::plugin_namespace("my.bus"), "my_bus_");
  Metrics& sqlite = m.for_plugin("storage-sqlite");
  EXPECT_EQ(&sqlite, &m.for_plugin("storage-sqlite")) << "one scope per plugin";
  sqlite.counter("batches_total", "Batches").add(2);
  // A name already in the plugin's namespace is not prefixed twice.
  sqlite.histogram("storage_sqlite_commit_seconds", "Commits").observe(0.01);
  EXPECT_EQ(&sqlite.counter("storage_sqlite_batches_total", "again"), &sqlite.counter("batches_total", "again"));
  auto text = m.render();
  EXPECT_NE(text.find("\nswitchboard_storage_sqlite_batches_total 2\n"), std::string::npos) << text;
  EXPECT_NE(text.find("switchboard_storage_sqlite_commit_seconds_count 1\n"), std::string::npos) << text;
  EXPECT_EQ(text.find("storage_sqlite_storage_sqlite"), std::string::npos) << text;
}

TEST(MetricsNamespace, ANameOfAnotherOwnerIsRefused) {
  MetricsRegistry m;
  m.histogram("bus_publish_seconds", "Host latency");
  // A plugin named "bus-publish" would land on the host's metric.
  EXPECT_EQ(message_of([&] { m.for_plugin("bus-publish").histogram("seconds", "x"); }),
            "metric \"switchboard_bus_publish_seconds\" is already registered by the host; plugin \"bus-publish\" "
            "cannot register it too");
  m.for_plugin("bus-nats").counter("disconnects_total", "x");
  EXPECT_EQ(message_of([&] { m.counter("bus_nats_disconnects_total", "x"); }),
            "metric \"switchboard_bus_nats_disconnects_total\" is already registered by plugin \"bus-nats\"; the "
            "host cannot register it too");
  EXPECT_EQ(message_of([&] { m.for_plugin("bus-nats").gauge("disconnects_total", "x"); }),
            "metric \"switchboard_bus_nats_disconnects_total\" is already a counter, not a gauge");
  EXPECT_THROW(m.for_plugin("bus-nats").counter("bad name", "x"), std::invalid_argument);
}

TEST(MetricsNamespace, HelpIsEscaped) {
  MetricsRegistry m;
  m.counter("odd_total", "a \\ and a\nnewline");
  EXPECT_NE(m.render().find("# HELP switchboard_odd_total a \\\\ and a\\nnewline\n"), std::string::npos)
      << m.render();
}

TEST(MetricsInfo, OneSeriesPerLabelSetReplacedWhole) {
  MetricsRegistry m;
  m.set_info("plugins", "the plugins", {{{"kind", "bus"}, {"name", "bus-gochannel"}},
                                         {{"kind", "feature"}, {"name", "say \"hi\"\\"}}});
  std::string text = m.render();
  EXPECT_NE(text.find("# TYPE switchboard_plugins gauge\n"), std::string::npos) << text;
  EXPECT_NE(text.find("switchboard_plugins{kind=\"bus\",name=\"bus-gochannel\"} 1\n"), std::string::npos) << text;
  EXPECT_NE(text.find(R"(switchboard_plugins{kind="feature",name="say \"hi\"\\"} 1)"), std::string::npos) << text;
  m.set_info("plugins", "the plugins", {{{"kind", "bus"}, {"name", "bus-nats"}}});
  text = m.render();
  EXPECT_EQ(text.find("bus-gochannel"), std::string::npos) << "replaced whole:\n" << text;
  EXPECT_NE(text.find("name=\"bus-nats\""), std::string::npos);
  m.counter("taken_total", "a counter");
  EXPECT_NE(message_of([&] { m.set_info("taken_total", "x", {}); }), "(nothing thrown)");
}

}  // namespace
}  // namespace switchboard::host
