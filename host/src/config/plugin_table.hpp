// A plugin's own config table, as the SDK's PluginConfig: typed reads with
// file:line:col errors, and a record of which keys the plugin asked for so
// the host can reject the ones it never reads.
#pragma once

#include <filesystem>
#include <memory>
#include <mutex>
#include <set>
#include <string>

#include <toml++/toml.h>

#include "switchboard/services.hpp"

namespace switchboard::host {

class PluginTable final : public PluginConfig {
 public:
  // `owner_where` ("file:line:col" of the plugin's entry) locates problems
  // with keys that are absent.
  PluginTable(std::shared_ptr<const toml::table> table, std::string path, std::filesystem::path file,
              std::string owner_where = {});

  std::optional<std::string> string(std::string_view key) const override;
  std::optional<std::int64_t> integer(std::string_view key) const override;
  std::optional<double> number(std::string_view key) const override;
  std::optional<bool> boolean(std::string_view key) const override;
  std::optional<std::vector<std::string>> strings(std::string_view key) const override;
  [[noreturn]] void fail(std::string_view key, std::string_view problem) const override;

  // Throws ConfigError for the first key present in the table that the plugin
  // never read, naming the keys it does read.
  void reject_unread_keys(std::string_view plugin_name) const;

 private:
  const toml::node* find(std::string_view key) const;
  [[noreturn]] void wrong_type(std::string_view key, std::string_view expected) const;

  std::shared_ptr<const toml::table> table_;
  std::string path_;
  std::filesystem::path file_;
  std::string owner_where_;
  mutable std::mutex mutex_;
  mutable std::set<std::string, std::less<>> read_;
};

}  // namespace switchboard::host
