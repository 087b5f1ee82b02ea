// feature-reactions end to end: the real host loading the plugin from its TOML.
#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "support/chat_helpers.hpp"
#include "support/host_process.hpp"
#include "support/ws_client.hpp"

namespace switchboard::testing {
namespace {

namespace json = boost::json;

TEST(Reactions, AreEventsAndDecorateHistory) {
  HostProcess host;
  auto port = [&] { return host.port(); };
  WsClient alice(port(), token_for("alice")), bob(port(), token_for("bob"));
  auto c = conversation_of(alice, "group", {"bob"});
  auto mid = send(alice, id_of(c), "react to me")["result"].as_object()["message"].as_object()["id"].as_int64();
  auto add = bob.command({{"type", "reaction.add"}, {"message_id", mid}, {"emoji", "🎉"}});
  ASSERT_EQ(add["type"], "ack") << json::serialize(add);
  EXPECT_EQ(add["result"].as_object()["changed"], true);
  auto ev = alice.next_of("reaction.add");
  ASSERT_TRUE(ev);
  EXPECT_EQ((*ev)["user_id"], "bob");
  EXPECT_EQ((*ev)["emoji"], "🎉");
  EXPECT_EQ(bob.command({{"type", "reaction.add"}, {"message_id", mid}, {"emoji", "🎉"}})["result"].as_object()["changed"], false)
      << "one reaction per user, message and emoji";
  auto rest = http_request(port(), "POST", "/messages/" + std::to_string(mid) + "/reactions", R"({"emoji":"👍"})", token_for("alice"));
  EXPECT_EQ(rest.status, 201) << rest.body;
  auto history = alice.command({{"type", "history"}, {"conversation_id", id_of(c)}});
  json::object reactions;
  for (const auto& e : history["result"].as_object()["events"].as_array()) {
    if (e.as_object().at("type") == "message.new") reactions = e.as_object().at("message").as_object().at("reactions").as_object();
  }
  EXPECT_EQ(reactions["🎉"], (json::array{"bob"}));
  EXPECT_EQ(reactions["👍"], (json::array{"alice"}));
  auto removed = http_request(port(), "DELETE", "/messages/" + std::to_string(mid) + "/reactions/%F0%9F%8E%89", "", token_for("bob"));
  EXPECT_EQ(removed.status, 200) << removed.body;
  EXPECT_EQ(removed.json().at("changed"), true);
  EXPECT_EQ(http_request(port(), "POST", "/messages/" + std::to_string(mid) + "/reactions", R"({"emoji":"x"})", token_for("mallory")).status, 403);
}

TEST(Reactions, RemovedFromTheTomlItsCommandsAreUnknownAndItsRoutesAreGone) {
  HostProcess host({.features = {}});
  WsClient alice(host.port(), token_for("alice"));
  auto c = conversation_of(alice, "group", {});
  auto mid = send(alice, id_of(c), "m")["result"].as_object()["message"].as_object()["id"].as_int64();
  EXPECT_EQ(alice.command({{"type", "reaction.add"}, {"message_id", mid}, {"emoji", "👍"}})["code"], "unknown_type");
  EXPECT_EQ(http_request(host.port(), "POST", "/messages/" + std::to_string(mid) + "/reactions", R"({"emoji":"👍"})", token_for("alice")).status, 404);
  EXPECT_EQ(send(alice, id_of(c), "everything else works")["type"], "ack");
}

}  // namespace
}  // namespace switchboard::testing
