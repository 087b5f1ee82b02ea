// Three real host processes sharing one storage, linked by one bus, with
// real clients spread across them. The shape comes from CLUSTER_SHAPE:
//   nats          bus-nats (a nats-server this test owns) + storage-postgres (DATABASE_URL)
//   sql-postgres  bus-sql + storage-postgres, both through PgBouncer (DATABASE_URL_POOLED)
//   sql-sqlite    bus-sql + storage-sqlite on files shared by the processes
// PostgreSQL and PgBouncer come from tests/servers/with-postgres.sh.
#include <gtest/gtest.h>

#include <atomic>
#include <boost/json.hpp>
#include <cstdlib>
#include <random>
#include <set>
#include <thread>

#include <pqxx/pqxx>

#include "core/bus_wire.hpp"
#include "support/chat_helpers.hpp"
#include "support/host_process.hpp"
#include "support/nats_server.hpp"
#include "support/ws_client.hpp"

namespace switchboard::testing {
namespace {

namespace json = boost::json;
using Clock = std::chrono::steady_clock;

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

std::string shape() { return env("CLUSTER_SHAPE"); }

std::string unique(const std::string& base) {
  static std::mt19937_64 rng{std::random_device{}()};
  return base + std::to_string(rng() % 100000000);
}

constexpr std::chrono::milliseconds kLease{3000};

class Cluster : public ::testing::Test {
 protected:
  void SetUp() override {
    if (shape() == "nats") {
      if (env("DATABASE_URL").empty()) GTEST_SKIP() << "run under tests/servers/with-postgres.sh";
      nats = std::make_unique<NatsServer>();
    } else if (shape() == "sql-postgres") {
      if (env("DATABASE_URL_POOLED").empty()) GTEST_SKIP() << "run under tests/servers/with-postgres.sh";
    } else if (shape() != "sql-sqlite") {
      GTEST_SKIP() << "CLUSTER_SHAPE must be nats, sql-postgres or sql-sqlite";
    }
    for (int i = 0; i < 3; ++i) hosts.push_back(std::make_unique<HostProcess>(options()));
  }

  HostOptions options() {
    HostOptions o;
    o.chat = "presence_grace_seconds = 0\n";
    o.cluster = "presence_heartbeat_ms = 500\npresence_lease_ms = " + std::to_string(kLease.count()) + "\n";
    std::string pg = shape() == "nats" ? env("DATABASE_URL") : env("DATABASE_URL_POOLED");
    if (shape() == "nats") {
      o.bus = "[bus]\nplugin = \"bus-nats\"\n[bus.config]\nurl = \"" + nats->url() +
              "\"\nreconnect_wait_ms = 100\nsubject_prefix = \"" + prefix + "\"\n";
    } else if (shape() == "sql-postgres") {
      o.bus = "[bus]\nplugin = \"bus-sql\"\n[bus.config]\nbackend = \"postgres\"\nurl = \"" + pg +
              "\"\npoll_interval_ms = 50\ntable = \"" + table + "\"\n";
    } else {
      o.bus = "[bus]\nplugin = \"bus-sql\"\n[bus.config]\nbackend = \"sqlite\"\npath = \"" + shared.path() +
              "/bus.db\"\npoll_interval_ms = 50\n";
    }
    if (shape() == "sql-sqlite") {
      o.storage = "[storage]\nplugin = \"storage-sqlite\"\n[storage.config]\npath = \"" + shared.path() +
                  "/switchboard.db\"\n";
    } else {
      o.storage = "[storage]\nplugin = \"storage-postgres\"\n[storage.config]\nurl = \"" + pg + "\"\n";
    }
    return o;
  }

  std::uint16_t port(int host) { return hosts[static_cast<std::size_t>(host)]->port(); }

  std::unique_ptr<WsClient> connect(int host, const std::string& user) {
    return std::make_unique<WsClient>(port(host), token_for(user));
  }

  // Who the `presence` command shows online, asked on `client`'s host.
  std::set<std::string> online(WsClient& client, std::int64_t conversation) {
    auto r = client.command({{"type", "presence"}, {"conversation_id", conversation}});
    std::set<std::string> out;
    if (r["type"] != "ack") return out;
    for (const auto& u : r["result"].as_object()["online"].as_array()) out.emplace(u.as_string());
    return out;
  }

  // Polls `presence` until `check` holds or the deadline passes.
  template <class Check>
  bool presence_becomes(WsClient& client, std::int64_t conversation, Check check, std::chrono::milliseconds deadline) {
    auto until = Clock::now() + deadline;
    while (Clock::now() < until) {
      if (check(online(client, conversation))) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return false;
  }

  bool ready(int host) {
    auto r = http_request(port(host), "GET", "/ready");
    return r.status == 200;
  }

  std::string prefix = unique("t") + ".";
  std::string table = unique("bus_");
  TempDir shared;
  std::unique_ptr<NatsServer> nats;
  std::vector<std::unique_ptr<HostProcess>> hosts;
};

// Every frame of `type` until `count` of them arrived or the deadline passed.
std::vector<json::object> collect(WsClient& c, const std::string& type, std::size_t count,
                                  std::chrono::milliseconds deadline = 20s) {
  std::vector<json::object> out;
  auto until = Clock::now() + deadline;
  while (out.size() < count) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - Clock::now());
    if (left.count() <= 0) break;
    auto f = c.next_of(type, left);
    if (!f) break;
    out.push_back(std::move(*f));
  }
  return out;
}

std::int64_t seq_of(const json::object& f) { return f.at("seq").as_int64(); }

std::string text_of(const json::object& f);

// Every message.new in the conversation's history, seq -> text, page by page.
std::map<std::int64_t, std::string> stored_messages(WsClient& c, std::int64_t conversation) {
  std::map<std::int64_t, std::string> out;
  std::int64_t after = 0;
  for (;;) {
    auto page = c.command({{"type", "history"}, {"conversation_id", conversation}, {"after", after}, {"limit", 200}});
    if (page["type"] != "ack") {
      ADD_FAILURE() << json::serialize(page);
      return out;
    }
    const auto& result = page["result"].as_object();
    for (const auto& e : result.at("events").as_array()) {
      const auto& o = e.as_object();
      after = std::max(after, o.at("seq").as_int64());
      if (o.at("type").as_string() == "message.new") out[o.at("seq").as_int64()] = text_of(o);
    }
    if (!result.at("more").as_bool()) return out;
  }
}
std::string text_of(const json::object& f) {
  return std::string(f.at("message").as_object().at("text").as_string());
}

struct Resumed {
  std::map<std::int64_t, std::string> messages;  // replayed message.new, seq -> text
  std::optional<json::object> resume;            // the closing resume frame
};

// Resumes one conversation from (epoch, seq); what was replayed before the resume frame.
Resumed resume_from(WsClient& c, std::int64_t conversation, const std::string& epoch, std::int64_t seq) {
  c.drain();
  json::array positions{json::object{{"conversation_id", conversation}, {"epoch", epoch}, {"seq", seq}}};
  c.send_json(json::object{{"id", "resume-1"}, {"type", "subscribe"}, {"positions", positions}});
  Resumed out;
  while (auto f = c.next(10s)) {
    std::string type = type_of(*f);
    if (type == "resume") {
      out.resume = std::move(*f);
      break;
    }
    if (type == "message.new" && f->at("conversation_id").as_int64() == conversation) {
      EXPECT_FALSE(out.messages.contains(seq_of(*f))) << "seq " << seq_of(*f) << " replayed twice";
      out.messages[seq_of(*f)] = text_of(*f);
    }
  }
  return out;
}

TEST_F(Cluster, TheShippedConfigOfThisShapeChecksOut) {
  std::map<std::string, std::string> files{{"nats", "cluster-nats.toml"}, {"sql-postgres", "cluster-pg.toml"},
                                           {"sql-sqlite", "local-multiprocess.toml"}};
  std::map<std::string, std::string> vars{{"JWT_SECRET", "a-cluster-wide-secret"}, {"SWITCHBOARD_DATA", shared.path()}};
  if (nats) vars["NATS_URL"] = nats->url();
  if (shape() != "sql-sqlite") vars["DATABASE_URL"] = shape() == "nats" ? env("DATABASE_URL") : env("DATABASE_URL_POOLED");
  auto r = run({SWITCHBOARD_BIN, "check", "--config", std::string(SOURCE_DIR) + "/config/" + files[shape()]}, vars);
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find(": ok (bus "), std::string::npos) << r.output;
}

TEST_F(Cluster, EveryMemberGetsEveryMessageOnceAndInSeqOrder) {
  // Two members on each host; one on each host sends at the same time.
  std::vector<std::string> users;
  std::vector<std::unique_ptr<WsClient>> clients;
  for (int i = 0; i < 6; ++i) {
    users.push_back(unique("u"));
    clients.push_back(connect(i % 3, users.back()));
  }
  auto conversation = group(*clients[0], {users.begin() + 1, users.end()});
  ASSERT_GT(conversation, 0);
  for (auto& c : clients) ASSERT_TRUE(c->next_of("conversation.create", 10s)) << "a member did not join";

  constexpr int kEach = 30;
  std::vector<std::thread> senders;
  std::atomic<int> refused{0};
  for (int s = 0; s < 3; ++s) {
    senders.emplace_back([&, s] {
      for (int i = 0; i < kEach; ++i) {
        auto r = send(*clients[static_cast<std::size_t>(s)], conversation, std::to_string(s) + "/" + std::to_string(i));
        if (r["type"] != "ack") ++refused;
      }
    });
  }
  for (auto& t : senders) t.join();
  ASSERT_EQ(refused.load(), 0);

  std::set<std::string> expected;
  for (int s = 0; s < 3; ++s) {
    for (int i = 0; i < kEach; ++i) expected.insert(std::to_string(s) + "/" + std::to_string(i));
  }
  for (std::size_t u = 0; u < clients.size(); ++u) {
    auto frames = collect(*clients[u], "message.new", 3 * kEach);
    if (frames.size() != 3u * kEach) {
      std::string seen;
      for (const auto& f : frames) seen += std::to_string(seq_of(f)) + " ";
      std::string metrics;
      for (int h = 0; h < 3; ++h) {
        for (const auto& line : lines(http_request(port(h), "GET", "/metrics").body)) {
          if (line.starts_with("switchboard_sequencer") || line.starts_with("switchboard_bus")) {
            metrics += "host " + std::to_string(h) + ": " + line + "\n";
          }
        }
      }
      FAIL() << users[u] << " on host " << u % 3 << " got " << frames.size() << " messages, seqs: " << seen << "\n"
             << metrics;
    }
    std::set<std::string> texts;
    for (std::size_t i = 0; i < frames.size(); ++i) {
      texts.insert(text_of(frames[i]));
      // The conversation.create event is seq 1; messages follow without a gap.
      EXPECT_EQ(seq_of(frames[i]), static_cast<std::int64_t>(i) + 2) << users[u] << " got events out of order";
    }
    EXPECT_EQ(texts, expected) << users[u] << " got duplicates or strangers";
    auto extra = clients[u]->next_of("message.new", 300ms);
    EXPECT_FALSE(extra) << users[u] << " got a message twice";
  }
}

TEST_F(Cluster, EditsReactionsAndTypingCrossHosts) {
  auto alice = connect(0, unique("alice"));
  std::string bob_id = unique("bob"), carol_id = unique("carol");
  auto bob = connect(1, bob_id);
  auto carol = connect(2, carol_id);
  auto conversation = group(*alice, {bob_id, carol_id});
  ASSERT_TRUE(bob->next_of("conversation.create", 10s));
  ASSERT_TRUE(carol->next_of("conversation.create", 10s));

  auto m = message(*alice, conversation, "first draft");
  ASSERT_FALSE(m.empty());
  auto id = m.at("id").as_int64();
  ASSERT_EQ(alice->command({{"type", "message.edit"}, {"message_id", id}, {"text", "final"}})["type"], "ack");
  auto edited = carol->next_of("message.edit", 10s);
  ASSERT_TRUE(edited) << "an edit on host 0 did not reach host 2";
  EXPECT_EQ(edited->at("message").as_object().at("text").as_string(), "final");

  ASSERT_EQ(bob->command({{"type", "reaction.add"}, {"message_id", id}, {"emoji", "👍"}})["type"], "ack");
  auto reaction = alice->next_of("reaction.add", 10s);
  ASSERT_TRUE(reaction) << "a reaction on host 1 did not reach host 0";
  EXPECT_EQ(reaction->at("actor").as_string(), bob_id);

  ASSERT_EQ(carol->command({{"type", "typing.start"}, {"conversation_id", conversation}})["type"], "ack");
  auto typing = alice->next_of("typing.start", 10s);
  ASSERT_TRUE(typing) << "typing on host 2 did not reach host 0";
  EXPECT_EQ(typing->at("user_id").as_string(), carol_id);

  // A frame for one member crosses hosts too: host 0 committed the message
  // and pushes bob's unread count, bob is on host 1.
  auto unread = bob->next_of("unread.update", 10s);
  ASSERT_TRUE(unread) << "an unread count pushed by host 0 did not reach host 1";
  EXPECT_EQ(unread->at("conversation_id").as_int64(), conversation);
}

TEST_F(Cluster, PresenceIsClusterWide) {
  std::string alice_id = unique("alice"), bob_id = unique("bob"), carol_id = unique("carol");
  std::string dave_id = unique("dave");
  auto alice = connect(0, alice_id);
  auto bob = connect(1, bob_id);
  auto conversation = group(*alice, {bob_id, carol_id, dave_id});
  ASSERT_GT(conversation, 0);
  auto carol = connect(2, carol_id);  // asks from host 2
  auto has = [](std::set<std::string> want) {
    return [want](const std::set<std::string>& got) { return got == want; };
  };
  EXPECT_TRUE(presence_becomes(*carol, conversation, has({alice_id, bob_id, carol_id}), 5s))
      << "host 2 does not see users of hosts 0 and 1";

  // dave comes online on host 1: carol, on host 2, is told in their conversation.
  auto dave = connect(1, dave_id);
  bool dave_online = false;
  while (auto f = carol->next_of("presence.update", 10s)) {
    if (f->at("user_id").as_string() == dave_id) {
      EXPECT_EQ(f->at("status").as_string(), "online");
      EXPECT_EQ(f->at("conversation_id").as_int64(), conversation);
      dave_online = true;
      break;
    }
  }
  EXPECT_TRUE(dave_online) << "a user coming online on host 1 was not announced on host 2";
  dave.reset();
  EXPECT_TRUE(presence_becomes(*carol, conversation, has({alice_id, bob_id, carol_id}), 5s));

  // bob also opens a session on host 0; closing the one on host 1 leaves him online.
  auto bob_again = connect(0, bob_id);
  ASSERT_TRUE(presence_becomes(*carol, conversation, has({alice_id, bob_id, carol_id}), 5s));
  bob->close();
  bob.reset();
  std::this_thread::sleep_for(kLease / 3);  // a heartbeat or two: he must not flap offline
  EXPECT_EQ(online(*carol, conversation), (std::set<std::string>{alice_id, bob_id, carol_id}))
      << "bob went offline while still connected to host 0";
  bob_again->close();
  bob_again.reset();
  EXPECT_TRUE(presence_becomes(*carol, conversation, has({alice_id, carol_id}), 5s))
      << "bob stayed online after his last session closed";

  // Others are told too: carol sees a presence.update for bob going offline.
  bool told = false;
  while (auto f = carol->next_of("presence.update", 2s)) {
    if (f->at("user_id").as_string() == bob_id && f->at("status").as_string() == "offline") {
      told = true;
      break;
    }
  }
  EXPECT_TRUE(told);
}

TEST_F(Cluster, ASigkilledHostLosesNothingAndItsUsersGoOfflineAndResumeElsewhere) {
  std::string alice_id = unique("alice"), bob_id = unique("bob"), carol_id = unique("carol");
  auto alice = connect(0, alice_id);
  auto bob = connect(1, bob_id);
  auto carol = connect(2, carol_id);
  auto made = conversation_of(*bob, "group", {alice_id, carol_id});
  ASSERT_FALSE(made.empty());
  auto conversation = id_of(made);
  std::string epoch(made.at("epoch").as_string());
  ASSERT_TRUE(alice->next_of("conversation.create", 10s));
  ASSERT_TRUE(carol->next_of("conversation.create", 10s));
  ASSERT_TRUE(presence_becomes(*carol, conversation, [&](const auto& s) { return s.contains(alice_id); }, 5s));

  // alice sends until her host dies under her; bob keeps talking meanwhile.
  std::mutex mutex;
  std::map<std::int64_t, std::string> acked;  // seq -> text, everything any host acknowledged
  std::atomic<int> alice_acks{0};
  std::atomic<bool> stop{false};
  std::thread alice_sends([&] {
    for (int i = 0; !stop; ++i) {
      std::string text = "alice/" + std::to_string(i);
      json::object r;
      try {
        r = send(*alice, conversation, text, text);
      } catch (const std::exception&) {
        break;
      }
      if (r["type"] != "ack") break;
      std::lock_guard lock(mutex);
      acked[r["result"].as_object()["message"].as_object()["seq"].as_int64()] = text;
      ++alice_acks;
    }
  });
  std::thread bob_sends([&] {
    for (int i = 0; !stop && i < 60; ++i) {
      std::string text = "bob/" + std::to_string(i);
      auto r = send(*bob, conversation, text, text);
      if (r["type"] != "ack") continue;
      std::lock_guard lock(mutex);
      acked[r["result"].as_object()["message"].as_object()["seq"].as_int64()] = text;
      std::this_thread::sleep_for(5ms);
    }
  });
  auto until = Clock::now() + 20s;
  while (alice_acks < 20 && Clock::now() < until) std::this_thread::sleep_for(5ms);
  ASSERT_GE(alice_acks.load(), 20);
  auto killed = hosts[0]->stop(9);
  EXPECT_EQ(killed.signal, 9);
  EXPECT_TRUE(alice->closed(10s)) << "alice's connection outlived her host";
  alice_sends.join();
  std::this_thread::sleep_for(200ms);
  stop = true;
  bob_sends.join();

  // Her users are offline on the others within the lease (plus its check period).
  auto killed_at = Clock::now();
  EXPECT_TRUE(presence_becomes(*carol, conversation, [&](const auto& s) { return !s.contains(alice_id); },
                               kLease + 3s))
      << "alice still online after the lease of her dead host";
  EXPECT_LE(Clock::now() - killed_at, kLease + 3s);

  // carol (host 2) ends with every acknowledged message, live or by resume.
  std::map<std::int64_t, std::string> got;
  std::int64_t carol_last = 1;
  for (const auto& f : collect(*carol, "message.new", acked.size(), 5s)) {
    got[seq_of(f)] = text_of(f);
    carol_last = std::max(carol_last, seq_of(f));
  }
  // alice reconnects to host 1 with the position she had reached before the crash.
  std::int64_t alice_position = 1;
  {
    std::lock_guard lock(mutex);
    for (const auto& [seq, text] : acked) {
      if (text.starts_with("alice/")) alice_position = std::max<std::int64_t>(alice_position, seq - 3);
    }
  }
  auto alice_back = connect(1, alice_id);
  auto replay = resume_from(*alice_back, conversation, epoch, alice_position);
  ASSERT_TRUE(replay.resume) << "no resume frame";
  EXPECT_TRUE(replay.resume->at("recovered").as_bool());
  ASSERT_GE(replay.resume->at("last_seq").as_int64(), acked.rbegin()->first) << "storage lost acknowledged events";
  // The stored history, read on host 1, holds every acknowledged message...
  auto stored = stored_messages(*alice_back, conversation);
  for (const auto& [seq, text] : acked) {
    ASSERT_TRUE(stored.contains(seq)) << "acknowledged " << text << " (seq " << seq << ") is lost";
    EXPECT_EQ(stored[seq], text);
  }
  // ...and alice's replay is exactly what she missed: every stored message after her position.
  std::map<std::int64_t, std::string> missed(stored.upper_bound(alice_position), stored.end());
  EXPECT_EQ(replay.messages, missed);

  // carol (host 2): what she missed live, a resume on her host gives her; together, everything.
  auto carol_replay = resume_from(*carol, conversation, epoch, carol_last);
  ASSERT_TRUE(carol_replay.resume);
  for (const auto& [seq, text] : carol_replay.messages) {
    EXPECT_GT(seq, carol_last);
    got[seq] = text;
  }
  for (const auto& [seq, text] : acked) EXPECT_EQ(got[seq], text) << "carol never got seq " << seq;
}

// An ephemeral frame for conversation `id` in the hosts' bus envelope, as
// another host would publish it: origin, conversation, seq 0, no except, no
// only, no joins, no leaves, the frame.
std::string bus_envelope(std::int64_t id, const std::string& frame) {
  return host::wire::encode_event(host::wire::EventMessage{"another-host", id, 0, "", "", {}, {}, frame});
}

TEST_F(Cluster, BusSqlDeliversARowWhoseTransactionCommittedLate) {
  if (shape() != "sql-postgres") GTEST_SKIP() << "concerns bus-sql on PostgreSQL";
  std::string alice_id = unique("alice");
  auto alice = connect(1, alice_id);
  auto conversation = group(*alice, {unique("bob")});
  ASSERT_GT(conversation, 0);
  alice->drain();
  auto row = [&](pqxx::transaction_base& tx, const std::string& text) {
    std::string frame = json::serialize(json::object{{"type", "probe"}, {"conversation_id", conversation}, {"text", text}});
    std::string payload = bus_envelope(conversation, frame);
    tx.exec_params("INSERT INTO " + table + " (subject, payload) VALUES ($1, $2)",
                   "conv." + std::to_string(conversation), pqxx::binarystring(payload.data(), payload.size()));
  };
  // A publisher's transaction inserts first but commits last (a slow host);
  // another commits meanwhile. Reading by id alone would pass the first row
  // before it is visible and never return to it.
  pqxx::connection slow_connection(env("DATABASE_URL")), fast_connection(env("DATABASE_URL"));
  pqxx::work slow(slow_connection);
  row(slow, "first");
  {
    pqxx::work fast(fast_connection);
    row(fast, "second");
    fast.commit();
  }
  EXPECT_FALSE(alice->next_of("probe", 500ms)) << "a row was delivered past an open older transaction";
  slow.commit();
  auto first = alice->next_of("probe", 5s);
  ASSERT_TRUE(first) << "the row committed late was skipped";
  EXPECT_EQ(first->at("text").as_string(), "first");
  auto second = alice->next_of("probe", 5s);
  ASSERT_TRUE(second);
  EXPECT_EQ(second->at("text").as_string(), "second");
}

TEST_F(Cluster, NatsOutageTurnsReadyFalseAndResumeFillsTheGap) {
  if (shape() != "nats") GTEST_SKIP() << "a nats-server outage concerns bus-nats";
  std::string alice_id = unique("alice"), bob_id = unique("bob");
  auto alice = connect(0, alice_id);
  auto bob = connect(1, bob_id);
  auto made = conversation_of(*alice, "group", {bob_id});
  ASSERT_FALSE(made.empty());
  auto conversation = id_of(made);
  std::string epoch(made.at("epoch").as_string());
  ASSERT_TRUE(bob->next_of("conversation.create", 10s));
  ASSERT_TRUE(ready(0) && ready(1));

  nats->stop();
  auto until = Clock::now() + 5s;
  while ((ready(0) || ready(1)) && Clock::now() < until) std::this_thread::sleep_for(50ms);
  EXPECT_FALSE(ready(0)) << "/ready stayed true without nats-server";
  EXPECT_FALSE(ready(1));
  // Storage still works: messages are acknowledged during the outage.
  std::vector<std::string> during;
  for (int i = 0; i < 5; ++i) {
    during.push_back("during/" + std::to_string(i));
    ASSERT_EQ(send(*alice, conversation, during.back())["type"], "ack");
  }
  std::this_thread::sleep_for(5s - (Clock::now() - (until - 5s)));
  nats->start();
  until = Clock::now() + 15s;
  while (!(ready(0) && ready(1)) && Clock::now() < until) std::this_thread::sleep_for(50ms);
  EXPECT_TRUE(ready(0) && ready(1)) << "hosts did not reconnect to nats-server";

  // The next message reaches bob, and the gap before it is filled in order.
  ASSERT_EQ(send(*alice, conversation, "after")["type"], "ack");
  auto frames = collect(*bob, "message.new", during.size() + 1, 15s);
  std::vector<std::string> texts;
  for (const auto& f : frames) texts.push_back(text_of(f));
  during.push_back("after");
  EXPECT_EQ(texts, during) << "bob's live stream has a gap after the outage";
  // And a client that resumes from before the outage gets exactly the same.
  auto bob2 = connect(2, bob_id);
  json::array positions{json::object{{"conversation_id", conversation}, {"epoch", epoch}, {"seq", 1}}};
  ASSERT_EQ(bob2->command({{"type", "subscribe"}, {"positions", positions}})["type"], "ack");
  std::vector<std::string> resumed;
  for (const auto& f : collect(*bob2, "message.new", during.size(), 5s)) resumed.push_back(text_of(f));
  EXPECT_EQ(resumed, during);
}

TEST_F(Cluster, PostgresRestartGivesRetryableErrorsAndLosesNothing) {
  if (shape() == "sql-sqlite") GTEST_SKIP() << "no PostgreSQL in this shape";
  std::string pg_ctl = env("SWITCHBOARD_PG_CTL");
  ASSERT_FALSE(pg_ctl.empty());
  std::string alice_id = unique("alice"), bob_id = unique("bob");
  auto alice = connect(0, alice_id);
  auto bob = connect(1, bob_id);
  auto conversation = group(*alice, {bob_id});
  ASSERT_TRUE(bob->next_of("conversation.create", 10s));
  std::vector<std::string> acked;
  for (int i = 0; i < 5; ++i) {
    acked.push_back("before/" + std::to_string(i));
    ASSERT_EQ(send(*alice, conversation, acked.back(), acked.back())["type"], "ack");
  }

  // Through support/process: the server must not inherit our client sockets.
  ASSERT_EQ(run({pg_ctl, "stop", "-m", "fast"}).exit_code, 0);
  auto r = send(*alice, conversation, "during", "during");
  EXPECT_EQ(r["type"], "error");
  EXPECT_EQ(r["code"], "unavailable") << json::serialize(r);
  EXPECT_NE(std::string(r["message"].as_string()).find("PostgreSQL unavailable"), std::string::npos)
      << json::serialize(r);
  ASSERT_EQ(run({pg_ctl, "start"}).exit_code, 0);

  // The client retries with the same key, as the error invites; it succeeds.
  auto until = Clock::now() + 20s;
  json::object retried;
  while (Clock::now() < until) {
    retried = send(*alice, conversation, "during", "during");
    if (retried["type"] == "ack") break;
    EXPECT_EQ(retried["code"], "unavailable") << json::serialize(retried);
    std::this_thread::sleep_for(200ms);
  }
  ASSERT_EQ(retried["type"], "ack") << json::serialize(retried);
  acked.push_back("during");
  for (int i = 0; i < 5; ++i) {
    acked.push_back("after/" + std::to_string(i));
    ASSERT_EQ(send(*alice, conversation, acked.back(), acked.back())["type"], "ack");
  }
  std::vector<std::string> stored;
  for (const auto& [seq, text] : stored_messages(*bob, conversation)) stored.push_back(text);
  EXPECT_EQ(stored, acked) << "history differs from what was acknowledged";
  // Every host reports ready again once it used the database successfully.
  auto until_ready = Clock::now() + 10s;
  while (!(ready(0) && ready(1)) && Clock::now() < until_ready) std::this_thread::sleep_for(100ms);
  EXPECT_TRUE(ready(0)) << http_request(port(0), "GET", "/ready").body;
  EXPECT_TRUE(ready(1)) << http_request(port(1), "GET", "/ready").body;
}

}  // namespace
}  // namespace switchboard::testing
