// Where plugins are found: by name in the plugin directories, or by path.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "plugins/plugin_library.hpp"

namespace switchboard::host {

class PluginCatalog {
 public:
  explicit PluginCatalog(std::vector<std::filesystem::path> directories);

  // $SWITCHBOARD_PLUGIN_PATH (':'-separated), then <exe>/../lib/switchboard/plugins,
  // which is both the build tree's and the install's layout.
  static std::vector<std::filesystem::path> default_directories();

  // A name ("bus-nats") is looked up as "<name>.so" in every directory; found
  // twice is an error naming both files. Anything with a '/' or ending in
  // ".so" is a path. Throws PluginLoadError.
  std::filesystem::path resolve(const std::string& plugin) const;

  struct Entry {
    std::filesystem::path file;
    std::optional<PluginInfo> info;  // empty: `error` says why it cannot load
    std::string error;
  };
  // Every .so in the directories, loaded and checked, in directory order.
  std::vector<Entry> scan() const;

  const std::vector<std::filesystem::path>& directories() const noexcept { return directories_; }

 private:
  std::vector<std::filesystem::path> directories_;
};

}  // namespace switchboard::host
