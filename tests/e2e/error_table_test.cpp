// docs/protocol.md's "Errors by command" table, walked through the real
// binary: the test reads the table, and for every command and every code it
// lists sends a request that must produce exactly that code. A documented
// code without a case here, or a case the table does not list, fails too —
// so the table, the host and this test cannot drift apart.
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <sstream>

#include "support/chat_helpers.hpp"
#include "support/host_process.hpp"
#include "support/ws_client.hpp"

namespace switchboard::testing {
namespace {

namespace json = boost::json;

using Pairs = std::set<std::pair<std::string, std::string>>;  // (command, code)

Pairs documented_pairs() {
  std::ifstream in(std::string(SOURCE_DIR) + "/docs/protocol.md");
  std::stringstream text;
  text << in.rdbuf();
  std::string doc = text.str();
  auto start = doc.find("### Errors by command");
  Pairs pairs;
  if (start == std::string::npos) return pairs;
  std::istringstream lines(doc.substr(start));
  std::string line;
  std::getline(lines, line);  // the heading
  // The `backticked` words of a cell.
  auto words = [](std::string_view cell) {
    std::vector<std::string> out;
    for (std::size_t at = cell.find('`'); at != std::string_view::npos; at = cell.find('`', at)) {
      std::size_t end = cell.find('`', at + 1);
      if (end == std::string_view::npos) break;
      out.emplace_back(cell.substr(at + 1, end - at - 1));
      at = end + 1;
    }
    return out;
  };
  bool in_table = false;
  while (std::getline(lines, line)) {
    if (line.rfind("|", 0) != 0) {
      if (in_table) break;  // the table ended
      continue;
    }
    in_table = true;
    // | `command` | `code`, `code` | when |
    std::size_t second = line.find('|', 1), third = second == std::string::npos ? second : line.find('|', second + 1);
    if (third == std::string::npos) continue;
    auto command = words(std::string_view(line).substr(1, second - 1));
    if (command.size() != 1) continue;  // the header row and its rule
    pairs.emplace(command[0], "");  // the command is listed (even with no codes)
    for (const auto& code : words(std::string_view(line).substr(second + 1, third - second - 1))) {
      pairs.emplace(command[0], code);
    }
  }
  return pairs;
}

struct Fixture {
  // max_pins = 1 so that a second pin reaches the limit.
  HostProcess host{{.features = {"feature-reactions", "feature-typing", "feature-receipts"},
                    .feature_config = "[[features]]\nplugin = \"feature-pins\"\n[features.config]\nmax_pins = 1\n"}};
  WsClient alice{host.port(), token_for("alice")};  // owner of the group
  WsClient bob{host.port(), token_for("bob")};      // a member
  WsClient carol{host.port(), token_for("carol")};  // an admin
  WsClient dave{host.port(), token_for("dave")};    // in nothing
  std::int64_t g = group(alice, {"bob", "carol"});
  std::int64_t channel = id_of(conversation_of(alice, "channel", {}, "news"));
  std::int64_t direct = id_of(conversation_of(alice, "direct", {"bob"}));
  std::int64_t m1 = id_of(message(alice, g, "first"));
  std::int64_t m2 = id_of(message(alice, g, "second"));
  std::int64_t deleted = id_of(message(alice, g, "gone"));
  static constexpr std::int64_t kNone = 999999999;

  Fixture() {
    alice.command({{"type", "member.role"}, {"conversation_id", g}, {"user_id", "carol"}, {"role", "admin"}});
    alice.command({{"type", "message.delete"}, {"message_id", deleted}});
    alice.command({{"type", "pin.add"}, {"message_id", m1}});  // the one pin max_pins allows
  }
};

struct Case {
  WsClient Fixture::*who;
  std::function<json::object(const Fixture&)> request;
};

json::object conv(const char* type, std::int64_t id) { return {{"type", type}, {"conversation_id", id}}; }
json::object msg(const char* type, std::int64_t id) { return {{"type", type}, {"message_id", id}}; }

std::map<std::pair<std::string, std::string>, Case> cases() {
  using F = const Fixture&;
  constexpr auto N = Fixture::kNone;
  const std::string long_text(8001, 't');
  std::map<std::pair<std::string, std::string>, Case> c;
  auto add = [&](std::string command, std::string code, WsClient Fixture::*who, std::function<json::object(F)> r) {
    c.emplace(std::make_pair(std::move(command), std::move(code)), Case{who, std::move(r)});
  };
  auto A = &Fixture::alice;
  auto B = &Fixture::bob;
  auto C = &Fixture::carol;
  auto D = &Fixture::dave;
  add("conversation.create", "bad_request", A, [](F) { return json::object{{"type", "conversation.create"}, {"kind", "room"}}; });
  add("conversation.list", "bad_request", A, [](F) { return json::object{{"type", "conversation.list"}, {"limit", "ten"}}; });
  add("conversation.get", "bad_request", A, [](F) { return json::object{{"type", "conversation.get"}}; });
  add("conversation.get", "forbidden", D, [](F f) { return conv("conversation.get", f.g); });
  add("conversation.get", "not_found", A, [](F) { return conv("conversation.get", N); });
  add("conversation.join", "bad_request", D, [](F) { return json::object{{"type", "conversation.join"}, {"conversation_id", "x"}}; });
  add("conversation.join", "forbidden", D, [](F f) { return conv("conversation.join", f.g); });
  add("conversation.join", "not_found", D, [](F) { return conv("conversation.join", N); });
  add("conversation.leave", "bad_request", A, [](F) { return json::object{{"type", "conversation.leave"}}; });
  add("conversation.leave", "forbidden", A, [](F f) { return conv("conversation.leave", f.direct); });
  add("conversation.leave", "not_found", A, [](F) { return conv("conversation.leave", N); });
  add("conversation.leave", "conflict", A, [](F f) { return conv("conversation.leave", f.g); });
  auto member = [](const char* type, std::int64_t id, const char* user, const char* role = nullptr) {
    json::object o{{"type", type}, {"conversation_id", id}, {"user_id", user}};
    if (role) o["role"] = role;
    return o;
  };
  add("member.add", "bad_request", A, [=](F f) { return member("member.add", f.g, "erin", "king"); });
  add("member.add", "forbidden", B, [=](F f) { return member("member.add", f.g, "erin"); });
  add("member.add", "not_found", A, [=](F) { return member("member.add", N, "erin"); });
  add("member.add", "conflict", A, [=](F f) { return member("member.add", f.g, "bob"); });
  add("member.remove", "bad_request", A, [=](F f) { return json::object{{"type", "member.remove"}, {"conversation_id", f.g}}; });
  add("member.remove", "forbidden", C, [=](F f) { return member("member.remove", f.g, "alice"); });
  add("member.remove", "not_found", A, [=](F f) { return member("member.remove", f.g, "dave"); });
  add("member.remove", "conflict", A, [=](F f) { return member("member.remove", f.g, "alice"); });
  add("member.role", "bad_request", A, [=](F f) { return member("member.role", f.g, "bob", "king"); });
  add("member.role", "forbidden", B, [=](F f) { return member("member.role", f.g, "carol", "member"); });
  add("member.role", "not_found", A, [=](F f) { return member("member.role", f.g, "dave", "admin"); });
  add("member.role", "conflict", A, [=](F f) { return member("member.role", f.g, "alice", "admin"); });
  auto send = [](std::int64_t id, const std::string& text) {
    return json::object{{"type", "message.send"}, {"conversation_id", id}, {"text", text}};
  };
  add("message.send", "bad_request", A, [=](F f) { return send(f.g, ""); });
  add("message.send", "too_large", A, [=](F f) { return send(f.g, long_text); });
  add("message.send", "forbidden", D, [=](F f) { return send(f.g, "hi"); });
  add("message.send", "not_found", A, [=](F f) {
    auto o = send(f.g, "a reply");
    o["reply_to"] = N;
    return o;
  });
  auto edit = [](std::int64_t id, const std::string& text) {
    return json::object{{"type", "message.edit"}, {"message_id", id}, {"text", text}};
  };
  add("message.edit", "bad_request", A, [=](F f) { return edit(f.m1, ""); });
  add("message.edit", "too_large", A, [=](F f) { return edit(f.m1, long_text); });
  add("message.edit", "forbidden", B, [=](F f) { return edit(f.m1, "mine now"); });
  add("message.edit", "not_found", A, [=](F) { return edit(N, "x"); });
  add("message.edit", "conflict", A, [=](F f) { return edit(f.deleted, "back"); });
  add("message.delete", "bad_request", A, [](F) { return json::object{{"type", "message.delete"}}; });
  add("message.delete", "forbidden", B, [](F f) { return msg("message.delete", f.m1); });
  add("message.delete", "not_found", A, [](F) { return msg("message.delete", N); });
  add("history", "bad_request", A, [](F f) {
    auto o = conv("history", f.g);
    o["before"] = 5;
    o["after"] = 1;
    return o;
  });
  add("history", "forbidden", D, [](F f) { return conv("history", f.g); });
  add("history", "not_found", A, [](F) { return conv("history", N); });
  add("subscribe", "bad_request", A, [](F) { return json::object{{"type", "subscribe"}, {"positions", "all"}}; });
  add("presence", "bad_request", A, [](F) { return json::object{{"type", "presence"}}; });
  add("presence", "forbidden", D, [](F f) { return conv("presence", f.g); });
  add("presence", "not_found", A, [](F) { return conv("presence", N); });
  auto react = [](const char* type, std::int64_t id, const std::string& emoji) {
    return json::object{{"type", type}, {"message_id", id}, {"emoji", emoji}};
  };
  for (const char* type : {"reaction.add", "reaction.remove"}) {
    add(type, "bad_request", A, [=](F f) { return react(type, f.m1, ""); });
    add(type, "forbidden", D, [=](F f) { return react(type, f.m1, "👍"); });
    add(type, "not_found", A, [=](F f) { return react(type, f.deleted, "👍"); });
  }
  for (const char* type : {"reaction.add", "reaction.remove"}) {
    add(type, "too_large", A, [=](F f) { return react(type, f.m1, std::string(65, 'e')); });
  }
  add("pin.add", "bad_request", A, [](F) { return json::object{{"type", "pin.add"}}; });
  add("pin.add", "forbidden", B, [](F f) { return msg("pin.add", f.m2); });
  add("pin.add", "not_found", A, [](F f) { return msg("pin.add", f.deleted); });
  add("pin.add", "limit_reached", A, [](F f) { return msg("pin.add", f.m2); });
  add("pin.remove", "bad_request", A, [](F) { return json::object{{"type", "pin.remove"}}; });
  add("pin.remove", "forbidden", D, [](F f) { return msg("pin.remove", f.m1); });
  add("pin.remove", "not_found", A, [](F) { return msg("pin.remove", N); });
  add("pins", "bad_request", A, [](F) { return json::object{{"type", "pins"}}; });
  add("pins", "forbidden", D, [](F f) { return conv("pins", f.g); });
  for (const char* type : {"typing.start", "typing.stop"}) {
    add(type, "bad_request", A, [=](F) { return json::object{{"type", type}}; });
    add(type, "forbidden", D, [=](F f) { return conv(type, f.g); });
  }
  add("read", "bad_request", A, [](F f) {
    auto o = conv("read", f.g);
    o["seq"] = -1;
    return o;
  });
  add("read", "forbidden", D, [](F f) {
    auto o = conv("read", f.g);
    o["seq"] = 1;
    return o;
  });
  return c;
}

TEST(ErrorTable, EveryDocumentedCodeIsProducedAndNoOther) {
  Pairs documented = documented_pairs();
  ASSERT_FALSE(documented.empty()) << "docs/protocol.md has no \"Errors by command\" table";
  auto all = cases();
  // The table and the cases list the same pairs.
  std::set<std::string> commands;
  for (const auto& [command, code] : documented) {
    commands.insert(command);
    if (code.empty()) continue;
    EXPECT_TRUE(all.contains({command, code})) << "documented, never produced: " << command << " " << code;
  }
  for (const auto& [pair, c] : all) {
    EXPECT_TRUE(documented.contains(pair)) << "produced, not documented: " << pair.first << " " << pair.second;
  }
  // Every command a client can send has a row (core and the four features).
  for (const char* command : {"conversation.create", "conversation.list", "conversation.get", "conversation.join",
                              "conversation.leave", "member.add", "member.remove", "member.role", "message.send",
                              "message.edit", "message.delete", "history", "subscribe", "presence", "ping",
                              "reaction.add", "reaction.remove", "pin.add", "pin.remove", "pins", "typing.start",
                              "typing.stop", "read", "unread"}) {
    EXPECT_TRUE(commands.contains(command)) << command << " has no row in the table";
  }

  Fixture f;
  for (const auto& [pair, c] : all) {
    const auto& [command, code] = pair;
    auto request = c.request(f);
    ASSERT_EQ(std::string(request.at("type").as_string()), command);
    auto answer = (f.*c.who).command(request);
    EXPECT_EQ(answer["type"], "error") << command << " " << code << ": " << json::serialize(answer);
    EXPECT_EQ(answer["code"], json::value(code)) << command << ": " << json::serialize(answer);
  }
  // The codes any command may answer: unknown_type here, rate_limited below.
  EXPECT_EQ(f.alice.command({{"type", "no.such.command"}})["code"], "unknown_type");
}

TEST(ErrorTable, AnyCommandMayBeRateLimited) {
  HostProcess host({.server = "commands_per_second = 1\ncommand_burst = 2\n"});
  WsClient alice(host.port(), token_for("alice"));
  std::string last;
  for (int i = 0; i < 4 && last != "rate_limited"; ++i) {
    auto r = alice.command({{"type", "conversation.list"}});
    last = r["type"] == "error" ? std::string(r["code"].as_string()) : "ack";
  }
  EXPECT_EQ(last, "rate_limited");
}

}  // namespace
}  // namespace switchboard::testing
