#include "config/plugin_table.hpp"

#include "config/host_config.hpp"

namespace switchboard::host {

PluginTable::PluginTable(std::shared_ptr<const toml::table> table, std::string path, std::filesystem::path file,
                         std::string owner_where)
    : table_(std::move(table)), path_(std::move(path)), file_(std::move(file)), owner_where_(std::move(owner_where)) {}

const toml::node* PluginTable::find(std::string_view key) const {
  {
    std::lock_guard lock(mutex_);
    // A dotted key marks its first component read: "pool.size" reads "pool".
    read_.emplace(key.substr(0, key.find('.')));
  }
  auto view = table_->at_path(key);
  return view.node();
}

void PluginTable::fail(std::string_view key, std::string_view problem) const {
  const toml::node* node = table_->at_path(key).node();
  std::string location = node                             ? where(*node, file_)
                         : table_->source().begin.line > 0 ? where(*table_, file_)
                         : !owner_where_.empty()           ? owner_where_
                                                           : file_.string();
  throw ConfigError(location + ": " + path_ + "." + std::string(key) + ": " + std::string(problem));
}

void PluginTable::wrong_type(std::string_view key, std::string_view expected) const {
  fail(key, "expected " + std::string(expected));
}

std::optional<std::string> PluginTable::string(std::string_view key) const {
  const toml::node* node = find(key);
  if (!node) return std::nullopt;
  if (auto* s = node->as_string()) return s->get();
  wrong_type(key, "a string");
}

std::optional<std::int64_t> PluginTable::integer(std::string_view key) const {
  const toml::node* node = find(key);
  if (!node) return std::nullopt;
  if (auto* i = node->as_integer()) return i->get();
  wrong_type(key, "an integer");
}

std::optional<double> PluginTable::number(std::string_view key) const {
  const toml::node* node = find(key);
  if (!node) return std::nullopt;
  if (auto* i = node->as_integer()) return static_cast<double>(i->get());
  if (auto* f = node->as_floating_point()) return f->get();
  wrong_type(key, "a number");
}

std::optional<bool> PluginTable::boolean(std::string_view key) const {
  const toml::node* node = find(key);
  if (!node) return std::nullopt;
  if (auto* b = node->as_boolean()) return b->get();
  wrong_type(key, "true or false");
}

std::optional<std::vector<std::string>> PluginTable::strings(std::string_view key) const {
  const toml::node* node = find(key);
  if (!node) return std::nullopt;
  const toml::array* array = node->as_array();
  if (!array) wrong_type(key, "an array of strings");
  std::vector<std::string> out;
  for (const auto& item : *array) {
    auto* s = item.as_string();
    if (!s) wrong_type(key, "an array of strings");
    out.push_back(s->get());
  }
  return out;
}

void PluginTable::reject_unread_keys(std::string_view plugin_name) const {
  std::lock_guard lock(mutex_);
  for (auto&& [key, value] : *table_) {
    if (read_.contains(key.str())) continue;
    std::string known;
    for (const auto& k : read_) known += (known.empty() ? "" : ", ") + k;
    (void)value;
    throw ConfigError(where(key, file_) + ": " + path_ + "." + std::string(key.str()) + ": unknown key for " +
                      std::string(plugin_name) + (known.empty() ? " (it reads no keys)" : " (it reads: " + known + ")"));
  }
}

}  // namespace switchboard::host
