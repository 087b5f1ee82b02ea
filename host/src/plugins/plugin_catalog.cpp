#include "plugins/plugin_catalog.hpp"

#include <algorithm>
#include <cstdlib>

namespace switchboard::host {

namespace fs = std::filesystem;

PluginCatalog::PluginCatalog(std::vector<fs::path> directories) : directories_(std::move(directories)) {}

std::vector<fs::path> PluginCatalog::default_directories() {
  std::vector<fs::path> dirs;
  if (const char* env = std::getenv("SWITCHBOARD_PLUGIN_PATH")) {
    std::string_view rest(env);
    while (!rest.empty()) {
      auto colon = rest.find(':');
      auto part = rest.substr(0, colon);
      if (!part.empty()) dirs.emplace_back(part);
      rest = colon == std::string_view::npos ? std::string_view{} : rest.substr(colon + 1);
    }
  }
  std::error_code ec;
  fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) dirs.push_back((exe.parent_path() / ".." / "lib" / "switchboard" / "plugins").lexically_normal());
  return dirs;
}

fs::path PluginCatalog::resolve(const std::string& plugin) const {
  if (plugin.find('/') != std::string::npos || plugin.ends_with(".so")) {
    return fs::path(plugin);
  }
  std::vector<fs::path> found;
  for (const auto& dir : directories_) {
    fs::path candidate = dir / (plugin + ".so");
    std::error_code ec;
    if (fs::is_regular_file(candidate, ec)) found.push_back(candidate);
  }
  if (found.size() > 1) {
    throw PluginLoadError("plugin \"" + plugin + "\" is found twice: " + found[0].string() + " and " +
                          found[1].string() + " (remove one, or give a path)");
  }
  if (found.empty()) {
    std::string searched;
    for (const auto& dir : directories_) searched += (searched.empty() ? "" : ", ") + dir.string();
    throw PluginLoadError("plugin \"" + plugin + "\" not found (looked for " + plugin + ".so in: " +
                          (searched.empty() ? "no directories" : searched) + ")");
  }
  return found.front();
}

std::vector<PluginCatalog::Entry> PluginCatalog::scan() const {
  std::vector<Entry> entries;
  for (const auto& dir : directories_) {
    std::error_code ec;
    std::vector<fs::path> files;
    for (const auto& item : fs::directory_iterator(dir, ec)) {
      if (item.path().extension() == ".so") files.push_back(item.path());
    }
    std::sort(files.begin(), files.end());
    for (const auto& file : files) {
      Entry entry{file, std::nullopt, {}};
      try {
        entry.info = PluginLibrary::inspect(file);  // read, not loaded: no plugin code runs
      } catch (const PluginLoadError& e) {
        entry.error = e.what();
      }
      entries.push_back(std::move(entry));
    }
  }
  return entries;
}

}  // namespace switchboard::host
