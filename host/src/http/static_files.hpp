// The files of [server] static_dir (the browser chat), read once at start
// and served from memory at GET /…: no disk read on a worker, and nothing
// outside the directory can ever be named — only files listed at start exist.
#pragma once

#include <cstddef>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace switchboard::host {

class StaticFiles {
 public:
  struct File {
    std::string content;
    std::string content_type;
  };

  StaticFiles() = default;  // none
  // Like a plugin: a name without '/' ("chat") is the directory of that name
  // in <bin>/../share/switchboard/ (where the build tree and the package put
  // the browser chat); a path is used as it is.
  static std::filesystem::path resolve(const std::string& configured);
  // Reads every regular file under `root` (symlinks followed only when they
  // stay inside it). Throws std::runtime_error naming the problem: not a
  // directory, unreadable, or over the bounds below.
  explicit StaticFiles(const std::filesystem::path& root);

  // The file for a request path ("/" and "/dir/" are their index.html), or
  // nullptr. `path` is the decoded path without query.
  const File* find(std::string_view path) const;
  bool empty() const noexcept { return files_.empty(); }
  std::size_t size() const noexcept { return files_.size(); }

  static constexpr std::size_t kMaxFiles = 4096;
  static constexpr std::size_t kMaxBytes = 64u << 20;

 private:
  std::unordered_map<std::string, File> files_;  // "/index.html" → file
};

}  // namespace switchboard::host
