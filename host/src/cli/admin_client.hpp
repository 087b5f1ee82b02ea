// The CLI's side of POST /admin/reload: asks the host running with a config
// (at its [server] listen address, over TLS if it has [server.tls]) to
// reload, or to say what a reload would do.
#pragma once

#include <optional>
#include <string>

#include "config/host_config.hpp"

namespace switchboard::host {

struct AdminAnswer {
  int status = 0;    // HTTP status: 200 applied, 409 refused, ...
  std::string body;  // JSON
};

// nullopt with `error` set when no host answers (not running, another
// address): "cannot reach 127.0.0.1:8080: Connection refused".
std::optional<AdminAnswer> ask_reload(const HostConfig& config, bool dry_run, std::string& error);

// The address the CLI dials for `listen`: an unspecified one (0.0.0.0, ::)
// becomes loopback.
std::string admin_address(const std::string& listen);

}  // namespace switchboard::host
