// feature-receipts end to end: the real host loading the plugin from its TOML.
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <chrono>
#include <optional>

#include "support/chat_helpers.hpp"
#include "support/host_process.hpp"
#include "support/ws_client.hpp"

namespace switchboard::testing {
namespace {

namespace json = boost::json;
using namespace std::chrono_literals;

std::int64_t unread_in(WsClient& c, std::int64_t conversation) {
  auto r = c.command({{"type", "unread"}});
  EXPECT_EQ(r["type"], "ack") << json::serialize(r);
  for (const auto& item : r["result"].as_object()["conversations"].as_array()) {
    if (item.as_object().at("conversation_id") == conversation) return item.as_object().at("unread").as_int64();
  }
  return -1;
}

// Whether `who` gets an unread.update of `conversation` carrying `unread`
// (earlier pushes of it are skipped), within 5 s of the previous one.
::testing::AssertionResult push_to(WsClient& who, std::int64_t conversation, std::int64_t unread) {
  std::optional<json::object> last;
  while (auto pushed = who.next_of("unread.update", std::chrono::milliseconds(5000))) {
    if ((*pushed)["conversation_id"] != conversation) continue;
    last = pushed;
    if ((*pushed)["unread"] == unread) return ::testing::AssertionSuccess();
  }
  return ::testing::AssertionFailure() << "last push: " << (last ? json::serialize(*last) : "none");
}

TEST(Receipts, UnreadCountsFollowMessagesFromOthersAndReads) {
  HostProcess host;
  WsClient alice(host.port(), token_for("alice")), bob(host.port(), token_for("bob"));
  auto c = group(alice, {"bob"});
  message(alice, c, "one");
  message(alice, c, "two");
  auto three = message(alice, c, "three");
  message(bob, c, "bob's own");
  EXPECT_EQ(unread_in(bob, c), 3) << "messages from others, not one's own";
  EXPECT_EQ(unread_in(alice, c), 1);
  auto pushed = bob.next_of("unread.update");
  ASSERT_TRUE(pushed);
  EXPECT_EQ((*pushed)["conversation_id"], c);

  auto read = bob.command({{"type", "read"}, {"conversation_id", c}, {"seq", three.at("seq")}});
  ASSERT_EQ(read["type"], "ack") << json::serialize(read);
  EXPECT_EQ(read["result"].as_object()["unread"], 0);
  auto receipt = alice.next_of("receipt.update");
  ASSERT_TRUE(receipt);
  EXPECT_EQ((*receipt)["user_id"], "bob");
  EXPECT_EQ((*receipt)["seq"], three.at("seq"));

  auto back = bob.command({{"type", "read"}, {"conversation_id", c}, {"seq", 1}});
  EXPECT_EQ(back["result"].as_object()["seq"], three.at("seq")) << "receipts never move backwards";
  EXPECT_EQ(back["result"].as_object()["changed"], false);

  message(alice, c, "four");
  auto bumped = bob.next_of("unread.update");
  while (bumped && (*bumped)["unread"] != 1) bumped = bob.next_of("unread.update");
  ASSERT_TRUE(bumped) << "a new message pushes the new unread count";

  auto rest = http_request(host.port(), "GET", "/conversations/unread", "", token_for("bob"));
  ASSERT_EQ(rest.status, 200) << rest.body;
  auto posted = http_request(host.port(), "POST", "/conversations/" + std::to_string(c) + "/read", R"({"seq":100000})", token_for("bob"));
  ASSERT_EQ(posted.status, 200) << posted.body;
  EXPECT_EQ(posted.json().at("unread"), 0);
  EXPECT_EQ(http_request(host.port(), "POST", "/conversations/" + std::to_string(c) + "/read", R"({"seq":1})", token_for("mallory")).status, 403);
}

// A burst of messages costs each member one count and one push per
// interval, not one per message — and the push carries the whole burst.
TEST(Receipts, UnreadPushesAreCoalescedPerInterval) {
  HostProcess host;  // unread_push_interval_ms: 1000 (the default)
  WsClient alice(host.port(), token_for("alice")), bob(host.port(), token_for("bob"));
  auto c = group(alice, {"bob"});
  constexpr int kBurst = 20;
  auto started = std::chrono::steady_clock::now();
  for (int i = 0; i < kBurst; ++i) message(alice, c, "burst " + std::to_string(i));
  auto sent_in = std::chrono::steady_clock::now() - started;
  ASSERT_LT(sent_in, std::chrono::milliseconds(900)) << "the burst must fit in one interval for this test to mean anything";

  int pushes = 0;
  std::optional<json::object> last;
  while (auto pushed = bob.next_of("unread.update", std::chrono::milliseconds(3000))) {
    if ((*pushed)["conversation_id"] != c) continue;
    ++pushes;
    last = pushed;
    if ((*pushed)["unread"] == kBurst) break;
  }
  ASSERT_TRUE(last) << "no unread.update reached bob";
  EXPECT_EQ((*last)["unread"], kBurst) << json::serialize(*last);
  EXPECT_LE(pushes, 2) << "a burst within one interval is at most two pushes (it may straddle a boundary)";
  EXPECT_FALSE(alice.next_of("unread.update", std::chrono::milliseconds(1500)))
      << "a member whose own messages are the only new ones gets no push";
}

// A push is a frame to one member: it waits up to the batch window
// ([chat] presence_batch_ms) for other frames to that client and leaves
// with the first of them, just before it, so a busy member's pushes cost no
// write of their own; a quiet member gets it when the window ends.
TEST(Receipts, APushWaitsForTheBatchWindowOrLeavesWithTheNextFrame) {
  HostProcess host({.chat = "presence_batch_ms = 5000\n",
                    .features = {},
                    .feature_config = "[[features]]\nplugin = \"feature-receipts\"\n"
                                      "[features.config]\nunread_push_interval_ms = 100\n"});
  WsClient alice(host.port(), token_for("alice")), bob(host.port(), token_for("bob"));
  auto c = group(alice, {"bob"});
  message(alice, c, "one");
  ASSERT_TRUE(bob.next_of("message.new"));
  EXPECT_TRUE(bob.silent_for(1500ms)) << "the push did not wait for the batch window";
  message(alice, c, "two");
  auto first = bob.next(4000ms);
  ASSERT_TRUE(first) << "the push waited for the window although a message was written";
  EXPECT_EQ((*first)["type"], "unread.update")
      << "the push did not leave with the message (or was not counted within 1.5 s): " << json::serialize(*first);
  EXPECT_EQ((*first)["unread"], 1);
  auto second = bob.next(4000ms);
  ASSERT_TRUE(second);
  EXPECT_EQ((*second)["type"], "message.new");
  auto later = bob.next_of("unread.update", 15s);
  ASSERT_TRUE(later) << "the next push did not come when the window ended";
  EXPECT_EQ((*later)["unread"], 2);
}

// Pushes count only what is new since the last push, yet stay exact: a
// deleted message leaves the count, a read resets it.
TEST(Receipts, PushedCountsStayExactAcrossDeletesAndReads) {
  HostProcess host;
  WsClient alice(host.port(), token_for("alice")), bob(host.port(), token_for("bob"));
  auto c = group(alice, {"bob"});
  auto push_with = [&](std::int64_t unread) {
    while (auto pushed = bob.next_of("unread.update", std::chrono::milliseconds(5000))) {
      if ((*pushed)["conversation_id"] == c && (*pushed)["unread"] == unread) return true;
    }
    return false;
  };
  auto one = message(alice, c, "one");
  auto two = message(alice, c, "two");
  message(alice, c, "three");
  ASSERT_TRUE(push_with(3));
  auto deleted = alice.command({{"type", "message.delete"}, {"message_id", two.at("id")}});
  ASSERT_EQ(deleted["type"], "ack") << json::serialize(deleted);
  message(alice, c, "four");
  EXPECT_TRUE(push_with(3)) << "3 - the deleted one + the new one";
  // A delete of an already counted message right after the interval's last
  // message: the push must not count the deleted one.
  message(alice, c, "four-b");
  auto gone = alice.command({{"type", "message.delete"}, {"message_id", one.at("id")}});
  ASSERT_EQ(gone["type"], "ack") << json::serialize(gone);
  EXPECT_TRUE(push_with(3)) << "3 + four-b - one";
  message(bob, c, "bob's own");
  message(alice, c, "five");
  EXPECT_TRUE(push_with(4)) << "bob's own message is not unread for him";
  auto five = message(alice, c, "six");
  ASSERT_EQ(bob.command({{"type", "read"}, {"conversation_id", c}, {"seq", five.at("seq")}})["type"], "ack");
  message(alice, c, "seven");
  EXPECT_TRUE(push_with(1)) << "after a read, only what came since";
  EXPECT_EQ(unread_in(bob, c), 1) << "the pushed count agrees with the counted one";
}

// Interval after interval, each member's pushed count grows by the others'
// messages of that interval only (the plugin reads the interval's events
// once for everyone instead of counting each member in storage).
TEST(Receipts, PushedCountsGrowByEachIntervalsMessagesFromOthers) {
  HostProcess host;
  WsClient alice(host.port(), token_for("alice")), bob(host.port(), token_for("bob")),
      carol(host.port(), token_for("carol"));
  auto c = group(alice, {"bob", "carol"});
  message(alice, c, "a1");
  message(alice, c, "a2");
  ASSERT_TRUE(push_to(bob, c, 2));
  ASSERT_TRUE(push_to(carol, c, 2));
  message(alice, c, "a3");
  message(carol, c, "c1");
  message(carol, c, "c2");
  EXPECT_TRUE(push_to(bob, c, 5));
  EXPECT_TRUE(push_to(carol, c, 3)) << "her own two are not unread for her";
  EXPECT_TRUE(push_to(alice, c, 2)) << "carol's two";
  message(bob, c, "b1");
  EXPECT_TRUE(push_to(alice, c, 3));
  EXPECT_TRUE(push_to(carol, c, 4));
  EXPECT_EQ(unread_in(bob, c), 5) << "the pushed count agrees with the counted one";
  EXPECT_EQ(unread_in(carol, c), 4);
  EXPECT_EQ(unread_in(alice, c), 3);
}

// Between pushes the plugin keeps each conversation's members from its
// last count; a member added since must be counted at the next push all the
// same.
TEST(Receipts, AMemberAddedBetweenPushesGetsTheNextOne) {
  HostProcess host;
  WsClient alice(host.port(), token_for("alice")), bob(host.port(), token_for("bob")),
      carol(host.port(), token_for("carol"));
  auto c = group(alice, {"bob"});
  message(alice, c, "a1");
  message(alice, c, "a2");
  ASSERT_TRUE(push_to(bob, c, 2));
  message(alice, c, "a3");
  ASSERT_TRUE(push_to(bob, c, 3)) << "a second push from what the first one kept";
  auto added = alice.command({{"type", "member.add"}, {"conversation_id", c}, {"user_id", "carol"}});
  ASSERT_EQ(added["type"], "ack") << json::serialize(added);
  message(alice, c, "a4");
  EXPECT_TRUE(push_to(bob, c, 4));
  EXPECT_TRUE(push_to(carol, c, 4)) << "carol has read nothing: all of alice's messages";
  EXPECT_EQ(unread_in(carol, c), 4) << "the pushed count agrees with the counted one";
}

TEST(Receipts, ReadPositionsSurviveARestart) {
  HostProcess host;
  std::int64_t c;
  {
    WsClient alice(host.port(), token_for("alice")), bob(host.port(), token_for("bob"));
    c = group(alice, {"bob"});
    message(alice, c, "a");
    auto b = message(alice, c, "b");
    message(alice, c, "c");
    ASSERT_EQ(bob.command({{"type", "read"}, {"conversation_id", c}, {"seq", b.at("seq")}})["type"], "ack");
  }
  host.restart();
  WsClient bob(host.port(), token_for("bob"));
  EXPECT_EQ(unread_in(bob, c), 1);
}

}  // namespace
}  // namespace switchboard::testing
