#include "metrics/metrics_registry.hpp"

#include <array>
#include <cstdio>
#include <stdexcept>

namespace switchboard::host {

namespace {

enum Kind { kCounter, kGauge, kHistogram };
constexpr const char* kKindNames[] = {"counter", "gauge", "histogram"};

// Latency buckets in seconds, from half a millisecond to ten seconds.
constexpr std::array<double, 14> kBuckets = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                            0.1,    0.25,  0.5,    1,     2.5,   5,     10};

class AtomicCounter final : public Counter {
 public:
  void add(std::uint64_t n) noexcept override { value.fetch_add(n, std::memory_order_relaxed); }
  std::atomic<std::uint64_t> value{0};
};

class AtomicGauge final : public Gauge {
 public:
  void set(std::int64_t v) noexcept override { value.store(v, std::memory_order_relaxed); }
  void add(std::int64_t d) noexcept override { value.fetch_add(d, std::memory_order_relaxed); }
  std::atomic<std::int64_t> value{0};
};

class BucketHistogram final : public Histogram {
 public:
  void observe(double v) noexcept override {
    std::size_t i = 0;
    while (i < kBuckets.size() && v > kBuckets[i]) ++i;
    counts[i].fetch_add(1, std::memory_order_relaxed);
    sum_ns.fetch_add(static_cast<std::uint64_t>(v * 1e9), std::memory_order_relaxed);
  }
  std::array<std::atomic<std::uint64_t>, kBuckets.size() + 1> counts{};
  std::atomic<std::uint64_t> sum_ns{0};
};

bool valid_metric_name(std::string_view name) {
  if (name.empty()) return false;
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
    if (!ok) return false;
  }
  return !(name.front() >= '0' && name.front() <= '9');
}

}  // namespace

struct MetricsRegistry::Entry {
  int kind;
  std::string help;
  AtomicCounter counter;
  AtomicGauge gauge;
  BucketHistogram histogram;
};

MetricsRegistry::MetricsRegistry() = default;
MetricsRegistry::~MetricsRegistry() = default;

MetricsRegistry::Entry& MetricsRegistry::find_or_add(std::string_view name, std::string_view help, int kind) {
  if (!valid_metric_name(name)) {
    throw std::invalid_argument("bad metric name \"" + std::string(name) + "\" (use [A-Za-z_][A-Za-z0-9_]*)");
  }
  std::lock_guard lock(mutex_);
  auto it = entries_.find(name);
  if (it == entries_.end()) {
    auto entry = std::make_unique<Entry>();
    entry->kind = kind;
    entry->help = std::string(help);
    it = entries_.emplace(std::string(name), std::move(entry)).first;
  } else if (it->second->kind != kind) {
    throw std::invalid_argument("metric \"" + std::string(name) + "\" is already a " + kKindNames[it->second->kind]);
  }
  return *it->second;
}

Counter& MetricsRegistry::counter(std::string_view name, std::string_view help) {
  return find_or_add(name, help, kCounter).counter;
}

Gauge& MetricsRegistry::gauge(std::string_view name, std::string_view help) {
  return find_or_add(name, help, kGauge).gauge;
}

Histogram& MetricsRegistry::histogram(std::string_view name, std::string_view help) {
  return find_or_add(name, help, kHistogram).histogram;
}

std::string MetricsRegistry::render() const {
  std::lock_guard lock(mutex_);
  std::string out;
  char buf[64];
  for (const auto& [name, e] : entries_) {
    std::string full = "switchboard_" + name;
    out += "# HELP " + full + " " + e->help + "\n";
    out += "# TYPE " + full + " " + kKindNames[e->kind] + "\n";
    switch (e->kind) {
      case kCounter:
        out += full + " " + std::to_string(e->counter.value.load(std::memory_order_relaxed)) + "\n";
        break;
      case kGauge:
        out += full + " " + std::to_string(e->gauge.value.load(std::memory_order_relaxed)) + "\n";
        break;
      case kHistogram: {
        std::uint64_t cumulative = 0;
        for (std::size_t i = 0; i < kBuckets.size(); ++i) {
          cumulative += e->histogram.counts[i].load(std::memory_order_relaxed);
          std::snprintf(buf, sizeof buf, "%g", kBuckets[i]);
          out += full + "_bucket{le=\"" + buf + "\"} " + std::to_string(cumulative) + "\n";
        }
        cumulative += e->histogram.counts[kBuckets.size()].load(std::memory_order_relaxed);
        out += full + "_bucket{le=\"+Inf\"} " + std::to_string(cumulative) + "\n";
        std::snprintf(buf, sizeof buf, "%.9g", e->histogram.sum_ns.load(std::memory_order_relaxed) / 1e9);
        out += full + "_sum " + buf + "\n";
        out += full + "_count " + std::to_string(cumulative) + "\n";
        break;
      }
    }
  }
  return out;
}

}  // namespace switchboard::host
