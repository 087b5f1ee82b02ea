#include "support/process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>

extern char** environ;

namespace switchboard::testing {

Process::Process(std::vector<std::string> argv, std::map<std::string, std::string> env,
                 std::optional<std::string> cwd) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
  pid_ = fork();
  if (pid_ < 0) throw std::runtime_error("fork failed");
  if (pid_ == 0) {
    dup2(fds[1], 1);
    dup2(fds[1], 2);
    // Nothing else of the test's leaks in: a server started from here must
    // not keep a test client's socket open.
    close_range(3, ~0U, 0);
    for (const auto& [k, v] : env) setenv(k.c_str(), v.c_str(), 1);
    if (cwd && chdir(cwd->c_str()) != 0) _exit(126);
    // Signals blocked by the test runner must not stay blocked in the child.
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    std::vector<char*> args;
    for (auto& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    execvp(args[0], args.data());
    _exit(127);
  }
  close(fds[1]);
  out_fd_ = fds[0];
}

Process::~Process() {
  if (!finished_) {
    ::kill(pid_, SIGKILL);
    int status;
    waitpid(pid_, &status, 0);
  }
  if (out_fd_ >= 0) close(out_fd_);
}

void Process::signal(int sig) { ::kill(pid_, sig); }

bool Process::pump(std::chrono::milliseconds timeout) {
  pollfd p{out_fd_, POLLIN, 0};
  int n = poll(&p, 1, static_cast<int>(timeout.count()));
  if (n <= 0) return false;
  char buf[4096];
  ssize_t got = read(out_fd_, buf, sizeof buf);
  if (got <= 0) return false;
  output_.append(buf, static_cast<std::size_t>(got));
  return true;
}

bool Process::wait_for_output(const std::string& text, std::chrono::milliseconds deadline) {
  auto end = std::chrono::steady_clock::now() + deadline;
  while (output_.find(text) == std::string::npos) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(end - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    if (!pump(std::min(left, std::chrono::milliseconds(100)))) {
      int status;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        while (pump(std::chrono::milliseconds(0))) {}
        finished_ = Finished{WIFEXITED(status) ? WEXITSTATUS(status) : -1, WIFSIGNALED(status) ? WTERMSIG(status) : 0,
                             output_};
        return output_.find(text) != std::string::npos;
      }
    }
  }
  return true;
}

Finished Process::wait(std::chrono::milliseconds deadline) {
  if (finished_) {
    finished_->output = output_;
    return *finished_;
  }
  auto end = std::chrono::steady_clock::now() + deadline;
  int status = 0;
  for (;;) {
    while (pump(std::chrono::milliseconds(20))) {}
    if (waitpid(pid_, &status, WNOHANG) == pid_) break;
    if (std::chrono::steady_clock::now() > end) {
      ::kill(pid_, SIGKILL);
      waitpid(pid_, &status, 0);
      break;
    }
  }
  while (pump(std::chrono::milliseconds(0))) {}
  finished_ = Finished{WIFEXITED(status) ? WEXITSTATUS(status) : -1, WIFSIGNALED(status) ? WTERMSIG(status) : 0,
                       output_};
  return *finished_;
}

Finished run(std::vector<std::string> argv, std::map<std::string, std::string> env,
             std::chrono::milliseconds deadline) {
  Process p(std::move(argv), std::move(env));
  return p.wait(deadline);
}

std::vector<std::string> lines(const std::string& text) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start < text.size()) {
    auto end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    if (end > start) out.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

TempDir::TempDir() {
  std::string pattern = (std::filesystem::temp_directory_path() / "switchboard-test-XXXXXX").string();
  if (!mkdtemp(pattern.data())) throw std::runtime_error("mkdtemp failed");
  path_ = pattern;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

std::string TempDir::file(const std::string& name, const std::string& content) const {
  std::string full = path_ + "/" + name;
  std::filesystem::create_directories(std::filesystem::path(full).parent_path());
  std::ofstream(full) << content;
  return full;
}

}  // namespace switchboard::testing
