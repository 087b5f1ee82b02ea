// feature-pins end to end: the real host loading the plugin from its TOML.
#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "support/chat_helpers.hpp"
#include "support/host_process.hpp"
#include "support/ws_client.hpp"

namespace switchboard::testing {
namespace {

namespace json = boost::json;

TEST(Pins, AnAdminPinsAndEveryoneSeesItNewestFirst) {
  HostProcess host;
  WsClient alice(host.port(), token_for("alice")), bob(host.port(), token_for("bob"));
  auto c = group(alice, {"bob"});
  auto m1 = message(bob, c, "first"), m2 = message(bob, c, "second");
  ASSERT_EQ(alice.command({{"type", "pin.add"}, {"message_id", id_of(m1)}})["type"], "ack");
  auto event = bob.next_of("pin.add");
  ASSERT_TRUE(event);
  EXPECT_EQ((*event)["message_id"], id_of(m1));
  EXPECT_EQ((*event)["pinned_by"], "alice");
  EXPECT_TRUE(event->contains("seq")) << "a pin is a conversation event";
  ASSERT_EQ(alice.command({{"type", "pin.add"}, {"message_id", id_of(m2)}})["type"], "ack");
  auto again = alice.command({{"type", "pin.add"}, {"message_id", id_of(m2)}});
  EXPECT_EQ(again["result"].as_object()["changed"], false);

  auto pins = bob.command({{"type", "pins"}, {"conversation_id", c}});
  ASSERT_EQ(pins["type"], "ack") << json::serialize(pins);
  auto list = pins["result"].as_object()["pins"].as_array();
  ASSERT_EQ(list.size(), 2u);
  EXPECT_EQ(list[0].as_object().at("message_id"), id_of(m2)) << "newest first";
  EXPECT_EQ(list[0].as_object().at("pinned_by"), "alice");
  EXPECT_TRUE(list[0].as_object().at("pinned_at").as_int64() > 0);
  EXPECT_EQ(list[1].as_object().at("text"), "first");

  auto rest = http_request(host.port(), "GET", "/conversations/" + std::to_string(c) + "/pins", "", token_for("bob"));
  EXPECT_EQ(rest.status, 200);
  EXPECT_EQ(rest.json().at("pins").as_array().size(), 2u);
  auto history = bob.command({{"type", "history"}, {"conversation_id", c}});
  int decorated = 0;
  for (const auto& e : history["result"].as_object()["events"].as_array()) {
    if (e.as_object().at("type") == "message.new" && e.as_object().at("message").as_object().contains("pinned")) ++decorated;
  }
  EXPECT_EQ(decorated, 2) << "history marks pinned messages";
  EXPECT_EQ(http_request(host.port(), "DELETE", "/conversations/" + std::to_string(c) + "/pins/" + std::to_string(id_of(m1)), "",
                         token_for("alice")).status, 200);
  ASSERT_TRUE(bob.next_of("pin.remove"));
}

TEST(Pins, PermissionsAndTheLimit) {
  HostProcess host({.features = {}, .feature_config = "[[features]]\nplugin = \"feature-pins\"\n[features.config]\nmax_pins = 2\n"});
  WsClient alice(host.port(), token_for("alice")), carol(host.port(), token_for("carol")), mallory(host.port(), token_for("mallory"));
  auto c = group(alice, {"carol"});
  auto by_alice = message(alice, c, "alice's");
  auto by_carol = message(carol, c, "carol's");
  EXPECT_EQ(carol.command({{"type", "pin.add"}, {"message_id", id_of(by_alice)}})["code"], "forbidden") << "members may not";
  EXPECT_EQ(carol.command({{"type", "pin.add"}, {"message_id", id_of(by_carol)}})["type"], "ack") << "authors may";
  EXPECT_EQ(mallory.command({{"type", "pin.add"}, {"message_id", id_of(by_carol)}})["code"], "forbidden");
  EXPECT_EQ(mallory.command({{"type", "pins"}, {"conversation_id", c}})["code"], "forbidden");
  EXPECT_EQ(alice.command({{"type", "pin.add"}, {"message_id", id_of(by_alice)}})["type"], "ack");
  auto third = message(alice, c, "third");
  EXPECT_EQ(alice.command({{"type", "pin.add"}, {"message_id", id_of(third)}})["code"], "limit_reached");
  EXPECT_EQ(alice.command({{"type", "pin.add"}, {"message_id", 987654}})["code"], "not_found");
  EXPECT_EQ(http_request(host.port(), "POST", "/conversations/" + std::to_string(c) + "/pins",
                         R"({"message_id":)" + std::to_string(id_of(third)) + "}", token_for("alice")).status, 409);
}

TEST(Pins, APinMadeWhileOfflineArrivesOnResumeAndSurvivesARestart) {
  HostProcess host;
  std::int64_t c, m;
  std::string epoch;
  std::int64_t position;
  {
    WsClient alice(host.port(), token_for("alice"));
    auto created = alice.command({{"type", "conversation.create"}, {"kind", "group"}, {"members", json::array{"bob"}}});
    c = created["result"].as_object()["conversation"].as_object()["id"].as_int64();
    epoch = std::string(created["result"].as_object()["conversation"].as_object()["epoch"].as_string());
    auto sent = message(alice, c, "pin me");
    m = id_of(sent);
    position = sent.at("seq").as_int64();
    ASSERT_EQ(alice.command({{"type", "pin.add"}, {"message_id", m}})["type"], "ack");  // bob is offline
  }
  host.restart();
  WsClient bob(host.port(), token_for("bob"));
  bob.command({{"type", "subscribe"}, {"positions", json::array{json::object{{"conversation_id", c}, {"epoch", epoch}, {"seq", position}}}}});
  auto pin = bob.next(5s);
  ASSERT_TRUE(pin);
  EXPECT_EQ((*pin)["type"], "pin.add");
  EXPECT_EQ((*pin)["message_id"], m);
  auto resumed = bob.next_of("resume");
  ASSERT_TRUE(resumed);
  EXPECT_EQ((*resumed)["recovered"], true);
  auto pins = bob.command({{"type", "pins"}, {"conversation_id", c}});
  EXPECT_EQ(pins["result"].as_object()["pins"].as_array().size(), 1u) << "pins survive a restart";
}

TEST(Pins, DeletingAPinnedMessageUnpinsIt) {
  HostProcess host;
  WsClient alice(host.port(), token_for("alice")), bob(host.port(), token_for("bob"));
  auto c = group(alice, {"bob"});
  auto m = message(alice, c, "soon gone");
  ASSERT_EQ(alice.command({{"type", "pin.add"}, {"message_id", id_of(m)}})["type"], "ack");
  ASSERT_EQ(alice.command({{"type", "message.delete"}, {"message_id", id_of(m)}})["type"], "ack");
  auto unpinned = bob.next_of("pin.remove");
  ASSERT_TRUE(unpinned);
  EXPECT_EQ((*unpinned)["message_id"], id_of(m));
  EXPECT_TRUE(bob.command({{"type", "pins"}, {"conversation_id", c}})["result"].as_object()["pins"].as_array().empty());
}

}  // namespace
}  // namespace switchboard::testing
