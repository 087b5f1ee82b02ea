#include "server/server.hpp"

#include <sys/resource.h>

#include <fstream>
#include <map>
#include <random>
#include <sstream>
#include <thread>

#include "core/presence_announcement.hpp"
#include "plugins/plugin_catalog.hpp"

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

void check_server_files(const HostConfig& config) {
  if (config.server.tls.enabled()) TlsContext check(config.server.tls);
  if (!config.server.static_dir.empty()) StaticFiles check(StaticFiles::resolve(config.server.static_dir));
}

namespace {

SessionSettings session_settings(const HostConfig& config, MetricsRegistry& metrics, const FirewallMetrics& firewall) {
  SessionSettings settings;
  settings.max_message = static_cast<std::size_t>(config.server.max_frame_bytes);
  settings.ping_interval = std::chrono::seconds(config.server.ping_interval_seconds);
  settings.idle_timeout = std::chrono::seconds(config.server.idle_timeout_seconds);
  settings.queue_bytes = static_cast<std::size_t>(config.server.outbound_queue_bytes);
  settings.commands_per_second = static_cast<double>(config.server.commands_per_second);
  settings.command_burst = static_cast<double>(config.server.command_burst);
  settings.command_timeout = std::chrono::seconds(config.server.command_timeout_seconds);
  settings.metrics = SessionMetrics{
      &metrics.counter("frames_in_total", "WebSocket text frames received"),
      &metrics.counter("frames_out_total", "WebSocket frames written"),
      &metrics.counter("queue_drops_total", "Ephemeral frames shed for slow readers"),
      &metrics.counter("slow_consumer_closes_total", "Sessions closed with 1008 for a full outbound queue"),
      &metrics.gauge("connections", "Open WebSocket sessions"),
      &firewall.missing_answers,
  };
  return settings;
}

// [server] max_connections, or (0) what the file descriptor limit allows,
// keeping some for storage, the bus and logs.
std::int64_t connection_limit(const HostConfig& config) {
  if (config.server.max_connections > 0) return config.server.max_connections;
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur == RLIM_INFINITY) return 1000000;
  return std::max<std::int64_t>(16, static_cast<std::int64_t>(limit.rlim_cur) - 256);
}

std::size_t worker_threads(const HostConfig& config) {
  return config.server.threads > 0 ? static_cast<std::size_t>(config.server.threads)
                                   : std::max(1u, std::thread::hardware_concurrency());
}

}  // namespace

namespace {

// Every top-level section of a config file but [[features]], as TOML text
// by name: what must not change on a running host.
std::map<std::string, std::string> fixed_sections(const std::filesystem::path& file) {
  auto table = toml::parse_file(file.string());
  std::map<std::string, std::string> out;
  for (const auto& [key, node] : table) {
    if (key.str() == "features") continue;
    std::ostringstream text;
    node.visit([&](const auto& n) { text << n; });
    out[std::string(key.str())] = text.str();
  }
  return out;
}

// The first section that differs, "[server]", or "" if none does.
std::string changed_section(const std::map<std::string, std::string>& a, const std::map<std::string, std::string>& b) {
  for (const auto& [k, v] : a) {
    auto it = b.find(k);
    if (it == b.end() || it->second != v) return "[" + k + "]";
  }
  for (const auto& [k, v] : b) {
    if (!a.count(k)) return "[" + k + "]";
  }
  return {};
}

bool same_table(const std::shared_ptr<const toml::table>& a, const std::shared_ptr<const toml::table>& b) {
  if (!a || !b) return !a && !b;
  return *a == *b;
}

}  // namespace

Server::Server(const HostConfig& config, PluginSet& plugins, HostServices& services, MetricsRegistry& metrics)
    : config_(config),
      plugins_(plugins),
      services_(services),
      metrics_(metrics),
      log_(services.log, "host"),
      verifier_(load_auth(config)),
      origin_(random_origin()),
      firewall_(FirewallMetrics::make(metrics)),
      storage_(plugins.storage(), plugins.storage_plugin().info.sdk_minor, lifeline_, firewall_, log_),
      bus_(plugins.bus(), lifeline_, firewall_, log_),
      unauthenticated_(config.server.max_unauthenticated_per_ip),
      settings_(session_settings(config, metrics, firewall_)),
      control_([this](const char* what) {
        firewall_.plugin_exceptions.add();
        log_.error("an exception escaped a handler on the control thread", {{"error", what}});
      }),
      fanout_(bus_, storage_, control_.io(), log_, metrics,
              FanoutOptions{origin_, worker_threads(config), std::chrono::milliseconds(config.cluster.reorder_wait_ms),
                           std::chrono::milliseconds(config.chat.presence_batch_ms)}),
      presence_(bus_, fanout_.worker(0).io(), origin_,
                PresenceTiming{std::chrono::seconds(config.chat.presence_grace_seconds),
                               std::chrono::milliseconds(config.cluster.presence_heartbeat_ms),
                               std::chrono::milliseconds(config.cluster.presence_lease_ms)},
                // Every host announces presence changes it sees to its own sessions.
                [this](const UserId& user, bool online, const std::vector<ConversationId>* conversations) {
                  Lifeline::Entry alive(lifeline_);
                  if (alive) announce_presence(storage_, fanout_, user, online, conversations);
                },
                log_, metrics),
      features_(storage_, fanout_, control_.io(), log_, lifeline_, firewall_),
      chat_(storage_, fanout_, presence_, features_, config.chat, metrics, log_),
      dispatcher_(chat_, features_, storage_, presence_, config, log_, firewall_),
      tls_(config.server.tls.enabled() ? std::make_unique<TlsContext>(config.server.tls) : nullptr),
      tls_not_after_(metrics.gauge("tls_certificate_expiry_timestamp_seconds",
                                   "notAfter of the certificate served ([server.tls]); 0 without TLS")),
      reloads_(metrics.counter("reloads_total", "SIGHUP reloads applied")),
      reload_failures_(metrics.counter("reload_failures_total", "SIGHUP reloads refused (the running host is unchanged)")),
      static_files_(config.server.static_dir.empty() ? StaticFiles()
                                                   : StaticFiles(StaticFiles::resolve(config.server.static_dir))),
      rest_(chat_, features_, verifier_, services.clock, metrics, storage_, bus_,
            static_cast<double>(config.server.rest_requests_per_second), static_cast<double>(config.server.rest_burst),
            RestExtras{&static_files_, config.auth.dev_tokens,
                       config.server.admin_api
                           ? ReloadRequest([this](bool dry_run, std::string file, std::function<void(ReloadAnswer)> done) {
                               request_reload(dry_run, std::move(file), std::move(done));
                             })
                           : ReloadRequest()}),
      context_{config,
               settings_,
               dispatcher_,
               rest_,
               verifier_,
               services.clock,
               log_,
               metrics.counter("unauthorized_total", "Upgrades and requests refused with 401"),
               next_session_id_,
               open_connections_,
               metrics.counter("refused_connections_total",
                               "Connections refused at [server] max_connections or max_unauthenticated_per_ip"),
               unauthenticated_,
               connection_limit(config),
               stopping_,
               tls_.get()},
      listener_(fanout_.workers(), config.server.listen, context_) {
  if (tls_) tls_not_after_.set(tls_->not_after());
  // Only with features to tell: otherwise every publish would copy its event
  // to the control thread for nothing.
  fanout_.on_local_event([this](const Event& e) { features_.event_committed(e); },
                         [this] { return features_.any(); });
  fanout_.set_presence(presence_);  // before any thread runs
}

Server::~Server() {
  if (phase_ == Phase::started) stop();
  // Whatever a plugin still holds (a completion, a timer) does nothing now.
  lifeline_.close();
  control_.stop();
  fanout_.stop_workers();
}

void Server::on_bus_message(std::string_view subject, std::string_view payload) {
  if (subject == ClusterPresence::kSubject) {
    presence_.on_bus_message(payload);
  } else {
    fanout_.on_bus_message(subject, payload);
  }
}

void Server::start() {
  auto started = bus_.start(
      [this](std::string_view subject, std::string_view payload) { on_bus_message(subject, payload); });
  if (!started) throw std::runtime_error("bus failed to start: " + started.error().message);
  bus_started_ = true;
  control_.start();
  std::vector<std::string> core_types = {"ping", "subscribe"};
  for (const auto& [type, op] : ChatService::operations()) core_types.push_back(type);
  std::vector<NamedFeature> feature_objects;
  for (std::size_t i = 0; i < plugins_.features().size(); ++i) {
    const auto& f = plugins_.features()[i];
    feature_objects.push_back({f.info.name, f.object});
    running_features_.push_back(RunningFeature{config_.features.at(i), f.info, f.object});
  }
  try {
    running_sections_ = fixed_sections(config_.file);
  } catch (const std::exception&) {
    // Built from text, not a file (tests): a reload has nothing to read.
  }
  show_plugins();
  try {
    features_.start(std::move(feature_objects), std::move(core_types));
  } catch (const std::exception& e) {
    features_.stop();
    control_.stop();
    bus_.stop();
    bus_started_ = false;
    throw std::runtime_error(std::string("features cannot start: ") + e.what());
  }
  auto sweep = std::chrono::seconds(std::clamp<std::int64_t>(config_.server.ping_interval_seconds / 3, 1, 5));
  fanout_.start(sweep);
  presence_.start();
  listener_.start();
  phase_ = Phase::started;
  auto endpoint = listener_.endpoint();
  log_.info("listening", {{"address", endpoint.address().to_string() + ":" + std::to_string(endpoint.port())},
                          {"threads", std::to_string(fanout_.size())},
                          {"max_connections", std::to_string(context_.max_connections)},
                          {"bus", plugins_.bus_plugin().info.name},
                          {"storage", plugins_.storage_plugin().info.name},
                          {"features", std::to_string(plugins_.features().size())},
                          {"tls", tls_ ? "on" : "off"}});
  if (!static_files_.empty()) {
    std::string host = endpoint.address().is_v6() ? "[" + endpoint.address().to_string() + "]"
                                                  : endpoint.address().to_string();
    if (endpoint.address().is_unspecified()) host = "127.0.0.1";
    log_.info("open " + std::string(tls_ ? "https" : "http") + "://" + host + ":" + std::to_string(endpoint.port()) +
                  "/ in a browser to chat",
              {{"static_files", std::to_string(static_files_.size())}});
  }
}


void Server::show_plugins() {
  auto series = [](std::string_view kind, const PluginInfo& info) {
    return MetricsRegistry::Labels{{"kind", std::string(kind)}, {"name", info.name}, {"version", info.version}};
  };
  std::vector<MetricsRegistry::Labels> all = {series("bus", plugins_.bus_plugin().info),
                                              series("storage", plugins_.storage_plugin().info)};
  for (const auto& f : running_features_) all.push_back(series("feature", f.info));
  metrics_.set_info("plugins", "the plugins this host runs (one series each, valued 1)", std::move(all));
}

void Server::request_reload(bool dry_run, std::string file, std::function<void(ReloadAnswer)> done) {
  if (!file.empty()) {
    std::error_code a, b;
    if (std::filesystem::weakly_canonical(file, a) != std::filesystem::weakly_canonical(config_.file, b)) {
      return done(ReloadAnswer{false, "this host runs with " + config_.file.string() + ", not " + file});
    }
  }
  std::unique_lock lock(reload_queue_mutex_);
  if (reloads_stopping_) {
    lock.unlock();
    return done(ReloadAnswer{false, "the host is stopping"});
  }
  if (reload_queue_.size() >= 4) {
    lock.unlock();
    return done(ReloadAnswer{false, "4 reloads are waiting already; try again when they are done"});
  }
  reload_queue_.push_back(ReloadJob{dry_run, std::move(done)});
  if (!reload_thread_.joinable()) reload_thread_ = std::thread([this] { run_reloads(); });
  reload_wake_.notify_one();
}

void Server::run_reloads() {
  std::unique_lock lock(reload_queue_mutex_);
  for (;;) {
    reload_wake_.wait(lock, [this] { return reloads_stopping_ || !reload_queue_.empty(); });
    if (reload_queue_.empty()) return;  // stopping, nothing left
    ReloadJob job = std::move(reload_queue_.front());
    reload_queue_.pop_front();
    bool stopping = reloads_stopping_;
    lock.unlock();
    job.done(stopping ? ReloadAnswer{false, "the host is stopping"} : reload(job.dry_run));
    lock.lock();
  }
}

Server::ReloadOutcome Server::reload(bool dry_run) {
  std::lock_guard one_at_a_time(reload_mutex_);
  if (phase_ != Phase::started) return {false, "the host is not running"};
  ReloadOutcome out;
  try {
    HostConfig next = load_config(config_.file);  // every problem, or a whole config
    out = apply(next, dry_run);
  } catch (const std::exception& e) {
    out = ReloadOutcome{false, e.what()};
  }
  if (dry_run) {
    log_.info("reload dry run", {{"file", config_.file.string()}, {out.ok ? "changes" : "error", out.summary}});
    return out;
  }
  if (out.ok) {
    reloads_.add();
    log_.info("reload applied", {{"file", config_.file.string()}, {"changes", out.summary}});
  } else {
    reload_failures_.add();
    log_.error("reload refused, the running host is unchanged", {{"file", config_.file.string()}, {"error", out.summary}});
  }
  return out;
}

Server::ReloadOutcome Server::apply(const HostConfig& next, bool dry_run) {
  if (auto changed = changed_section(running_sections_, fixed_sections(next.file)); !changed.empty()) {
    return {false, changed + " changed: only [[features]] change on a running host; restart it to apply the rest"};
  }
  // The new set: what runs already and is declared alike is kept; the rest
  // is made now, before anything changes (a failure refuses the reload).
  PluginCatalog catalog(next.plugin_directories.empty() ? PluginCatalog::default_directories()
                                                        : next.plugin_directories);
  std::vector<RunningFeature> set;
  std::vector<bool> kept(running_features_.size(), false);
  std::string added, removed;
  for (const auto& decl : next.features) {
    bool found = false;
    for (std::size_t i = 0; i < running_features_.size() && !found; ++i) {
      const auto& r = running_features_[i];
      if (!kept[i] && r.declaration.plugin == decl.plugin && same_table(r.declaration.config, decl.config)) {
        kept[i] = found = true;
        set.push_back(RunningFeature{decl, r.info, r.object});
      }
    }
    if (found) continue;
    if (dry_run) {
      // Found and read, not loaded: a dry run runs no plugin code.
      PluginInfo info = PluginLibrary::inspect(catalog.resolve(decl.plugin));
      if (info.kind != PluginKind::feature) {
        return {false, decl.where + ": " + decl.key_path + ": plugin \"" + info.name + "\" is a " +
                           std::string(to_string(info.kind)) + " plugin, not a feature"};
      }
      added += " +" + info.name;
      continue;
    }
    PluginInfo info;
    auto object = create_plugin(catalog.resolve(decl.plugin), PluginKind::feature, decl, next.file, services_, &info);
    set.push_back(RunningFeature{decl, info, std::static_pointer_cast<Feature>(object)});
    added += " +" + info.name;
  }
  for (std::size_t i = 0; i < running_features_.size(); ++i) {
    if (!kept[i]) removed += " -" + running_features_[i].info.name;
  }
  const std::string summary = added.empty() && removed.empty() ? "features unchanged" : "features:" + removed + added;
  if (dry_run) {
    if (tls_) tls_->prepare();  // throws: a reload would be refused
    return {true, summary + (tls_ ? "; the certificate would be read again" : "")};
  }
  // The certificate is read now and served only once the features took.
  std::optional<TlsContext::Loaded> certificate;
  if (tls_) certificate = tls_->prepare();  // throws: refused, nothing changed
  std::vector<NamedFeature> named;
  for (const auto& f : set) named.push_back({f.info.name, f.object});
  features_.replace(std::move(named));  // throws: refused, the old set runs
  if (certificate) {
    tls_->commit(std::move(*certificate));
    tls_not_after_.set(tls_->not_after());
  }
  running_features_ = std::move(set);
  show_plugins();
  return {true, summary + (tls_ ? "; certificate read again" : "")};
}

bool Server::stop() {
  if (phase_ != Phase::started) return true;
  // 0. No reload runs or starts from here on; waiting ones are told.
  {
    std::lock_guard lock(reload_queue_mutex_);
    reloads_stopping_ = true;
  }
  reload_wake_.notify_all();
  if (reload_thread_.joinable()) reload_thread_.join();
  std::lock_guard no_reload(reload_mutex_);
  phase_ = Phase::stopped;
  // 1. No new connections, sessions or requests; every session closed with
  //    1001 (bounded wait).
  stopping_ = true;
  listener_.stop();
  for (std::size_t i = 0; i < fanout_.size(); ++i) {
    Worker* worker = &fanout_.worker(i);
    worker->post([worker] { worker->close_all(1001, "server shutting down"); });
  }
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(7);
  while (dispatcher_.live_sessions() > 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  // 2. The other hosts show this host's users offline now.
  presence_.stop();
  // 3. Features: no more timers or hooks (queued ones never run).
  control_.stop();
  features_.stop();
  // 4. Storage: everything accepted is finished and answered once; new calls
  //    are refused. Completions still reach live host objects here.
  auto flushed = storage_.flush();
  storage_.stop();
  // 5. The bus: its handler is not running and never runs again.
  fanout_.stop_sequencing();
  if (bus_started_) bus_.stop();
  bus_started_ = false;
  // 6. Workers: joined; handlers still queued are destroyed, never run.
  fanout_.stop_workers();
  // 7. Anything a plugin still holds is a no-op from here on.
  lifeline_.close();
  if (!flushed) {
    log_.error("storage flush failed", {{"error", flushed.error().message}});
    return false;
  }
  log_.info("stopped", {{"sessions_left", std::to_string(dispatcher_.live_sessions())}});
  return true;
}

int serve(const HostConfig& config, PluginSet& plugins, HostServices& services, MetricsRegistry& metrics,
          const sigset_t& stop_signals) {
  ComponentLogger log(services.log, "host");
  std::unique_ptr<Server> server;
  try {
    server = std::make_unique<Server>(config, plugins, services, metrics);
    server->start();
  } catch (const std::exception& e) {
    log.error(e.what());
    return 1;
  }
  int signal_number = 0;
  for (;;) {
    sigwait(&stop_signals, &signal_number);
    if (signal_number != SIGHUP) break;
    server->reload();
  }
  log.info("stopping", {{"signal", signal_number == SIGTERM ? "SIGTERM" : "SIGINT"}});
  bool clean = server->stop();
  server.reset();
  return clean ? 0 : 1;
}

}  // namespace switchboard::host
