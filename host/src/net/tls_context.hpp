// [server.tls]: the certificate and key the listener serves, on Debian's
// OpenSSL. reload() (SIGHUP) reads the files again: new connections get the
// new certificate, open ones keep theirs — an OpenSSL connection holds a
// reference to the context it began with, so nothing is dropped.
#pragma once

#include <chrono>
#include <memory>
#include <mutex>
#include <string>

#include "config/host_config.hpp"

struct ssl_ctx_st;

namespace switchboard::host {

class TlsContext {
 public:
  // Reads and checks the files (the key must match the certificate). Throws
  // std::runtime_error naming the file and OpenSSL's reason.
  explicit TlsContext(TlsConfig config);

  // The context new connections start with. Any thread.
  std::shared_ptr<ssl_ctx_st> current() const;
  // The files read again and checked, not yet served: commit() serves them.
  struct Loaded {
    std::shared_ptr<ssl_ctx_st> context;
    std::int64_t not_after = 0;
  };
  // Reads the files again; on failure throws (as above). Any thread.
  Loaded prepare() const { return load(config_); }
  // New connections get `fresh` from now on. Any thread.
  void commit(Loaded fresh);
  // prepare() then commit(): on failure the old certificate stays.
  void reload() { commit(prepare()); }
  // The current certificate's notAfter, in seconds since the Unix epoch.
  std::int64_t not_after() const;
  const TlsConfig& config() const noexcept { return config_; }

 private:
  static Loaded load(const TlsConfig& config);

  TlsConfig config_;
  mutable std::mutex mutex_;
  Loaded loaded_;
};

}  // namespace switchboard::host
