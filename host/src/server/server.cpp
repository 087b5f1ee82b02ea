#include "server/server.hpp"

#include <fstream>
#include <random>
#include <sstream>
#include <thread>

#include "core/chat_service.hpp"
#include "core/fanout.hpp"
#include "core/feature_registry.hpp"
#include "core/cluster_presence.hpp"
#include "http/rest_api.hpp"
#include "net/listener.hpp"
#include "protocol/command_dispatcher.hpp"

namespace switchboard::host {

namespace {

std::string read_key(const std::string& file, const std::string& key, const std::string& where) {
  std::ifstream in(file);
  if (!in) throw ConfigError(where + ": auth." + key + ": cannot read \"" + file + "\"");
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string random_origin() {
  std::random_device rd;
  std::uniform_int_distribution<std::uint64_t> dist;
  std::ostringstream s;
  s << std::hex << dist(rd);
  return s.str();
}

}  // namespace

TokenVerifier load_auth(const HostConfig& config) {
  const AuthSection& a = config.auth;
  if (!a.present) throw ConfigError(config.file.string() + ": auth: missing required table [auth]");
  AuthConfig c;
  c.algorithm = a.algorithm;
  c.secret = a.secret;
  c.leeway_seconds = a.leeway_seconds;
  if (!a.public_key_file.empty()) c.public_key_pem = read_key(a.public_key_file, "public_key_file", a.where);
  if (!a.private_key_file.empty()) c.private_key_pem = read_key(a.private_key_file, "private_key_file", a.where);
  try {
    return TokenVerifier(std::move(c));
  } catch (const ConfigError& e) {
    throw ConfigError(a.where + ": " + e.what());
  }
}

int serve(const HostConfig& config, PluginSet& plugins, HostServices& services, MetricsRegistry& metrics,
          const sigset_t& stop_signals) {
  ComponentLogger log(services.log, "host");
  TokenVerifier verifier = load_auth(config);
  Storage& storage = plugins.storage();
  Bus& bus = plugins.bus();

  std::string origin = random_origin();
  Fanout fanout(bus, storage, log, metrics, origin);
  std::size_t threads = config.server.threads > 0 ? static_cast<std::size_t>(config.server.threads)
                                                  : std::max(1u, std::thread::hardware_concurrency());
  std::vector<std::unique_ptr<Worker>> workers;
  std::vector<Worker*> worker_ptrs;
  for (std::size_t i = 0; i < threads; ++i) {
    workers.push_back(std::make_unique<Worker>(i, fanout));
    worker_ptrs.push_back(workers.back().get());
  }
  fanout.set_workers(worker_ptrs, std::chrono::milliseconds(config.cluster.reorder_wait_ms));

  // Every host announces presence changes it sees to its own sessions.
  ChatService* chat_ptr = nullptr;
  PresenceTiming timing{std::chrono::seconds(config.chat.presence_grace_seconds),
                        std::chrono::milliseconds(config.cluster.presence_heartbeat_ms),
                        std::chrono::milliseconds(config.cluster.presence_lease_ms)};
  ClusterPresence presence(bus, workers.front()->io(), origin, timing,
                           [&chat_ptr](const UserId& user, bool online) {
                             if (chat_ptr) chat_ptr->announce_presence(user, online);
                           },
                           log, metrics);

  if (auto started = bus.start([&fanout, &presence](std::string_view subject, std::string_view payload) {
        if (subject == ClusterPresence::kSubject) {
          presence.on_bus_message(payload);
        } else {
          fanout.on_bus_message(subject, payload);
        }
      });
      !started) {
    log.error("bus failed to start", {{"error", started.error().message}});
    return 1;
  }

  fanout.set_local_user_check([&presence](const UserId& user) { return presence.online_here(user); });
  fanout.start();
  FeatureRegistry features(storage, fanout, workers.front()->io(), log);
  fanout.on_local_event([&features](const Event& e) { features.event_committed(e); });
  ChatService chat(storage, fanout, presence, features, config.chat, metrics);
  chat_ptr = &chat;
  std::vector<std::string> core_types = {"ping", "subscribe"};
  for (const auto& [type, op] : ChatService::operations()) core_types.push_back(type);
  std::vector<std::shared_ptr<Feature>> feature_objects;
  for (const auto& f : plugins.features()) feature_objects.push_back(f.object);
  try {
    features.start(feature_objects, core_types);
  } catch (const std::exception& e) {
    log.error("features cannot start", {{"error", e.what()}});
    bus.stop();
    return 1;
  }

  CommandDispatcher dispatcher(chat, features, storage, presence, config, log);
  RestApi rest(chat, features, verifier, services.clock, metrics, storage, bus);
  SessionSettings settings;
  settings.max_message = static_cast<std::size_t>(config.server.max_frame_bytes);
  settings.ping_interval = std::chrono::seconds(config.server.ping_interval_seconds);
  settings.idle_timeout = std::chrono::seconds(config.server.idle_timeout_seconds);
  settings.queue_bytes = static_cast<std::size_t>(config.server.outbound_queue_bytes);
  settings.commands_per_second = static_cast<double>(config.server.commands_per_second);
  settings.command_burst = static_cast<double>(config.server.command_burst);
  settings.metrics = SessionMetrics{
      &metrics.counter("frames_in_total", "WebSocket text frames received"),
      &metrics.counter("frames_out_total", "WebSocket frames written"),
      &metrics.counter("queue_drops_total", "Ephemeral frames shed for slow readers"),
      &metrics.counter("slow_consumer_closes_total", "Sessions closed with 1008 for a full outbound queue"),
      &metrics.gauge("connections", "Open WebSocket sessions"),
  };
  std::atomic<std::uint64_t> next_session_id{0};
  std::atomic<std::int64_t> open_connections{0};
  ServerContext context{config, settings, dispatcher, rest, verifier, services.clock, log,
                        metrics.counter("unauthorized_total", "Upgrades and requests refused with 401"),
                        next_session_id, open_connections,
                        metrics.counter("refused_connections_total", "Connections refused at [server] max_connections")};

  std::unique_ptr<Listener> listener;
  try {
    listener = std::make_unique<Listener>(worker_ptrs, config.server.listen, context);
  } catch (const std::exception& e) {
    log.error(e.what());
    features.stop();
    bus.stop();
    return 1;
  }
  auto sweep = std::chrono::seconds(std::clamp<std::int64_t>(config.server.ping_interval_seconds / 3, 1, 5));
  for (auto& w : workers) w->start(sweep);
  presence.start();
  listener->start();
  auto endpoint = listener->endpoint();
  log.info("listening", {{"address", endpoint.address().to_string() + ":" + std::to_string(endpoint.port())},
                         {"threads", std::to_string(threads)},
                         {"bus", plugins.bus_plugin().info.name},
                         {"storage", plugins.storage_plugin().info.name},
                         {"features", std::to_string(plugins.features().size())}});

  int signal_number = 0;
  sigwait(&stop_signals, &signal_number);
  log.info("stopping", {{"signal", signal_number == SIGTERM ? "SIGTERM" : "SIGINT"}});

  listener->stop();
  for (auto& w : workers) {
    Worker* worker = w.get();
    worker->post([worker] { worker->close_all(1001, "server shutting down"); });
  }
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(7);
  while (dispatcher.live_sessions() > 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  presence.stop();  // says goodbye: the others show these users offline now
  fanout.stop();
  bus.stop();
  for (auto& w : workers) w->stop();
  listener.reset();
  // Writes acknowledged already are committed; this waits for in-flight ones,
  // whose completions may still reach the features: stop those after.
  auto flushed = storage.flush();
  storage.stop();
  features.stop();
  if (!flushed) {
    log.error("storage flush failed", {{"error", flushed.error().message}});
    return 1;
  }
  log.info("stopped", {{"sessions_left", std::to_string(dispatcher.live_sessions())}});
  return 0;
}

}  // namespace switchboard::host
