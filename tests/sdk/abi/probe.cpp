// The SDK's public types and interfaces, as libabigail sees an ABI: every
// interface implemented by a class made here (so its vtable and virtual
// functions are emitted and described), every struct passed through an
// exported function. tests/sdk/abi/check.py builds this against the current
// headers and against each frozen minor, and compares them with abidiff.
// Never loaded: only its symbols and debug information are read.
//
// A new pure virtual in an interface does not compile here: that is the
// point (a plugin of an older minor would not implement it).
#include "switchboard/bus.hpp"
#include "switchboard/feature.hpp"
#include "switchboard/plugin.hpp"
#include "switchboard/storage.hpp"

#define SWITCHBOARD_ABI_PROBE extern "C" __attribute__((visibility("default"), noinline))

namespace sb = switchboard;

namespace {

struct ProbeBus final : sb::Bus {
  sb::Status start(sb::BusHandler) override { return {}; }
  void stop() noexcept override {}
  sb::Status publish(std::string_view, std::string_view) override { return {}; }
  sb::Status subscribe(std::string_view) override { return {}; }
  sb::Status unsubscribe(std::string_view) override { return {}; }
  sb::Health health() const noexcept override { return {}; }
};

struct ProbeStorage final : sb::Storage {
  void create_conversation(sb::ConversationDraft, sb::Completion<sb::ConversationCreated>) override {}
  void get_conversation(sb::ConversationId, sb::Completion<sb::Conversation>) override {}
  void list_conversations(sb::UserId, sb::ConversationPage, sb::Completion<std::vector<sb::Conversation>>) override {}
  void reset_stream(sb::ConversationId, sb::Completion<sb::Conversation>) override {}
  void set_member(sb::Member, sb::EventDraft, sb::Completion<sb::MemberChange>) override {}
  void remove_member(sb::ConversationId, sb::UserId, sb::EventDraft, sb::Completion<sb::MemberChange>) override {}
  void get_member(sb::ConversationId, sb::UserId, sb::Completion<sb::Member>) override {}
  void list_members(sb::ConversationId, sb::Completion<std::vector<sb::Member>>) override {}
  void append_message(sb::MessageDraft, sb::EventDraft, sb::Completion<sb::MessageWrite>) override {}
  void edit_message(sb::MessageId, std::string, sb::EventDraft, sb::Completion<sb::MessageWrite>) override {}
  void delete_message(sb::MessageId, sb::EventDraft, sb::Completion<sb::MessageWrite>) override {}
  void get_message(sb::MessageId, sb::Completion<sb::Message>) override {}
  void append_event(sb::ConversationId, sb::EventDraft, sb::Completion<sb::Event>) override {}
  void read_events(sb::EventQuery, sb::Completion<sb::EventPage>) override {}
  void count_events(sb::EventCount, sb::Completion<std::int64_t>) override {}
  void change_record(sb::RecordChange, sb::Completion<sb::RecordOutcome>) override {}
  void list_records(sb::RecordQuery, sb::Completion<std::vector<sb::Record>>) override {}
  sb::Status flush() override { return {}; }
  void stop() noexcept override {}
  sb::Health health() const noexcept override { return {}; }
};

struct ProbeFeature final : sb::Feature {
  std::vector<std::string> command_types() const override { return {}; }
  void start(sb::FeatureHost&) override {}
  void handle_command(const sb::Caller&, const sb::Command&, sb::Reply) override {}
};

struct ProbeFeatureHost final : sb::FeatureHost {
  sb::Storage& storage() override { return *static_cast<sb::Storage*>(nullptr); }
  void publish_event(const sb::Event&) override {}
  void publish_ephemeral(sb::ConversationId, std::string_view, std::string_view, const sb::UserId&) override {}
  void send_to_member(sb::ConversationId, const sb::UserId&, std::string_view, std::string_view) override {}
  void after(std::chrono::milliseconds, std::function<void()>) override {}
};

struct ProbeLogger final : sb::Logger {
  bool enabled(sb::LogLevel) const noexcept override { return false; }
  void write(sb::LogLevel, std::string_view, std::initializer_list<sb::LogField>) noexcept override {}
};

struct ProbeConfig final : sb::PluginConfig {
  std::optional<std::string> string(std::string_view) const override { return {}; }
  std::optional<std::int64_t> integer(std::string_view) const override { return {}; }
  std::optional<double> number(std::string_view) const override { return {}; }
  std::optional<bool> boolean(std::string_view) const override { return {}; }
  std::optional<std::vector<std::string>> strings(std::string_view) const override { return {}; }
  [[noreturn]] void fail(std::string_view, std::string_view) const override { std::abort(); }
};

struct ProbeClock final : sb::Clock {
  sb::TimeMs now_ms() const noexcept override { return 0; }
  std::int64_t monotonic_ns() const noexcept override { return 0; }
};

struct ProbeCounter final : sb::Counter {
  void add(std::uint64_t) noexcept override {}
};
struct ProbeGauge final : sb::Gauge {
  void set(std::int64_t) noexcept override {}
  void add(std::int64_t) noexcept override {}
};
struct ProbeHistogram final : sb::Histogram {
  void observe(double) noexcept override {}
};

struct ProbeMetrics final : sb::Metrics {
  sb::Counter& counter(std::string_view, std::string_view) override { return c; }
  sb::Gauge& gauge(std::string_view, std::string_view) override { return g; }
  sb::Histogram& histogram(std::string_view, std::string_view) override { return h; }
  ProbeCounter c;
  ProbeGauge g;
  ProbeHistogram h;
};

struct ProbeContext final : sb::PluginContext {
  sb::Logger& logger() override { return log; }
  const sb::PluginConfig& config() override { return conf; }
  sb::Clock& clock() override { return time; }
  sb::Metrics& metrics() override { return m; }
  ProbeLogger log;
  ProbeConfig conf;
  ProbeClock time;
  ProbeMetrics m;
};

}  // namespace

// Interfaces: made here, so each base class's vtable is described.
SWITCHBOARD_ABI_PROBE sb::Bus* probe_bus() { return new ProbeBus; }
SWITCHBOARD_ABI_PROBE sb::Storage* probe_storage() { return new ProbeStorage; }
SWITCHBOARD_ABI_PROBE sb::Feature* probe_feature() { return new ProbeFeature; }
SWITCHBOARD_ABI_PROBE sb::FeatureHost* probe_feature_host() { return new ProbeFeatureHost; }
SWITCHBOARD_ABI_PROBE sb::PluginContext* probe_plugin_context() { return new ProbeContext; }
SWITCHBOARD_ABI_PROBE void probe_config_error(sb::ConfigError&) {}

// Structs passed by value, and the descriptor read from plugin files.
SWITCHBOARD_ABI_PROBE void probe_types(sb::Conversation&, sb::Member&, sb::Message&, sb::Event&, sb::EventDraft&,
                                       sb::Record&, sb::Health&, sb::Error&, sb::Status&) {}
SWITCHBOARD_ABI_PROBE void probe_storage_types(sb::ConversationDraft&, sb::ConversationCreated&, sb::ConversationPage&,
                                               sb::MemberChange&, sb::MessageDraft&, sb::MessageWrite&,
                                               sb::EventQuery&, sb::EventPage&, sb::EventCount&, sb::RecordChange&,
                                               sb::RecordOutcome&, sb::RecordQuery&) {}
SWITCHBOARD_ABI_PROBE void probe_feature_types(sb::Caller&, sb::Command&, sb::HttpRoute&, sb::HttpRequest&,
                                               sb::HttpResponse&, sb::MessageDecoration&, sb::Reply&,
                                               sb::HttpReply&) {}
SWITCHBOARD_ABI_PROBE void probe_descriptor(sb::PluginDescriptor&, sb::SharedSizes&, sb::PluginFactory*) {}
