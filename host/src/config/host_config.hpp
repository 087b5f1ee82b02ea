// The host's TOML config: what to listen on, how to log, where plugins are,
// and which bus, storage and features to load with their own tables.
#pragma once

#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include <toml++/toml.h>

#include "config/interpolation.hpp"
#include "switchboard/services.hpp"

namespace switchboard::host {

// Every problem found in a config, each one line "file:line:col: key: problem".
class ConfigProblems : public std::runtime_error {
 public:
  explicit ConfigProblems(std::vector<std::string> lines);
  const std::vector<std::string>& lines() const noexcept { return lines_; }

 private:
  std::vector<std::string> lines_;
};

enum class LogFormat { text, json };

struct LogConfig {
  LogLevel level = LogLevel::info;
  LogFormat format = LogFormat::text;
};

// [server.tls]: the listener speaks only TLS (https://, wss://). The files
// are read at start and again on SIGHUP.
struct TlsConfig {
  std::string cert;  // PEM certificate chain, leaf first
  std::string key;   // PEM private key
  std::string where;  // "file:line:col" of [server.tls], for errors found later
  bool enabled() const noexcept { return !cert.empty(); }
};

struct ServerConfig {
  std::string listen = "127.0.0.1:8080";
  std::string static_dir;  // files served at GET /…; empty: none
  bool admin_api = false;  // POST /admin/reload, from this machine only (switchboard reload)
  TlsConfig tls;
  std::int64_t threads = 0;  // 0: one per core
  std::vector<std::string> origins;  // allowed Origin headers; empty: any
  std::int64_t max_frame_bytes = 64 * 1024;
  std::int64_t ping_interval_seconds = 30;
  std::int64_t idle_timeout_seconds = 90;
  std::int64_t outbound_queue_bytes = 1 << 20;
  std::int64_t commands_per_second = 50;
  std::int64_t command_burst = 100;
  std::int64_t max_connections = 0;  // 0: derived from the file descriptor limit
  std::int64_t command_timeout_seconds = 30;  // a command unanswered this long gets `internal`
  std::int64_t max_unauthenticated_per_ip = 256;  // connections not authenticated yet, per address; 0: no limit
  std::int64_t rest_requests_per_second = 200;    // per user (token bucket)
  std::int64_t rest_burst = 400;
};

struct AuthSection {
  std::string algorithm = "HS256";
  std::string secret;
  std::string public_key_file;
  std::string private_key_file;
  std::int64_t leeway_seconds = 5;
  bool dev_tokens = false;  // POST /dev/token mints a token for any user: development only
  std::string where;  // "file:line:col" of [auth], for errors found later
  bool present = false;  // serve, check and token require [auth]
};

struct ChatConfig {
  std::int64_t max_text_bytes = 8000;
  std::int64_t resume_window = 1000;  // most events replayed on resume
  std::int64_t presence_grace_seconds = 10;
  // How long a presence.update may wait to leave in one write with others
  // to the same client: a storm of connects costs a write per client per
  // window, not per connect. 0: written at once.
  std::int64_t presence_batch_ms = 200;
  std::int64_t history_max = 200;  // largest history page
};

// How the hosts of a cluster keep presence and event order in step. Used
// with any bus; on a single host it costs one small bus message per heartbeat.
struct ClusterConfig {
  std::int64_t presence_heartbeat_ms = 3000;  // how often a host announces its online users
  std::int64_t presence_lease_ms = 10000;     // a silent host's users go offline after this
  std::int64_t reorder_wait_ms = 250;         // how long an event waits for an earlier seq before storage fills the gap
};

// One [bus], [storage] or [[features]] entry.
struct PluginDeclaration {
  std::string key_path;  // "bus", "storage", "features[2]"
  std::string plugin;    // a name found in the plugin directories, or a path to a .so
  std::string where;     // "file:line:col" of the entry
  std::shared_ptr<const toml::table> config;  // its `config` table (may be empty)
  std::string config_path;                    // "bus.config", "features[2].config"
};

struct HostConfig {
  std::filesystem::path file;
  ServerConfig server;
  AuthSection auth;
  ChatConfig chat;
  ClusterConfig cluster;
  LogConfig log;
  std::vector<std::filesystem::path> plugin_directories;  // empty: the defaults
  PluginDeclaration bus;
  PluginDeclaration storage;
  std::vector<PluginDeclaration> features;
};

// Parses, interpolates and validates. Throws ConfigProblems listing every
// problem found (a TOML syntax error stops at the first).
HostConfig load_config(const std::filesystem::path& file, const EnvLookup& env = process_environment());
HostConfig parse_config(std::string_view text, const std::filesystem::path& file,
                        const EnvLookup& env = process_environment());

// A standalone TOML file (e.g. a plugin's table for switchboard-contract),
// parsed and interpolated. Throws ConfigProblems.
std::shared_ptr<const toml::table> load_table(const std::filesystem::path& file,
                                              const EnvLookup& env = process_environment());

// "file:line:col" of a node (or of the file alone when the node has no source).
std::string where(const toml::node& node, const std::filesystem::path& file);
std::string where(const toml::key& key, const std::filesystem::path& file);

std::optional<LogLevel> parse_log_level(std::string_view text);

// "127.x.y.z" or "[::1]", with or without ":port" (a listen address, a Host
// header); "0.0.0.0", "localhost" and names are not.
bool loopback_address(std::string_view address);

}  // namespace switchboard::host
