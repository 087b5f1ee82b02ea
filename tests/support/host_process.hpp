// The real switchboard binary on a free port with its own data directory,
// for end-to-end tests.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "support/process.hpp"

namespace switchboard::testing {

inline constexpr const char* kTestSecret = "e2e-test-secret-0123456789";

struct HostOptions {
  std::string server;  // extra lines under [server]
  std::string chat;    // extra lines under [chat]
  std::vector<std::string> features = {"feature-reactions", "feature-pins", "feature-typing", "feature-receipts"};
  std::string feature_config;  // lines appended after the features (e.g. a [[features]] with its config)
  std::string data_dir;  // empty: a fresh temporary directory
  std::string bus;       // a whole [bus] table; empty: bus-gochannel
  std::string storage;   // a whole [storage] table; empty: storage-sqlite in data_dir
  std::string cluster;   // lines under [cluster]
};

class HostProcess {
 public:
  explicit HostProcess(HostOptions options = {});
  ~HostProcess();

  std::uint16_t port() const { return port_; }
  const std::string& data_dir() const { return data_dir_; }
  const std::string& config_file() const { return config_file_; }
  std::string output() const { return process_ ? process_->output() : std::string(); }

  // Stops with `signal` and returns how it ended.
  Finished stop(int signal = 15);
  bool running() const { return process_ != nullptr; }
  // Stops gracefully and starts again on the same data (a new port).
  void restart();
  // Starts again after stop() (e.g. after a SIGKILL), on the same data.
  void start();
  pid_t pid() const { return process_ ? process_->pid() : -1; }
  // Resident memory of the host process, in KiB (from /proc), or -1.
  long rss_kib() const;
  // Its peak resident memory so far (VmHWM), in KiB, or -1.
  long peak_rss_kib() const;

 private:
  HostOptions options_;
  std::unique_ptr<TempDir> tmp_;
  std::string data_dir_;
  std::string config_file_;
  std::unique_ptr<Process> process_;
  std::uint16_t port_ = 0;
};

// A token for `user`, signed with kTestSecret.
std::string token_for(const std::string& user, std::chrono::seconds ttl = std::chrono::hours(1));

}  // namespace switchboard::testing
