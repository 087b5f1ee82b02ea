// `switchboard serve`: the one owner of the host's lifetime. Every part is a
// member, declared in dependency order and built in the constructor — no
// pointer is handed out before its object exists, nothing is wired later —
// so destruction runs in the reverse order by construction.
//
// Threading: one worker (io_context + thread) per core owns its connections;
// storage and the bus run on their plugins' threads and hand results back by
// posting to the owning worker; feature hooks and timers and bus
// (un)subscriptions run on the control executor. No global lock on the
// delivery path.
//
// Phases: built → start() → stop(): stop accepting; close every session with
// 1001; say goodbye to the cluster; stop the features' timers and hooks; stop
// the storage (refuse new calls, finish and answer every accepted one); stop
// the bus; stop the workers; close the lifeline (any callback a plugin still
// holds becomes a no-op); then the destructor frees, in reverse order.
#pragma once

#include <signal.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <thread>
#include <memory>
#include <string>

#include "auth/token_verifier.hpp"
#include "config/host_config.hpp"
#include "core/chat_service.hpp"
#include "core/cluster_presence.hpp"
#include "core/control_executor.hpp"
#include "core/fanout.hpp"
#include "core/feature_registry.hpp"
#include "core/guarded_bus.hpp"
#include "core/guarded_storage.hpp"
#include "core/lifeline.hpp"
#include "http/rest_api.hpp"
#include "log/log_sink.hpp"
#include "metrics/metrics_registry.hpp"
#include "net/http_session.hpp"
#include "net/listener.hpp"
#include "plugins/plugin_set.hpp"
#include "protocol/command_dispatcher.hpp"

namespace switchboard::host {

// Builds the verifier from [auth], reading key files. Throws ConfigError.
TokenVerifier load_auth(const HostConfig& config);
// Reads [server.tls]'s files and static_dir as serve would. Throws
// std::runtime_error naming the problem.
void check_server_files(const HostConfig& config);

class Server {
 public:
  // Builds every part and binds the listener. Throws std::runtime_error (or
  // ConfigError) naming what cannot be built; nothing is left running then.
  Server(const HostConfig& config, PluginSet& plugins, HostServices& services, MetricsRegistry& metrics);
  ~Server();  // stop(), if start() ran
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Starts the bus, features, workers, presence and the listener. Throws
  // std::runtime_error if the bus or a feature cannot start (then stops what
  // did start).
  void start();
  // Graceful stop, in the phases above. Idempotent. Returns false if the
  // storage reported a failure while finishing its writes.
  bool stop();
  // SIGHUP: reads the config file again and applies it live, or refuses it
  // whole (logged, counted; the running host is unchanged):
  // - [[features]] added, removed or with another `config` take effect (a
  //   reconfigured feature is a new instance of its plugin); none of the
  //   connections is dropped (FeatureRegistry::replace);
  // - [server.tls]'s files are read again (new connections get the new
  //   certificate);
  // - any other change (bus, storage, [server], [auth], ...) or an invalid
  //   file is refused with the reason: restart the host to apply it.
  // Returns what was done, or why not. Call it on a control-plane thread;
  // one reload runs at a time (SIGHUP and POST /admin/reload). A dry run
  // checks the file against the running host and says what a reload would
  // change, changing nothing (a new feature is found and its file read, not
  // loaded: starting it may still fail).
  using ReloadOutcome = ReloadAnswer;
  ReloadOutcome reload(bool dry_run = false);

  boost::asio::ip::tcp::endpoint endpoint() const { return listener_.endpoint(); }

 private:
  void on_bus_message(std::string_view subject, std::string_view payload);

  // The features running now, with the declarations they were made from.
  struct RunningFeature {
    PluginDeclaration declaration;
    PluginInfo info;
    std::shared_ptr<Feature> object;
  };
  ReloadOutcome apply(const HostConfig& next, bool dry_run);
  void show_plugins();
  // POST /admin/reload: queued for the reload thread (a bounded queue).
  void request_reload(bool dry_run, std::string file, std::function<void(ReloadAnswer)> done);
  void run_reloads();

  const HostConfig& config_;
  PluginSet& plugins_;
  HostServices& services_;
  MetricsRegistry& metrics_;
  ComponentLogger log_;
  TokenVerifier verifier_;
  std::string origin_;
  FirewallMetrics firewall_;
  Lifeline lifeline_;
  GuardedStorage storage_;
  GuardedBus bus_;
  std::atomic<std::uint64_t> next_session_id_{0};
  std::atomic<std::int64_t> open_connections_{0};
  UnauthenticatedConnections unauthenticated_;
  std::atomic<bool> stopping_{false};
  SessionSettings settings_;
  ControlExecutor control_;
  Fanout fanout_;
  ClusterPresence presence_;
  FeatureRegistry features_;
  ChatService chat_;
  CommandDispatcher dispatcher_;
  std::unique_ptr<TlsContext> tls_;  // [server.tls], or none
  Gauge& tls_not_after_;
  Counter& reloads_;
  Counter& reload_failures_;
  StaticFiles static_files_;
  RestApi rest_;
  ServerContext context_;
  Listener listener_;

  std::mutex reload_mutex_;                       // one reload at a time
  std::vector<RunningFeature> running_features_;  // reload() only
  // The reload thread and its queue (POST /admin/reload).
  struct ReloadJob {
    bool dry_run;
    std::function<void(ReloadAnswer)> done;
  };
  std::mutex reload_queue_mutex_;
  std::condition_variable reload_wake_;
  std::deque<ReloadJob> reload_queue_;
  bool reloads_stopping_ = false;
  std::thread reload_thread_;
  std::map<std::string, std::string> running_sections_;  // the config's other sections at start, as TOML text

  enum class Phase { built, started, stopped };
  Phase phase_ = Phase::built;
  bool bus_started_ = false;
};

// Runs a Server until one of `stop_signals` arrives (SIGHUP among them: reload). Exit code: 0 after a
// clean stop, 1 if it could not start or storage failed to finish.
int serve(const HostConfig& config, PluginSet& plugins, HostServices& services, MetricsRegistry& metrics,
          const sigset_t& stop_signals);

}  // namespace switchboard::host
