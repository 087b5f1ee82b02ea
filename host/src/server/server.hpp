// `switchboard serve`: the host's parts wired together. Threading: one
// worker (io_context + thread) per core owns its connections; storage and
// the bus run on their plugins' threads and hand results back by posting to
// the owning worker. Nothing on the delivery path takes a global lock.
#pragma once

#include <signal.h>

#include "auth/token_verifier.hpp"
#include "config/host_config.hpp"
#include "log/log_sink.hpp"
#include "metrics/metrics_registry.hpp"
#include "plugins/plugin_set.hpp"

namespace switchboard::host {

// Builds the verifier from [auth], reading key files. Throws ConfigError.
TokenVerifier load_auth(const HostConfig& config);

// Runs until one of `stop_signals` arrives, then stops gracefully: no new
// connections, sessions closed with 1001, bus stopped, storage flushed.
int serve(const HostConfig& config, PluginSet& plugins, HostServices& services, MetricsRegistry& metrics,
          const sigset_t& stop_signals);

}  // namespace switchboard::host
