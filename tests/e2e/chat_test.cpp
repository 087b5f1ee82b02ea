// The chat core end to end: the real switchboard binary, real sockets, a
// real Beast WebSocket client.
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <signal.h>

#include <thread>

#include "support/chat_helpers.hpp"
#include "support/host_process.hpp"
#include "support/ws_client.hpp"

namespace switchboard::testing {
namespace {

namespace json = boost::json;

class Chat : public ::testing::Test {
 protected:
  HostProcess host;
  std::uint16_t port() { return host.port(); }
};

TEST_F(Chat, TwoUsersExchangeMessagesBothWays) {
  WsClient alice(port(), token_for("alice")), bob(port(), token_for("bob"));
  EXPECT_EQ(alice.hello().at("user_id"), "alice");
  auto c = conversation_of(alice, "group", {"bob"});
  ASSERT_TRUE(bob.next_of("conversation.create"));

  auto sent = send(alice, id_of(c), "hello bob");
  ASSERT_EQ(sent["type"], "ack") << json::serialize(sent);
  auto at_bob = bob.next_of("message.new");
  ASSERT_TRUE(at_bob);
  EXPECT_EQ((*at_bob)["message"].as_object()["text"], "hello bob");
  EXPECT_EQ((*at_bob)["message"].as_object()["author"], "alice");
  EXPECT_EQ((*at_bob)["conversation_id"], id_of(c));
  EXPECT_EQ((*at_bob)["seq"], sent["result"].as_object()["seq"]);

  ASSERT_EQ(send(bob, id_of(c), "hi alice")["type"], "ack");
  auto at_alice = alice.next_of("message.new");
  ASSERT_TRUE(at_alice);
  // Alice's own message comes back to her too (every device of hers sees it).
  EXPECT_EQ((*at_alice)["message"].as_object()["text"], "hello bob");
  at_alice = alice.next_of("message.new");
  ASSERT_TRUE(at_alice);
  EXPECT_EQ((*at_alice)["message"].as_object()["text"], "hi alice");
}

TEST_F(Chat, ARetriedSendReturnsTheOriginalAndBroadcastsNothingNew) {
  WsClient alice(port(), token_for("alice")), bob(port(), token_for("bob"));
  auto c = conversation_of(alice, "group", {"bob"});
  auto first = send(alice, id_of(c), "once", "key-1");
  auto again = send(alice, id_of(c), "once", "key-1");
  ASSERT_EQ(again["type"], "ack");
  EXPECT_EQ(again["result"].as_object()["duplicate"], true);
  EXPECT_EQ(again["result"].as_object()["message"].as_object()["id"], first["result"].as_object()["message"].as_object()["id"]);
  ASSERT_TRUE(bob.next_of("message.new"));
  EXPECT_EQ(send(bob, id_of(c), "marker")["type"], "ack");
  auto next = bob.next_of("message.new");
  ASSERT_TRUE(next);
  EXPECT_EQ((*next)["message"].as_object()["text"], "marker") << "the retry was broadcast again";
}

TEST_F(Chat, EditAndDeleteReachTheOtherMember) {
  WsClient alice(port(), token_for("alice")), bob(port(), token_for("bob"));
  auto c = conversation_of(alice, "group", {"bob"});
  auto id = send(alice, id_of(c), "draft")["result"].as_object()["message"].as_object()["id"].as_int64();
  ASSERT_TRUE(bob.next_of("message.new"));

  EXPECT_EQ(bob.command({{"type", "message.edit"}, {"message_id", id}, {"text", "mine now"}})["code"], "forbidden");
  ASSERT_EQ(alice.command({{"type", "message.edit"}, {"message_id", id}, {"text", "final"}})["type"], "ack");
  auto edit = bob.next_of("message.edit");
  ASSERT_TRUE(edit);
  EXPECT_EQ((*edit)["message"].as_object()["text"], "final");

  EXPECT_EQ(bob.command({{"type", "message.delete"}, {"message_id", id}})["code"], "forbidden");
  ASSERT_EQ(alice.command({{"type", "message.delete"}, {"message_id", id}})["type"], "ack");
  auto del = bob.next_of("message.delete");
  ASSERT_TRUE(del);
  EXPECT_EQ((*del)["message"].as_object()["deleted"], true);
  EXPECT_EQ((*del)["message"].as_object()["text"], "");

  auto history = bob.command({{"type", "history"}, {"conversation_id", id_of(c)}});
  for (const auto& e : history["result"].as_object()["events"].as_array()) {
    if (auto* m = e.as_object().if_contains("message")) {
      EXPECT_EQ(m->as_object().at("text"), "") << "deleted content is still in history";
    }
  }
  EXPECT_EQ(alice.command({{"type", "message.edit"}, {"message_id", 999999}, {"text", "x"}})["code"], "not_found");
}

TEST_F(Chat, ResumeDeliversExactlyWhatWasMissedThenRecovered) {
  WsClient alice(port(), token_for("alice"));
  auto bob = std::make_unique<WsClient>(port(), token_for("bob"));
  auto c = conversation_of(alice, "group", {"bob"});
  auto first = send(alice, id_of(c), "before");
  auto seen = bob->next_of("message.new");
  ASSERT_TRUE(seen);
  std::string epoch(c.at("epoch").as_string());
  std::int64_t position = (*seen)["seq"].as_int64();
  bob.reset();  // bob drops

  for (int i = 1; i <= 3; ++i) ASSERT_EQ(send(alice, id_of(c), "missed " + std::to_string(i))["type"], "ack");
  auto mid = first["result"].as_object()["message"].as_object()["id"].as_int64();
  ASSERT_EQ(alice.command({{"type", "reaction.add"}, {"message_id", mid}, {"emoji", "👍"}})["type"], "ack");

  WsClient back(port(), token_for("bob"));
  auto ack = back.command({{"type", "subscribe"},
                           {"positions", json::array{json::object{{"conversation_id", id_of(c)}, {"epoch", epoch}, {"seq", position}}}}});
  ASSERT_EQ(ack["type"], "ack") << json::serialize(ack);
  std::vector<json::object> got;
  for (;;) {
    auto f = back.next(5s);
    ASSERT_TRUE(f) << "no resume frame";
    if (type_of(*f) == "resume") {
      EXPECT_EQ((*f)["recovered"], true);
      EXPECT_EQ((*f)["epoch"], epoch.c_str());
      break;
    }
    got.push_back(*f);
  }
  ASSERT_EQ(got.size(), 4u) << "exactly the four missed events";
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(type_of(got[static_cast<std::size_t>(i)]), "message.new");
    EXPECT_EQ(got[static_cast<std::size_t>(i)]["message"].as_object()["text"], ("missed " + std::to_string(i + 1)).c_str());
  }
  EXPECT_EQ(type_of(got[3]), "reaction.add");
  EXPECT_EQ(got[3]["emoji"], "👍");
  for (std::size_t i = 0; i < got.size(); ++i) EXPECT_EQ(got[i]["seq"].as_int64(), position + 1 + static_cast<std::int64_t>(i));
}

TEST_F(Chat, ResumeWorksAfterTheHostRestarts) {
  std::int64_t conversation, position;
  std::string epoch;
  {
    WsClient alice(port(), token_for("alice"));
    auto c = conversation_of(alice, "group", {"bob"});
    conversation = id_of(c);
    epoch = std::string(c.at("epoch").as_string());
    position = send(alice, id_of(c), "one")["result"].as_object()["seq"].as_int64();
    send(alice, id_of(c), "two");
  }
  host.restart();
  WsClient bob(port(), token_for("bob"));
  auto ack = bob.command({{"type", "subscribe"},
                          {"positions", json::array{json::object{{"conversation_id", conversation}, {"epoch", epoch}, {"seq", position}}}}});
  ASSERT_EQ(ack["type"], "ack");
  auto m = bob.next_of("message.new");
  ASSERT_TRUE(m);
  EXPECT_EQ((*m)["message"].as_object()["text"], "two");
  auto r = bob.next_of("resume");
  ASSERT_TRUE(r);
  EXPECT_EQ((*r)["recovered"], true);
}

TEST_F(Chat, AStaleEpochOrAFutureSeqIsNotRecovered) {
  WsClient alice(port(), token_for("alice"));
  auto c = conversation_of(alice, "group", {});
  send(alice, id_of(c), "x");
  auto ack = alice.command({{"type", "subscribe"},
                            {"positions", json::array{json::object{{"conversation_id", id_of(c)}, {"epoch", "stale"}, {"seq", 1}},
                                                      json::object{{"conversation_id", id_of(c)}, {"epoch", c.at("epoch")}, {"seq", 99}}}}});
  ASSERT_EQ(ack["type"], "ack");
  auto r1 = alice.next_of("resume");
  ASSERT_TRUE(r1);
  EXPECT_EQ((*r1)["recovered"], false);
  EXPECT_EQ((*r1)["epoch"], c.at("epoch"));
  auto r2 = alice.next_of("resume");
  ASSERT_TRUE(r2);
  EXPECT_EQ((*r2)["recovered"], false);
}

TEST(ChatResumeWindow, AGapLargerThanTheWindowIsNotRecovered) {
  HostProcess host({.chat = "resume_window = 3\n"});
  WsClient alice(host.port(), token_for("alice"));
  auto c = conversation_of(alice, "group", {});
  for (int i = 0; i < 5; ++i) send(alice, id_of(c), "m");
  alice.drain();
  alice.command({{"type", "subscribe"}, {"positions", json::array{json::object{{"conversation_id", id_of(c)}, {"epoch", c.at("epoch")}, {"seq", 1}}}}});
  auto first = alice.next(5s);
  ASSERT_TRUE(first);
  EXPECT_EQ(type_of(*first), "resume") << "no partial replay before recovered:false";
  EXPECT_EQ((*first)["recovered"], false);
}

TEST_F(Chat, MalformedAndIllTypedCommandsGetClearErrorsAndTheConnectionStays) {
  WsClient alice(port(), token_for("alice"));
  alice.send("{this is not json");
  auto e = alice.next_of("error");
  ASSERT_TRUE(e);
  EXPECT_EQ((*e)["code"], "bad_request");
  EXPECT_EQ(alice.command({{"type", "no.such.thing"}})["code"], "unknown_type");
  auto missing = alice.command({{"type", "message.send"}, {"text", "x"}});
  EXPECT_EQ(missing["code"], "bad_request");
  EXPECT_NE(std::string(missing["message"].as_string()).find("conversation_id"), std::string::npos);
  auto typed = alice.command({{"type", "message.send"}, {"conversation_id", "abc"}, {"text", "x"}});
  EXPECT_EQ(typed["code"], "bad_request");
  EXPECT_NE(std::string(typed["message"].as_string()).find("conversation_id"), std::string::npos);
  auto c = conversation_of(alice, "group", {});
  auto big = send(alice, id_of(c), std::string(9000, 'x'));
  EXPECT_EQ(big["code"], "too_large");
  auto att = alice.command({{"type", "message.send"}, {"conversation_id", id_of(c)}, {"text", "x"},
                            {"attachments", json::array{json::object{{"file_name", "a.png"}, {"colour", "red"}}}}});
  EXPECT_EQ(att["code"], "bad_request");
  EXPECT_NE(std::string(att["message"].as_string()).find("attachments[0].colour"), std::string::npos);
  EXPECT_EQ(alice.command({{"type", "ping"}})["type"], "ack") << "still serving";
}

TEST_F(Chat, AttachmentsAndRepliesAreKept) {
  WsClient alice(port(), token_for("alice"));
  auto c = conversation_of(alice, "group", {});
  auto q = send(alice, id_of(c), "question")["result"].as_object()["message"].as_object()["id"].as_int64();
  json::array attachments{json::object{{"file_name", "cat.jpg"}, {"mime_type", "image/jpeg"}, {"size", 1234},
                                       {"url", "https://cdn/cat.jpg"}, {"thumbnail_url", "https://cdn/t.jpg"},
                                       {"width", 640}, {"height", 480}}};
  auto r = alice.command({{"type", "message.send"}, {"conversation_id", id_of(c)}, {"text", "answer"},
                          {"reply_to", q}, {"attachments", attachments}});
  ASSERT_EQ(r["type"], "ack") << json::serialize(r);
  auto m = r["result"].as_object()["message"].as_object();
  EXPECT_EQ(m["reply_to"], q);
  EXPECT_EQ(m["attachments"], attachments);
}

TEST_F(Chat, ProtocolViolationsCloseWithTheRightCode) {
  {
    WsClient c(port(), token_for("alice"));
    c.send(std::string(70 * 1024, 'x'));
    EXPECT_EQ(c.closed(), 1009);
  }
  {
    WsClient c(port(), token_for("alice"));
    c.send(std::string("bad \xff\xfe utf8"));
    EXPECT_EQ(c.closed(), 1007);
  }
  {
    WsClient c(port(), token_for("alice"));
    c.send_binary("\x01\x02");
    EXPECT_EQ(c.closed(), 1003);
  }
  WsClient still(port(), token_for("bob"));
  EXPECT_EQ(still.command({{"type", "ping"}})["type"], "ack");
}

TEST(ChatRateLimit, TooManyCommandsAreRateLimited) {
  HostProcess host({.server = "commands_per_second = 5\ncommand_burst = 5\n"});
  WsClient alice(host.port(), token_for("alice"));
  // Sent back to back, so the bucket barely refills while they arrive.
  for (int i = 0; i < 20; ++i) alice.send_json(json::object{{"id", i}, {"type", "ping"}});
  int acked = 0, limited = 0;
  for (int answers = 0; answers < 20; ++answers) {
    auto f = alice.next(10s);
    ASSERT_TRUE(f) << "only " << answers << " of 20 commands were answered";
    if ((*f)["type"] == "ack") ++acked;
    if ((*f)["type"] == "error" && (*f)["code"] == "rate_limited") ++limited;
  }
  EXPECT_EQ(acked + limited, 20) << "each command gets exactly one answer";
  EXPECT_GE(acked, 5) << "the burst is allowed";
  EXPECT_GE(limited, 10);
}

// The value of a Prometheus metric on the host, or -1.
long metric(std::uint16_t port, const std::string& name) {
  auto body = http_request(port, "GET", "/metrics").body;
  auto at = body.find("\n" + name + " ");
  if (at == std::string::npos) return -1;
  return std::stol(body.substr(at + name.size() + 2));
}

TEST(ChatSlowConsumer, ASlowReaderIsClosedWith1008AndOthersAreUnaffected) {
  // The default 1 MiB queue: a reader keeping up absorbs bursts, a stalled one fills it.
  // The sender is a backend posting as fast as it can: no REST rate limit here.
  HostOptions options;
  options.server = "rest_requests_per_second = 1000000\nrest_burst = 1000000\n";
  HostProcess host(options);
  auto alice = token_for("alice");
  auto created = http_request(host.port(), "POST", "/conversations", R"({"kind":"group","members":["bob","carol"]})", alice);
  ASSERT_EQ(created.status, 201);
  auto id = created.json().at("conversation").at("id").as_int64();
  WsClient carol(host.port(), token_for("carol"));
  WsClient::Options stalled;
  stalled.read = false;
  stalled.raw = true;
  stalled.receive_buffer = 4096;
  WsClient bob(host.port(), token_for("bob"), stalled);
  ASSERT_TRUE(carol.next_of("presence.update"));  // bob's session is open and subscribed

  // 14 MB over REST: more than the socket buffers and bob's 1 MiB queue.
  constexpr int kMessages = 2000;
  std::string body = R"({"text":")" + std::string(7000, 'y') + R"("})";
  std::thread sender([&] {
    for (int i = 0; i < kMessages; ++i) {
      http_request(host.port(), "POST", "/conversations/" + std::to_string(id) + "/messages", body, alice);
    }
  });
  // As soon as the server gives up on bob, bob reads: after what was already
  // in flight, he must find the 1008 close frame.
  auto deadline = std::chrono::steady_clock::now() + 60s;
  while (metric(host.port(), "switchboard_slow_consumer_closes_total") < 1) {
    ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "the stalled reader was never closed";
    std::this_thread::sleep_for(20ms);
  }
  EXPECT_EQ(bob.closed(30s), 1008);
  int received = 0;
  while (received < kMessages) {
    if (!carol.next_of("message.new", 30s)) break;
    ++received;
  }
  sender.join();
  EXPECT_EQ(received, kMessages) << "a member keeping up lost messages because of a slow one";
  EXPECT_EQ(metric(host.port(), "switchboard_slow_consumer_closes_total"), 1) << "only the stalled reader is cut";
}

TEST_F(Chat, BadTokensAreRefusedWith401) {
  EXPECT_EQ(upgrade_status(port(), "/ws?token=not.a.token"), 401);
  EXPECT_EQ(upgrade_status(port(), "/ws"), 401);
  EXPECT_EQ(upgrade_status(port(), "/ws?token=" + token_for("alice", std::chrono::seconds(-60))), 401) << "expired";
  // alg none: header {"alg":"none","typ":"JWT"}, payload {"sub":"alice","exp":9999999999}
  EXPECT_EQ(upgrade_status(port(), "/ws?token=eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJzdWIiOiJhbGljZSIsImV4cCI6OTk5OTk5OTk5OX0."), 401);
  EXPECT_EQ(upgrade_status(port(), "/ws?token=" + token_for("alice")), 101);
  EXPECT_EQ(upgrade_status(port(), "/ws", {{"Authorization", "Bearer " + token_for("alice")}}), 101);
  EXPECT_EQ(http_request(port(), "GET", "/conversations").status, 401);
  EXPECT_EQ(http_request(port(), "GET", "/conversations", "", "garbage").status, 401);
}

TEST_F(Chat, NonMembersAreForbiddenAndUnknownThingsAreNotFound) {
  WsClient alice(port(), token_for("alice")), mallory(port(), token_for("mallory"));
  auto c = conversation_of(alice, "group", {});
  send(alice, id_of(c), "secret");
  EXPECT_EQ(send(mallory, id_of(c), "let me in")["code"], "forbidden");
  auto h = mallory.command({{"type", "history"}, {"conversation_id", id_of(c)}});
  EXPECT_EQ(h["code"], "forbidden");
  EXPECT_FALSE(h.contains("result"));
  EXPECT_EQ(mallory.command({{"type", "conversation.get"}, {"conversation_id", id_of(c)}})["code"], "forbidden");
  EXPECT_EQ(mallory.command({{"type", "conversation.join"}, {"conversation_id", id_of(c)}})["code"], "forbidden");
  EXPECT_EQ(mallory.command({{"type", "member.add"}, {"conversation_id", id_of(c)}, {"user_id", "mallory"}})["code"], "forbidden");
  EXPECT_EQ(send(alice, 987654, "nowhere")["code"], "not_found");
  EXPECT_EQ(alice.command({{"type", "message.delete"}, {"message_id", 987654}})["code"], "not_found");
}

TEST_F(Chat, ConversationKindsAndMembership) {
  WsClient alice(port(), token_for("alice")), bob(port(), token_for("bob")), carol(port(), token_for("carol"));
  auto d1 = conversation_of(alice, "direct", {"bob"});
  auto d2 = conversation_of(bob, "direct", {"alice"});
  EXPECT_EQ(id_of(d1), id_of(d2)) << "one direct conversation per pair";
  EXPECT_EQ(alice.command({{"type", "conversation.create"}, {"kind", "direct"}, {"members", json::array{"bob", "carol"}}})["code"], "bad_request");

  auto channel = conversation_of(alice, "channel", {}, "general");
  ASSERT_EQ(carol.command({{"type", "conversation.join"}, {"conversation_id", id_of(channel)}})["type"], "ack");
  auto joined = alice.next_of("member.join");
  ASSERT_TRUE(joined);
  EXPECT_EQ((*joined)["user_id"], "carol");
  // Carol now receives the channel's messages without reconnecting.
  send(alice, id_of(channel), "welcome");
  auto w = carol.next_of("message.new");
  ASSERT_TRUE(w);
  EXPECT_EQ((*w)["message"].as_object()["text"], "welcome");

  auto group = conversation_of(alice, "group", {"bob"});
  EXPECT_EQ(bob.command({{"type", "member.add"}, {"conversation_id", id_of(group)}, {"user_id", "carol"}})["code"], "forbidden");
  EXPECT_EQ(carol.command({{"type", "conversation.join"}, {"conversation_id", id_of(group)}})["code"], "forbidden");
  ASSERT_EQ(alice.command({{"type", "member.role"}, {"conversation_id", id_of(group)}, {"user_id", "bob"}, {"role", "admin"}})["type"], "ack");
  ASSERT_EQ(bob.command({{"type", "member.add"}, {"conversation_id", id_of(group)}, {"user_id", "carol"}})["type"], "ack");
  ASSERT_EQ(bob.command({{"type", "member.remove"}, {"conversation_id", id_of(group)}, {"user_id", "carol"}})["type"], "ack");
  EXPECT_EQ(bob.command({{"type", "member.remove"}, {"conversation_id", id_of(group)}, {"user_id", "alice"}})["code"], "forbidden");

  auto list = carol.command({{"type", "conversation.list"}});
  std::vector<std::int64_t> ids;
  for (const auto& c : list["result"].as_object()["conversations"].as_array()) ids.push_back(c.as_object().at("id").as_int64());
  EXPECT_EQ(ids, std::vector<std::int64_t>{id_of(channel)});
  ASSERT_EQ(carol.command({{"type", "conversation.leave"}, {"conversation_id", id_of(channel)}})["type"], "ack");
  EXPECT_EQ(send(carol, id_of(channel), "still here?")["code"], "forbidden");
}

TEST(ChatPresence, OnlineAndOfflineWithAGracePeriod) {
  HostProcess host({.chat = "presence_grace_seconds = 2\n"});
  WsClient alice(host.port(), token_for("alice"));
  auto c = conversation_of(alice, "group", {"bob"});
  auto bob = std::make_unique<WsClient>(host.port(), token_for("bob"));
  auto online = alice.next_of("presence.update");
  ASSERT_TRUE(online);
  EXPECT_EQ((*online)["user_id"], "bob");
  EXPECT_EQ((*online)["status"], "online");
  auto p = alice.command({{"type", "presence"}, {"conversation_id", id_of(c)}});
  EXPECT_EQ(p["result"].as_object()["online"], (json::array{"alice", "bob"}));

  // A reload inside the grace period does not flap.
  bob.reset();
  bob = std::make_unique<WsClient>(host.port(), token_for("bob"));
  EXPECT_TRUE(alice.silent_for(2500ms)) << "presence flapped on a reload";
  bob.reset();
  auto offline = alice.next_of("presence.update", 10s);
  ASSERT_TRUE(offline);
  EXPECT_EQ((*offline)["status"], "offline");
  p = alice.command({{"type", "presence"}, {"conversation_id", id_of(c)}});
  EXPECT_EQ(p["result"].as_object()["online"], (json::array{"alice"}));
}

TEST(ChatPresence, AnUpdateWaitsForTheBatchWindowOrLeavesWithAnEvent) {
  HostProcess host({.chat = "presence_batch_ms = 5000\n"});
  WsClient alice(host.port(), token_for("alice"));
  auto id = id_of(conversation_of(alice, "group", {"bob", "carol"}));
  ASSERT_TRUE(alice.next_of("conversation.create"));
  alice.drain();
  // Nothing else for alice: bob's update waits for the window, then comes.
  auto bob = std::make_unique<WsClient>(host.port(), token_for("bob"));
  EXPECT_TRUE(alice.silent_for(1000ms)) << "a presence.update did not wait for the batch window";
  auto online = alice.next_of("presence.update", 15s);
  ASSERT_TRUE(online);
  EXPECT_EQ((*online)["user_id"], "bob");
  // carol's update leaves with her message, at once and before it.
  WsClient carol(host.port(), token_for("carol"));
  ASSERT_EQ(send(carol, id, "hi")["type"], "ack");
  auto first = alice.next(4000ms);
  ASSERT_TRUE(first) << "the update waited for the window although an event was written";
  EXPECT_EQ((*first)["type"], "presence.update");
  EXPECT_EQ((*first)["user_id"], "carol");
  auto second = alice.next(4000ms);
  ASSERT_TRUE(second);
  EXPECT_EQ((*second)["type"], "message.new");
}

TEST(ChatPresence, WithNoBatchWindowEachUpdateIsWrittenAtOnce) {
  HostProcess host({.chat = "presence_batch_ms = 0\n"});
  WsClient alice(host.port(), token_for("alice"));
  conversation_of(alice, "group", {"bob", "carol"});
  for (const char* user : {"bob", "carol"}) {
    WsClient other(host.port(), token_for(user));
    auto online = alice.next_of("presence.update", 5s);
    ASSERT_TRUE(online) << user << "'s update was not written at once";
    EXPECT_EQ((*online)["user_id"], user);
  }
}

TEST_F(Chat, RestSendReachesWebSocketMembers) {
  WsClient bob(port(), token_for("bob"));
  auto alice_token = token_for("alice");
  auto created = http_request(port(), "POST", "/conversations", R"({"kind":"group","name":"ops","members":["bob"]})", alice_token);
  ASSERT_EQ(created.status, 201) << created.body;
  auto id = created.json().at("conversation").at("id").as_int64();
  auto sent = http_request(port(), "POST", "/conversations/" + std::to_string(id) + "/messages", R"({"text":"from a backend"})",
                           alice_token, {{"Idempotency-Key", "rest-1"}});
  ASSERT_EQ(sent.status, 201) << sent.body;
  auto m = bob.next_of("message.new");
  ASSERT_TRUE(m);
  EXPECT_EQ((*m)["message"].as_object()["text"], "from a backend");
  auto retry = http_request(port(), "POST", "/conversations/" + std::to_string(id) + "/messages", R"({"text":"from a backend"})",
                            alice_token, {{"Idempotency-Key", "rest-1"}});
  EXPECT_EQ(retry.status, 200);
  EXPECT_EQ(retry.json().at("duplicate"), true);

  auto mid = sent.json().at("message").at("id").as_int64();
  EXPECT_EQ(http_request(port(), "PUT", "/messages/" + std::to_string(mid), R"({"text":"edited"})", alice_token).status, 200);
  ASSERT_TRUE(bob.next_of("message.edit"));
  EXPECT_EQ(http_request(port(), "PUT", "/messages/" + std::to_string(mid), R"({"text":"x"})", token_for("bob")).status, 403);
  auto history = http_request(port(), "GET", "/conversations/" + std::to_string(id) + "/messages?limit=10", "", alice_token);
  ASSERT_EQ(history.status, 200);
  EXPECT_EQ(history.json().at("events").as_array().size(), 3u);
  EXPECT_EQ(http_request(port(), "GET", "/conversations/" + std::to_string(id), "", alice_token).status, 200);
  EXPECT_EQ(http_request(port(), "GET", "/conversations/" + std::to_string(id), "", token_for("mallory")).status, 403);
  EXPECT_EQ(http_request(port(), "GET", "/conversations/424242", "", alice_token).status, 404);
  EXPECT_EQ(http_request(port(), "POST", "/conversations", "not json", alice_token).status, 400);
  EXPECT_EQ(http_request(port(), "DELETE", "/messages/" + std::to_string(mid), "", alice_token).status, 200);
  ASSERT_TRUE(bob.next_of("message.delete"));
  EXPECT_EQ(http_request(port(), "GET", "/nothing/here", "", alice_token).status, 404);
}

TEST_F(Chat, HealthReadinessAndMetrics) {
  EXPECT_EQ(http_request(port(), "GET", "/health").status, 200);
  auto ready = http_request(port(), "GET", "/ready");
  EXPECT_EQ(ready.status, 200);
  EXPECT_EQ(ready.json().at("ready"), true);
  WsClient alice(port(), token_for("alice"));
  auto c = conversation_of(alice, "group", {});
  send(alice, id_of(c), "counted");
  auto metrics = http_request(port(), "GET", "/metrics");
  EXPECT_EQ(metrics.status, 200);
  for (const char* name : {"switchboard_connections 1", "switchboard_messages_persisted_total 1", "switchboard_frames_in_total",
                           "switchboard_frames_out_total", "switchboard_fanout_deliveries_total", "switchboard_queue_drops_total",
                           "switchboard_storage_write_seconds_bucket", "switchboard_bus_publish_seconds_count"}) {
    EXPECT_NE(metrics.body.find(name), std::string::npos) << name << " missing from\n" << metrics.body;
  }
}

TEST(ChatKeepalive, AClientThatNeverAnswersIsClosed) {
  // A 1 s ping and a 4 s idle timeout: a live client's pong has 3 s of slack,
  // so a loaded machine does not make a healthy client look dead.
  HostProcess host({.server = "ping_interval_seconds = 1\nidle_timeout_seconds = 4\n"});
  WsClient::Options silent;
  silent.read = false;
  silent.raw = true;  // reads bytes but never answers a ping
  WsClient live(host.port(), token_for("live"));
  WsClient mute(host.port(), token_for("mute"), silent);
  auto start = std::chrono::steady_clock::now();
  auto code = mute.closed(20s);
  ASSERT_TRUE(code.has_value()) << "a client that never answers was never closed\n" << host.output();
  EXPECT_EQ(*code, 1001);
  EXPECT_GE(std::chrono::steady_clock::now() - start, 3s) << "closed before its idle timeout";
  // A client that answers pings (Beast does) stays, over two more idle periods.
  EXPECT_FALSE(live.closed(8s).has_value());
  EXPECT_EQ(live.command({{"type", "ping"}})["type"], "ack");
}

TEST(ChatShutdown, SigtermClosesSessionsWith1001AndExitsZero) {
  HostProcess host;
  WsClient alice(host.port(), token_for("alice"));
  auto c = conversation_of(alice, "group", {});
  send(alice, id_of(c), "kept");
  auto finished = host.stop(15);
  EXPECT_EQ(finished.exit_code, 0) << finished.output;
  EXPECT_EQ(alice.closed(), 1001);
}

}  // namespace
}  // namespace switchboard::testing

namespace switchboard::testing {
namespace {

// With only reactions in the TOML, the other features' commands and routes
// are gone, and everything else works as before.
TEST(Features, EachRemovedPluginAnswersUnknownTypeAndNothingElseChanges) {
  HostProcess host({.features = {"feature-reactions"}});
  WsClient alice(host.port(), token_for("alice"));
  auto c = group(alice, {"bob"});
  auto m = message(alice, c, "still works");
  for (const char* type : {"pin.add", "pins", "typing.start", "typing.stop", "read", "unread"}) {
    auto r = alice.command({{"type", type}, {"conversation_id", c}, {"message_id", id_of(m)}, {"seq", 1}});
    EXPECT_EQ(r["code"], "unknown_type") << type;
  }
  EXPECT_EQ(http_request(host.port(), "GET", "/conversations/" + std::to_string(c) + "/pins", "", token_for("alice")).status, 404);
  EXPECT_EQ(http_request(host.port(), "GET", "/conversations/unread", "", token_for("alice")).status, 404);
  EXPECT_EQ(alice.command({{"type", "reaction.add"}, {"message_id", id_of(m)}, {"emoji", "👍"}})["type"], "ack");
  EXPECT_EQ(alice.command({{"type", "history"}, {"conversation_id", c}})["type"], "ack");
}

// The shipped example config with reactions only, as an operator would run it.
TEST(ShippedConfigs, ReactionsOnlyAnswersUnknownTypeForTheOtherFeatures) {
  TempDir data;
  Process host({SWITCHBOARD_BIN, "serve", "--config", std::string(SOURCE_DIR) + "/config/reactions-only.toml"},
               {{"PORT", "0"}, {"SWITCHBOARD_DATA", data.path()}, {"JWT_SECRET", kTestSecret}});
  const std::string marker = "listening address=127.0.0.1:";
  ASSERT_TRUE(host.wait_for_output(marker, 30s)) << host.output();
  auto at = host.output().find(marker) + marker.size();
  auto port = static_cast<std::uint16_t>(std::stoi(host.output().substr(at)));
  WsClient alice(port, token_for("alice"));
  auto c = group(alice, {"bob"});
  auto m = message(alice, c, "hi");
  EXPECT_EQ(alice.command({{"type", "reaction.add"}, {"message_id", id_of(m)}, {"emoji", "👍"}})["type"], "ack");
  EXPECT_EQ(alice.command({{"type", "pin.add"}, {"message_id", id_of(m)}})["code"], "unknown_type");
  EXPECT_EQ(alice.command({{"type", "typing.start"}, {"conversation_id", c}})["code"], "unknown_type");
  EXPECT_EQ(alice.command({{"type", "read"}, {"conversation_id", c}, {"seq", 1}})["code"], "unknown_type");
  host.signal(SIGTERM);
  EXPECT_EQ(host.wait(30s).exit_code, 0);
}

TEST(ChatCapacity, ConnectionsBeyondMaxConnectionsAreRefused) {
  HostProcess host({.server = "max_connections = 2\n"});
  WsClient a(host.port(), token_for("a")), b(host.port(), token_for("b"));
  EXPECT_THROW(WsClient(host.port(), token_for("c")), std::runtime_error);
  a.close();
  EXPECT_TRUE(a.closed(5s).has_value());
  // The freed slot is usable again (the count drops when the session ends).
  auto deadline = std::chrono::steady_clock::now() + 10s;
  std::unique_ptr<WsClient> c;
  while (!c && std::chrono::steady_clock::now() < deadline) {
    try {
      c = std::make_unique<WsClient>(host.port(), token_for("c"));
    } catch (const std::runtime_error&) {
      std::this_thread::sleep_for(50ms);
    }
  }
  EXPECT_TRUE(c) << "the slot of a closed connection was never freed";
}

TEST(ChatOrigins, OnlyAllowedOriginsMayUpgrade) {
  HostProcess host({.server = "origins = [\"https://chat.example\"]\n"});
  auto t = token_for("alice");
  EXPECT_EQ(upgrade_status(host.port(), "/ws?token=" + t, {{"Origin", "https://evil.example"}}), 403);
  EXPECT_EQ(upgrade_status(host.port(), "/ws?token=" + t, {{"Origin", "https://chat.example"}}), 101);
}

TEST(ChatTokens, TheTokenCommandMintsWhatTheHostAccepts) {
  HostProcess host;
  auto minted = run({SWITCHBOARD_BIN, "token", "--config", host.config_file(), "--user", "dave", "--ttl", "5m"});
  ASSERT_EQ(minted.exit_code, 0) << minted.output;
  std::string token = minted.output.substr(0, minted.output.find('\n'));
  WsClient dave(host.port(), token);
  EXPECT_EQ(dave.hello().at("user_id"), "dave");
  EXPECT_EQ(run({SWITCHBOARD_BIN, "token", "--config", host.config_file(), "--user", "x", "--ttl", "soon"}).exit_code, 2);
}

}  // namespace
}  // namespace switchboard::testing
