#include "support/host_process.hpp"

#include <fstream>
#include <stdexcept>

#include "auth/token_verifier.hpp"

namespace switchboard::testing {

using namespace std::chrono_literals;

HostProcess::HostProcess(HostOptions options) : options_(std::move(options)) {
  tmp_ = std::make_unique<TempDir>();
  data_dir_ = options_.data_dir.empty() ? tmp_->path() : options_.data_dir;
  std::string config = "[server]\nlisten = \"127.0.0.1:0\"\n" + options_.server +
                       "\n[auth]\nalgorithm = \"HS256\"\nsecret = \"" + kTestSecret + "\"\n" +
                       "\n[chat]\n" + options_.chat + "\n[log]\nlevel = \"info\"\n" +
                       "\n[cluster]\n" + options_.cluster + "\n" +
                       (options_.bus.empty() ? std::string("\n[bus]\nplugin = \"bus-gochannel\"\n") : options_.bus) +
                       (options_.storage.empty() ? "\n[storage]\nplugin = \"storage-sqlite\"\n[storage.config]\npath = \"" +
                                                       data_dir_ + "/switchboard.db\"\n"
                                                 : options_.storage);
  for (const auto& f : options_.features) config += "\n[[features]]\nplugin = \"" + f + "\"\n";
  config += options_.feature_config;
  config_file_ = tmp_->file("switchboard.toml", config);
  start();
}

HostProcess::~HostProcess() {
  if (process_) stop();
}

void HostProcess::start() {
  process_ = std::make_unique<Process>(std::vector<std::string>{SWITCHBOARD_BIN, "serve", "--config", config_file_});
  const std::string marker = "listening address=127.0.0.1:";
  if (!process_->wait_for_output(marker, 30s)) {
    throw std::runtime_error("the host did not start:\n" + process_->output());
  }
  const std::string& out = process_->output();
  auto at = out.rfind(marker) + marker.size();
  port_ = static_cast<std::uint16_t>(std::stoi(out.substr(at, out.find(' ', at) - at)));
}

Finished HostProcess::stop(int signal) {
  process_->signal(signal);
  Finished f = process_->wait(30s);
  process_.reset();
  return f;
}

namespace {

// A "Vm...:" line of /proc/<pid>/status, in KiB, or -1.
long status_kib(pid_t pid, const std::string& field) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string key;
  while (status >> key) {
    if (key == field) {
      long kib = -1;
      status >> kib;
      return kib;
    }
    status.ignore(4096, '\n');
  }
  return -1;
}

}  // namespace

long HostProcess::rss_kib() const { return process_ ? status_kib(process_->pid(), "VmRSS:") : -1; }

long HostProcess::peak_rss_kib() const { return process_ ? status_kib(process_->pid(), "VmHWM:") : -1; }

void HostProcess::restart() {
  stop();
  start();
}

std::string token_for(const std::string& user, std::chrono::seconds ttl) {
  host::AuthConfig c;
  c.secret = kTestSecret;
  host::TokenVerifier v(c);
  auto now = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch());
  return v.mint(user, ttl, now.count());
}

}  // namespace switchboard::testing
