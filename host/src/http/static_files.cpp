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
  auto problem = [&](const std::string& what) { return std::runtime_error("server.static_dir: " + what); };
  auto inside = [&](const fs::path& real) {
    auto rel = real.lexically_relative(root);
    return !rel.empty() && *rel.begin() != "..";
  };
  std::size_t total = 0;
  // Symlinked directories are not walked (a loop, an ancestor, or outside).
  fs::recursive_directory_iterator it(root, fs::directory_options::none, ec);
  for (; !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    const fs::path& path = it->path();
    // Dot-files (.git, .env) are not the site's.
    if (path.filename().string().starts_with(".")) {
      if (it->is_directory(ec)) it.disable_recursion_pending();
      ec.clear();
      continue;
    }
    if (!it->is_regular_file(ec)) {  // directories, sockets, dangling links
      ec.clear();
      continue;
    }
    // A symlinked file is served only when it stays inside.
    fs::path real = fs::canonical(path, ec);
    if (ec) throw problem("cannot resolve \"" + path.string() + "\" (" + ec.message() + ")");
    if (!inside(real)) continue;
    if (files_.size() == kMaxFiles) {
      throw problem("more than " + std::to_string(kMaxFiles) + " files in \"" + root.string() + "\"");
    }
    auto size = fs::file_size(real, ec);
    if (ec || size > kMaxBytes - total) {
      throw problem(ec ? "cannot read \"" + real.string() + "\" (" + ec.message() + ")"
                       : "over " + std::to_string(kMaxBytes >> 20) + " MiB in \"" + root.string() + "\"");
    }
    std::ifstream in(real, std::ios::binary);
    std::ostringstream content;
    content << in.rdbuf();
    if (!in) throw problem("cannot read \"" + real.string() + "\"");
    File file{std::move(content).str(), content_type(real)};
    total += file.content.size();
    files_.emplace("/" + path.lexically_relative(root).generic_string(), std::move(file));
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
