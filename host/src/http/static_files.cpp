#include "http/static_files.hpp"

#include <fstream>
#include <sstream>
#include <stdexcept>

namespace switchboard::host {

namespace fs = std::filesystem;

namespace {

std::string content_type(const fs::path& file) {
  static const std::unordered_map<std::string, std::string> types{
      {".html", "text/html; charset=utf-8"},      {".js", "text/javascript; charset=utf-8"},
      {".mjs", "text/javascript; charset=utf-8"}, {".css", "text/css; charset=utf-8"},
      {".json", "application/json"},              {".map", "application/json"},
      {".svg", "image/svg+xml"},                  {".png", "image/png"},
      {".ico", "image/x-icon"},                   {".txt", "text/plain; charset=utf-8"},
      {".woff2", "font/woff2"},                   {".webmanifest", "application/manifest+json"}};
  auto it = types.find(file.extension().string());
  return it == types.end() ? "application/octet-stream" : it->second;
}

}  // namespace

fs::path StaticFiles::resolve(const std::string& configured) {
  if (configured.find('/') != std::string::npos) return configured;
  std::error_code ec;
  fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (ec) return configured;
  return (exe.parent_path() / ".." / "share" / "switchboard" / configured).lexically_normal();
}

StaticFiles::StaticFiles(const fs::path& root_path) {
  std::error_code ec;
  fs::path root = fs::canonical(root_path, ec);
  if (ec || !fs::is_directory(root)) {
    throw std::runtime_error("server.static_dir: \"" + root_path.string() + "\" is not a directory" +
                             (ec ? " (" + ec.message() + ")" : ""));
  }
  std::size_t total = 0;
  for (auto it = fs::recursive_directory_iterator(root, fs::directory_options::follow_directory_symlink, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (!it->is_regular_file()) continue;
    fs::path real = fs::canonical(it->path(), ec);
    if (ec) break;
    auto rel = real.lexically_relative(root);
    if (rel.empty() || *rel.begin() == "..") continue;  // a symlink out of the directory: not served
    if (files_.size() == kMaxFiles) {
      throw std::runtime_error("server.static_dir: more than " + std::to_string(kMaxFiles) + " files in \"" +
                               root.string() + "\"");
    }
    std::ifstream in(real, std::ios::binary);
    std::ostringstream content;
    content << in.rdbuf();
    if (!in) throw std::runtime_error("server.static_dir: cannot read \"" + real.string() + "\"");
    File file{std::move(content).str(), content_type(real)};
    total += file.content.size();
    if (total > kMaxBytes) {
      throw std::runtime_error("server.static_dir: over " + std::to_string(kMaxBytes >> 20) + " MiB in \"" +
                               root.string() + "\"");
    }
    files_.emplace("/" + it->path().lexically_relative(root).generic_string(), std::move(file));
  }
  if (ec) throw std::runtime_error("server.static_dir: cannot list \"" + root.string() + "\" (" + ec.message() + ")");
}

const StaticFiles::File* StaticFiles::find(std::string_view path) const {
  if (files_.empty() || path.empty() || path.front() != '/') return nullptr;
  std::string key(path);
  if (key.back() == '/') key += "index.html";
  auto it = files_.find(key);
  return it == files_.end() ? nullptr : &it->second;
}

}  // namespace switchboard::host
