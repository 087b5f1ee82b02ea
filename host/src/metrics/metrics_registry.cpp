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

// HELP text escaping of the text exposition format: backslash and newline.
std::string escape_help(std::string_view help) {
  std::string out;
  out.reserve(help.size());
  for (char c : help) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string escape_label(std::string_view value) {
  std::string out;
  for (char c : value) {
    if (c == '"') {
      out += "\\\"";
    } else {
      out += escape_help(std::string_view(&c, 1));
    }
  }
  return out;
}

std::string describe_owner(std::string_view owner) {
  return owner.empty() ? std::string("the host") : "plugin \"" + std::string(owner) + "\"";
}

}  // namespace

struct MetricsRegistry::Entry {
  int kind;
  std::string owner;  // empty: the host; else the plugin that registered it
  std::string help;
  AtomicCounter counter;
  AtomicGauge gauge;
  BucketHistogram histogram;
};

class MetricsRegistry::PluginScope final : public Metrics {
 public:
  PluginScope(MetricsRegistry& registry, std::string plugin)
      : registry_(registry), plugin_(std::move(plugin)), namespace_(plugin_namespace(plugin_)) {}
  Counter& counter(std::string_view name, std::string_view help) override {
    return registry_.find_or_add(qualified(name), help, kCounter, plugin_).counter;
  }
  Gauge& gauge(std::string_view name, std::string_view help) override {
    return registry_.find_or_add(qualified(name), help, kGauge, plugin_).gauge;
  }
  Histogram& histogram(std::string_view name, std::string_view help) override {
    return registry_.find_or_add(qualified(name), help, kHistogram, plugin_).histogram;
  }

 private:
  std::string qualified(std::string_view name) const {
    if (name.starts_with(namespace_)) return std::string(name);
    return namespace_ + std::string(name);
  }
  MetricsRegistry& registry_;
  std::string plugin_;
  std::string namespace_;
};

MetricsRegistry::MetricsRegistry() = default;
MetricsRegistry::~MetricsRegistry() = default;

std::string MetricsRegistry::plugin_namespace(std::string_view plugin) {
  std::string out;
  for (char c : plugin) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
    out += ok ? c : '_';
  }
  return out + "_";
}

Metrics& MetricsRegistry::for_plugin(std::string_view plugin) {
  std::lock_guard lock(mutex_);
  auto it = scopes_.find(plugin);
  if (it == scopes_.end()) {
    it = scopes_.emplace(std::string(plugin), std::make_unique<PluginScope>(*this, std::string(plugin))).first;
  }
  return *it->second;
}

MetricsRegistry::Entry& MetricsRegistry::find_or_add(std::string_view name, std::string_view help, int kind,
                                                     std::string_view owner) {
  if (!valid_metric_name(name)) {
    throw std::invalid_argument("bad metric name \"" + std::string(name) + "\" (use [A-Za-z_][A-Za-z0-9_]*)");
  }
  std::lock_guard lock(mutex_);
  auto it = entries_.find(name);
  if (it == entries_.end()) {
    auto entry = std::make_unique<Entry>();
    entry->kind = kind;
    entry->owner = std::string(owner);
    entry->help = std::string(help);
    it = entries_.emplace(std::string(name), std::move(entry)).first;
  } else if (it->second->owner != owner) {
    throw std::invalid_argument("metric \"switchboard_" + std::string(name) + "\" is already registered by " +
                                describe_owner(it->second->owner) + "; " + describe_owner(owner) +
                                " cannot register it too");
  } else if (it->second->kind != kind) {
    throw std::invalid_argument("metric \"switchboard_" + std::string(name) + "\" is already a " +
                                kKindNames[it->second->kind] + ", not a " + kKindNames[kind]);
  }
  return *it->second;
}

Counter& MetricsRegistry::counter(std::string_view name, std::string_view help) {
  return find_or_add(name, help, kCounter, {}).counter;
}

Gauge& MetricsRegistry::gauge(std::string_view name, std::string_view help) {
  return find_or_add(name, help, kGauge, {}).gauge;
}

Histogram& MetricsRegistry::histogram(std::string_view name, std::string_view help) {
  return find_or_add(name, help, kHistogram, {}).histogram;
}

std::string MetricsRegistry::render() const {
  std::lock_guard lock(mutex_);
  std::string out;
  char buf[64];
  for (const auto& [name, e] : entries_) {
    std::string full = "switchboard_" + name;
    out += "# HELP " + full + " " + escape_help(e->help) + "\n";
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
  for (const auto& [name, info] : infos_) {
    std::string full = "switchboard_" + name;
    out += "# HELP " + full + " " + escape_help(info.help) + "\n";
    out += "# TYPE " + full + " gauge\n";
    for (const auto& labels : info.series) {
      out += full + "{";
      for (std::size_t i = 0; i < labels.size(); ++i) {
        out += (i ? "," : "") + labels[i].first + "=\"" + escape_label(labels[i].second) + "\"";
      }
      out += "} 1\n";
    }
  }
  return out;
}

void MetricsRegistry::set_info(std::string_view name, std::string_view help, std::vector<Labels> series) {
  std::lock_guard lock(mutex_);
  if (entries_.count(name)) throw std::invalid_argument("metric \"" + std::string(name) + "\" is registered already");
  infos_[std::string(name)] = Info{std::string(help), std::move(series)};
}

}  // namespace switchboard::host
