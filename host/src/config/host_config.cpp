#include "config/host_config.hpp"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>

namespace switchboard::host {

namespace {

std::string join(const std::vector<std::string>& lines) {
  std::string out;
  for (const auto& l : lines) {
    if (!out.empty()) out += '\n';
    out += l;
  }
  return out;
}

std::string_view type_name(toml::node_type t) {
  switch (t) {
    case toml::node_type::table: return "table";
    case toml::node_type::array: return "array";
    case toml::node_type::string: return "string";
    case toml::node_type::integer: return "integer";
    case toml::node_type::floating_point: return "float";
    case toml::node_type::boolean: return "boolean";
    case toml::node_type::date: return "date";
    case toml::node_type::time: return "time";
    case toml::node_type::date_time: return "date-time";
    default: return "nothing";
  }
}

// Walks the parsed tree once: expands ${VAR} in every string and records each
// failure at the string's position.
void interpolate_tree(toml::node& node, const std::string& path, const EnvLookup& env,
                      const std::filesystem::path& file, std::vector<std::string>& problems) {
  if (auto* table = node.as_table()) {
    for (auto&& [key, child] : *table) {
      interpolate_tree(child, path.empty() ? std::string(key.str()) : path + "." + std::string(key.str()), env,
                       file, problems);
    }
  } else if (auto* array = node.as_array()) {
    for (std::size_t i = 0; i < array->size(); ++i) {
      interpolate_tree(*array->get(i), path + "[" + std::to_string(i) + "]", env, file, problems);
    }
  } else if (auto* str = node.as_string()) {
    try {
      str->get() = interpolate(str->get(), env);
    } catch (const std::invalid_argument& e) {
      problems.push_back(where(node, file) + ": " + path + ": " + e.what());
    }
  }
}

class Validator {
 public:
  Validator(const std::filesystem::path& file, std::vector<std::string>& problems)
      : file_(file), problems_(problems) {}

  void problem(const toml::node& at, const std::string& path, const std::string& what) {
    problems_.push_back(where(at, file_) + ": " + path + ": " + what);
  }

  void only_keys(const toml::table& table, const std::string& path, std::set<std::string_view> allowed) {
    for (auto&& [key, value] : table) {
      if (!allowed.contains(key.str())) {
        std::string known;
        for (auto k : allowed) known += (known.empty() ? "" : ", ") + std::string(k);
        problems_.push_back(where(key, file_) + ": " +
                            (path.empty() ? std::string(key.str()) : path + "." + std::string(key.str())) +
                            ": unknown key (known here: " + known + ")");
      }
    }
  }

  const toml::table* table(const toml::table& parent, std::string_view key, const std::string& path) {
    const toml::node* node = parent.get(key);
    if (!node) return nullptr;
    if (!node->is_table()) {
      problem(*node, path, "expected a table, got " + std::string(type_name(node->type())));
      return nullptr;
    }
    return node->as_table();
  }

  // An integer within [min, max], if present.
  void integer(const toml::table& parent, std::string_view key, const std::string& path, std::int64_t min,
               std::int64_t max, std::int64_t& out) {
    const toml::node* node = parent.get(key);
    if (!node) return;
    if (!node->is_integer()) {
      problem(*node, path, "expected an integer, got " + std::string(type_name(node->type())));
      return;
    }
    std::int64_t v = node->as_integer()->get();
    if (v < min || v > max) {
      problem(*node, path, "must be between " + std::to_string(min) + " and " + std::to_string(max));
      return;
    }
    out = v;
  }

  void strings(const toml::table& parent, std::string_view key, const std::string& path,
               std::vector<std::string>& out) {
    const toml::node* node = parent.get(key);
    if (!node) return;
    const toml::array* array = node->as_array();
    if (!array) {
      problem(*node, path, "expected an array of strings, got " + std::string(type_name(node->type())));
      return;
    }
    for (std::size_t i = 0; i < array->size(); ++i) {
      const toml::node& item = *array->get(i);
      if (auto s = item.value<std::string>()) {
        out.push_back(*s);
      } else {
        problem(item, path + "[" + std::to_string(i) + "]", "expected a string, got " + std::string(type_name(item.type())));
      }
    }
  }

  void boolean(const toml::table& parent, std::string_view key, const std::string& path, bool& out) {
    const toml::node* node = parent.get(key);
    if (!node) return;
    if (!node->is_boolean()) {
      problem(*node, path, "expected a boolean, got " + std::string(type_name(node->type())));
      return;
    }
    out = node->as_boolean()->get();
  }

  std::optional<std::string> string(const toml::table& parent, std::string_view key, const std::string& path) {
    const toml::node* node = parent.get(key);
    if (!node) return std::nullopt;
    if (!node->is_string()) {
      problem(*node, path, "expected a string, got " + std::string(type_name(node->type())));
      return std::nullopt;
    }
    return node->as_string()->get();
  }

 private:
  const std::filesystem::path& file_;
  std::vector<std::string>& problems_;
};

// `root` owns `table`; the declaration shares it so that source positions
// (which copies of toml++ nodes lose) stay available to the plugin's config.
PluginDeclaration plugin_entry(Validator& v, const std::shared_ptr<toml::table>& root, const toml::table& table,
                               const std::string& path, const std::filesystem::path& file) {
  PluginDeclaration decl;
  decl.key_path = path;
  decl.where = where(table, file);
  decl.config_path = path + ".config";
  v.only_keys(table, path, {"plugin", "config"});
  if (auto name = v.string(table, "plugin", path + ".plugin")) {
    if (name->empty()) {
      v.problem(*table.get("plugin"), path + ".plugin", "must not be empty");
    }
    decl.plugin = *name;
  } else if (!table.contains("plugin")) {
    v.problem(table, path, "missing required key \"plugin\" (a plugin name or a path to a .so)");
  }
  if (const toml::table* config = v.table(table, "config", decl.config_path)) {
    decl.config = std::shared_ptr<const toml::table>(root, config);
  } else {
    decl.config = std::make_shared<const toml::table>();
  }
  return decl;
}

}  // namespace

ConfigProblems::ConfigProblems(std::vector<std::string> lines) : std::runtime_error(join(lines)), lines_(std::move(lines)) {}

namespace {

std::string where(const toml::source_region& src, const std::filesystem::path& file) {
  std::string out = file.string();
  if (src.begin.line > 0) out += ":" + std::to_string(src.begin.line) + ":" + std::to_string(src.begin.column);
  return out;
}

}  // namespace

std::string where(const toml::node& node, const std::filesystem::path& file) { return where(node.source(), file); }

std::string where(const toml::key& key, const std::filesystem::path& file) { return where(key.source(), file); }

bool loopback_address(std::string_view address) {
  std::string_view host = address.substr(0, address.starts_with("[") ? address.find(']') + 1 : address.rfind(':'));
  return host == "[::1]" || (host.size() > 4 && host.starts_with("127.") &&
                             host.find_first_not_of("0123456789.") == std::string_view::npos);
}

std::optional<LogLevel> parse_log_level(std::string_view text) {
  if (text == "trace") return LogLevel::trace;
  if (text == "debug") return LogLevel::debug;
  if (text == "info") return LogLevel::info;
  if (text == "warn" || text == "warning") return LogLevel::warn;
  if (text == "error") return LogLevel::error;
  return std::nullopt;
}

namespace {

std::string read_file(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    throw ConfigProblems({file.string() + ": cannot read config file (" + std::strerror(errno) + ")"});
  }
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

toml::table parse_toml(std::string_view text, const std::filesystem::path& file) {
  try {
    return toml::parse(text, file.string());
  } catch (const toml::parse_error& e) {
    const auto& src = e.source();
    throw ConfigProblems({file.string() + ":" + std::to_string(src.begin.line) + ":" +
                          std::to_string(src.begin.column) + ": TOML syntax error: " + std::string(e.description())});
  }
}

}  // namespace

HostConfig load_config(const std::filesystem::path& file, const EnvLookup& env) {
  return parse_config(read_file(file), file, env);
}

std::shared_ptr<const toml::table> load_table(const std::filesystem::path& file, const EnvLookup& env) {
  auto root = std::make_shared<toml::table>(parse_toml(read_file(file), file));
  std::vector<std::string> problems;
  interpolate_tree(*root, "", env, file, problems);
  if (!problems.empty()) throw ConfigProblems(std::move(problems));
  return root;
}

HostConfig parse_config(std::string_view text, const std::filesystem::path& file, const EnvLookup& env) {
  auto shared_root = std::make_shared<toml::table>(parse_toml(text, file));
  toml::table& root = *shared_root;
  std::vector<std::string> problems;
  interpolate_tree(root, "", env, file, problems);

  HostConfig config;
  config.file = file;
  Validator v(file, problems);
  v.only_keys(root, "", {"server", "auth", "chat", "cluster", "log", "plugins", "bus", "storage", "features"});

  if (const toml::table* server = v.table(root, "server", "server")) {
    v.only_keys(*server, "server",
                {"listen", "threads", "origins", "max_frame_bytes", "ping_interval_seconds", "idle_timeout_seconds",
                 "outbound_queue_bytes", "commands_per_second", "command_burst", "max_connections",
                 "command_timeout_seconds", "max_unauthenticated_per_ip", "rest_requests_per_second", "rest_burst",
                 "static_dir", "tls", "admin_api"});
    ServerConfig& sc = config.server;
    if (auto listen = v.string(*server, "listen", "server.listen")) {
      auto colon = listen->rfind(':');
      if (colon == std::string::npos || colon + 1 == listen->size()) {
        v.problem(*server->get("listen"), "server.listen", "expected \"address:port\", got \"" + *listen + "\"");
      }
      sc.listen = *listen;
    }
    v.integer(*server, "threads", "server.threads", 0, 256, sc.threads);
    v.strings(*server, "origins", "server.origins", sc.origins);
    v.integer(*server, "max_frame_bytes", "server.max_frame_bytes", 1024, 16 << 20, sc.max_frame_bytes);
    v.integer(*server, "ping_interval_seconds", "server.ping_interval_seconds", 1, 3600, sc.ping_interval_seconds);
    v.integer(*server, "idle_timeout_seconds", "server.idle_timeout_seconds", 2, 86400, sc.idle_timeout_seconds);
    v.integer(*server, "outbound_queue_bytes", "server.outbound_queue_bytes", 4096, 1 << 30, sc.outbound_queue_bytes);
    v.integer(*server, "commands_per_second", "server.commands_per_second", 1, 1000000, sc.commands_per_second);
    v.integer(*server, "command_burst", "server.command_burst", 1, 1000000, sc.command_burst);
    v.integer(*server, "max_connections", "server.max_connections", 0, 10000000, sc.max_connections);
    v.integer(*server, "command_timeout_seconds", "server.command_timeout_seconds", 1, 3600, sc.command_timeout_seconds);
    v.integer(*server, "max_unauthenticated_per_ip", "server.max_unauthenticated_per_ip", 0, 10000000,
              sc.max_unauthenticated_per_ip);
    v.integer(*server, "rest_requests_per_second", "server.rest_requests_per_second", 1, 1000000,
              sc.rest_requests_per_second);
    v.integer(*server, "rest_burst", "server.rest_burst", 1, 1000000, sc.rest_burst);
    if (auto dir = v.string(*server, "static_dir", "server.static_dir")) sc.static_dir = *dir;
    v.boolean(*server, "admin_api", "server.admin_api", sc.admin_api);
    if (const toml::table* tls = v.table(*server, "tls", "server.tls")) {
      v.only_keys(*tls, "server.tls", {"cert", "key"});
      sc.tls.where = where(*tls, file);
      if (auto cert = v.string(*tls, "cert", "server.tls.cert")) sc.tls.cert = *cert;
      if (auto key = v.string(*tls, "key", "server.tls.key")) sc.tls.key = *key;
      if (sc.tls.cert.empty() || sc.tls.key.empty()) {
        v.problem(*tls, "server.tls", "needs both \"cert\" and \"key\" (PEM files)");
      }
    }
  }

  if (const toml::table* auth = v.table(root, "auth", "auth")) {
    v.only_keys(*auth, "auth",
                {"algorithm", "secret", "public_key_file", "private_key_file", "leeway_seconds", "dev_tokens"});
    AuthSection& a = config.auth;
    a.where = where(*auth, file);
    if (auto alg = v.string(*auth, "algorithm", "auth.algorithm")) {
      if (*alg != "HS256" && *alg != "RS256") {
        v.problem(*auth->get("algorithm"), "auth.algorithm", "must be \"HS256\" or \"RS256\"");
      }
      a.algorithm = *alg;
    }
    if (auto s = v.string(*auth, "secret", "auth.secret")) a.secret = *s;
    if (auto s = v.string(*auth, "public_key_file", "auth.public_key_file")) a.public_key_file = *s;
    if (auto s = v.string(*auth, "private_key_file", "auth.private_key_file")) a.private_key_file = *s;
    v.integer(*auth, "leeway_seconds", "auth.leeway_seconds", 0, 3600, a.leeway_seconds);
    v.boolean(*auth, "dev_tokens", "auth.dev_tokens", a.dev_tokens);
    // Anyone who reaches /dev/token is whoever they say: only on this machine,
    // and only with a shared secret (an RS256 deployment has an issuer).
    if (a.dev_tokens && a.algorithm != "HS256") {
      v.problem(*auth->get("dev_tokens"), "auth.dev_tokens", "only with algorithm \"HS256\" (RS256 tokens come from your issuer)");
    }
    if (a.dev_tokens && !loopback_address(config.server.listen)) {
      v.problem(*auth->get("dev_tokens"), "auth.dev_tokens",
                "only on a loopback listener (127.0.0.0/8 or [::1]), not \"" + config.server.listen + "\"");
    }
    if (a.algorithm == "HS256" && a.secret.size() < 16) {
      v.problem(auth->get("secret") ? static_cast<const toml::node&>(*auth->get("secret")) : *auth, "auth.secret",
                "HS256 needs a secret of at least 16 bytes");
    }
    if (a.algorithm == "RS256" && a.public_key_file.empty()) {
      v.problem(*auth, "auth.public_key_file", "RS256 needs a public key file");
    }
    a.present = true;
  }

  if (const toml::table* cluster = v.table(root, "cluster", "cluster")) {
    v.only_keys(*cluster, "cluster", {"presence_heartbeat_ms", "presence_lease_ms", "reorder_wait_ms"});
    ClusterConfig& c = config.cluster;
    v.integer(*cluster, "presence_heartbeat_ms", "cluster.presence_heartbeat_ms", 100, 600000, c.presence_heartbeat_ms);
    v.integer(*cluster, "presence_lease_ms", "cluster.presence_lease_ms", 300, 3600000, c.presence_lease_ms);
    v.integer(*cluster, "reorder_wait_ms", "cluster.reorder_wait_ms", 0, 60000, c.reorder_wait_ms);
    if (c.presence_lease_ms < 2 * c.presence_heartbeat_ms) {
      v.problem(*cluster, "cluster.presence_lease_ms",
                "must be at least twice cluster.presence_heartbeat_ms, or one lost heartbeat shows a host's users offline");
    }
  }
  if (const toml::table* chat = v.table(root, "chat", "chat")) {
    v.only_keys(*chat, "chat", {"max_text_bytes", "resume_window", "presence_grace_seconds", "presence_batch_ms",
                                          "history_max"});
    ChatConfig& c = config.chat;
    v.integer(*chat, "max_text_bytes", "chat.max_text_bytes", 1, 1 << 20, c.max_text_bytes);
    v.integer(*chat, "resume_window", "chat.resume_window", 0, 1000000, c.resume_window);
    v.integer(*chat, "presence_grace_seconds", "chat.presence_grace_seconds", 0, 3600, c.presence_grace_seconds);
    v.integer(*chat, "presence_batch_ms", "chat.presence_batch_ms", 0, 5000, c.presence_batch_ms);
    v.integer(*chat, "history_max", "chat.history_max", 1, 1000, c.history_max);
  }

  // Without a [log] level, LOG_LEVEL still works, as in the seeds.
  if (auto env_level = env("LOG_LEVEL")) {
    if (auto level = parse_log_level(*env_level)) config.log.level = *level;
  }
  if (const toml::table* log = v.table(root, "log", "log")) {
    v.only_keys(*log, "log", {"level", "format"});
    if (auto level = v.string(*log, "level", "log.level")) {
      if (auto parsed = parse_log_level(*level)) {
        config.log.level = *parsed;
      } else {
        v.problem(*log->get("level"), "log.level",
                  "unknown level \"" + *level + "\" (trace, debug, info, warn, error)");
      }
    }
    if (auto format = v.string(*log, "format", "log.format")) {
      if (*format == "text") {
        config.log.format = LogFormat::text;
      } else if (*format == "json") {
        config.log.format = LogFormat::json;
      } else {
        v.problem(*log->get("format"), "log.format", "unknown format \"" + *format + "\" (text, json)");
      }
    }
  }

  if (const toml::table* plugins = v.table(root, "plugins", "plugins")) {
    v.only_keys(*plugins, "plugins", {"directories"});
    std::vector<std::string> dirs;
    v.strings(*plugins, "directories", "plugins.directories", dirs);
    config.plugin_directories.assign(dirs.begin(), dirs.end());
  }

  for (const char* kind : {"bus", "storage"}) {
    PluginDeclaration& slot = std::string_view(kind) == "bus" ? config.bus : config.storage;
    if (const toml::table* table = v.table(root, kind, kind)) {
      slot = plugin_entry(v, shared_root, *table, kind, file);
    } else if (!root.contains(kind)) {
      problems.push_back(file.string() + ": " + kind + ": missing required table [" + kind +
                         "] (exactly one " + kind + " plugin is needed)");
    }
  }

  if (const toml::node* features = root.get("features")) {
    if (const toml::array* array = features->as_array(); array && array->is_array_of_tables()) {
      for (std::size_t i = 0; i < array->size(); ++i) {
        config.features.push_back(
            plugin_entry(v, shared_root, *array->get(i)->as_table(), "features[" + std::to_string(i) + "]", file));
      }
    } else {
      v.problem(*features, "features", "expected an array of tables ([[features]] entries)");
    }
  }

  if (!problems.empty()) throw ConfigProblems(std::move(problems));
  return config;
}

}  // namespace switchboard::host
