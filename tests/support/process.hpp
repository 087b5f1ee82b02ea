// Runs a real program (the switchboard binary, the contract runner) from a
// test: captures its output, sends it signals, waits with a deadline.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace switchboard::testing {

struct Finished {
  int exit_code = -1;    // -1 if killed by a signal
  int signal = 0;
  std::string output;    // stdout and stderr, interleaved
};

class Process {
 public:
  // Starts `argv` with `env` added to this process's environment, in `cwd` if given.
  Process(std::vector<std::string> argv, std::map<std::string, std::string> env = {},
          std::optional<std::string> cwd = std::nullopt);
  ~Process();  // kills it if still running
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  pid_t pid() const { return pid_; }
  void signal(int sig);
  // Reads output until `text` appears or the deadline passes.
  bool wait_for_output(const std::string& text, std::chrono::milliseconds deadline);
  // Waits for exit; kills with SIGKILL at the deadline (then exit_code is -1).
  Finished wait(std::chrono::milliseconds deadline);
  const std::string& output() const { return output_; }

 private:
  bool pump(std::chrono::milliseconds timeout);

  pid_t pid_ = -1;
  int out_fd_ = -1;
  std::string output_;
  std::optional<Finished> finished_;
};

// Runs to completion (SIGKILL after `deadline`).
Finished run(std::vector<std::string> argv, std::map<std::string, std::string> env = {},
             std::chrono::milliseconds deadline = std::chrono::seconds(60));

// Lines of `text` that are not empty.
std::vector<std::string> lines(const std::string& text);

// A fresh directory under /tmp, removed with everything in it on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }
  std::string file(const std::string& name, const std::string& content) const;

 private:
  std::string path_;
};

}  // namespace switchboard::testing
