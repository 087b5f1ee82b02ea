// The host at its edges, through the real binary: plugins that break the
// rules, shutdown and SIGKILL under traffic, and hostile input. Each test is
// bounded in time and count, and asserts what an operator would check: the
// process is alive, its memory bounded, a normal client still answered, and
// the attacker got the documented status or close code.
#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <boost/json.hpp>
#include <cstdlib>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include "support/chat_helpers.hpp"
#include "support/host_process.hpp"
#include "support/raw_ws.hpp"
#include "support/ws_client.hpp"

namespace switchboard::testing {
namespace {

namespace json = boost::json;
namespace asio = boost::asio;

// Under a sanitizer everything is slower and bigger (shadow memory): bounds
// on time and memory scale by this much, never the assertions themselves.
#if defined(SWITCHBOARD_SANITIZED)
constexpr int kSlow = 4;
#else
constexpr int kSlow = 1;
#endif
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

// The value of a Prometheus metric on the host, or -1.
long metric(std::uint16_t port, const std::string& name) {
  auto body = http_request(port, "GET", "/metrics").body;
  auto at = body.find("\n" + name + " ");
  if (at == std::string::npos) return -1;
  return std::stol(body.substr(at + name.size() + 2));
}

// How long a normal client's round trip (a ping command) takes.
std::chrono::milliseconds round_trip(std::uint16_t port) {
  auto start = Clock::now();
  WsClient probe(port, token_for("probe"));
  auto r = probe.command({{"type", "ping"}}, 20s);
  EXPECT_EQ(r["type"], "ack") << "a normal client was not answered";
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start);
}

// Every frame carrying `id` that arrives within `quiet`.
std::vector<json::object> answers_to(WsClient& c, const std::string& id, std::chrono::milliseconds quiet) {
  std::vector<json::object> out;
  auto until = Clock::now() + quiet;
  while (Clock::now() < until) {
    auto f = c.next(std::chrono::duration_cast<std::chrono::milliseconds>(until - Clock::now()));
    if (!f) break;
    if (auto* fid = f->if_contains("id"); fid && fid->is_string() && fid->as_string() == id) out.push_back(*f);
  }
  return out;
}

// The whole history of `c`, read page by page: how often each message's
// client key is stored (each message's text ends with its key), and whether
// seq ran 1, 2, 3... without a gap or a repeat.
struct Stored {
  std::map<std::string, int> keys;
  bool gap_free = true;
};
Stored stored_messages(WsClient& client, std::int64_t c) {
  Stored out;
  std::int64_t from = 0, expected_seq = 1;
  for (;;) {
    auto page = client.command({{"type", "history"}, {"conversation_id", c}, {"after", from}, {"limit", 200}});
    EXPECT_EQ(page["type"], "ack") << json::serialize(page);
    if (page["type"] != "ack") return out;
    auto& result = page["result"].as_object();
    for (auto& e : result["events"].as_array()) {
      auto& ev = e.as_object();
      if (ev["seq"].as_int64() != expected_seq) out.gap_free = false;
      expected_seq = ev["seq"].as_int64() + 1;
      from = ev["seq"].as_int64();
      if (ev["type"] != "message.new") continue;
      std::string text(ev["message"].as_object()["text"].as_string());
      ++out.keys[text.substr(text.rfind(' ') + 1)];
    }
    if (!result["more"].as_bool()) return out;
  }
}

std::string faulty_feature() {
  return "\n[[features]]\nplugin = \"" + std::string(TEST_PLUGIN_DIR) + "/test-faulty-feature.so\"\n";
}

TEST(Firewall, EveryCallIntoABrokenFeatureGetsExactlyOneAnswer) {
  HostProcess host({.server = "ping_interval_seconds = 3\ncommand_timeout_seconds = 2\n",
                    .feature_config = faulty_feature()});
  WsClient alice(host.port(), token_for("alice"));
  WsClient bob(host.port(), token_for("bob"));
  auto c = group(alice, {"bob"});
  struct Case {
    std::string type;
    std::string expect;  // the one answer: "ack" or an error code
  };
  for (const Case& k : std::vector<Case>{{"fault.throw", "internal"},
                                         {"fault.silent", "internal"},
                                         {"fault.twice", "ack"},
                                         {"fault.completion", "ack"},
                                         {"fault.late", "ack"}}) {
    std::string id = "k-" + k.type;
    alice.send_json({{"id", id}, {"type", k.type}, {"conversation_id", c}});
    // fault.silent is answered by the host after its 2 s deadline (swept each second).
    auto got = answers_to(alice, id, k.type == "fault.silent" ? 5000ms : 1500ms);
    ASSERT_EQ(got.size(), 1u) << k.type << ": " << got.size() << " answers\n" << host.output();
    if (k.expect == "ack") {
      EXPECT_EQ(got[0]["type"], "ack") << k.type << ": " << json::serialize(got[0]);
    } else {
      EXPECT_EQ(got[0]["type"], "error") << k.type;
      EXPECT_EQ(got[0]["code"], json::value(k.expect)) << k.type << ": " << json::serialize(got[0]);
    }
  }
  // on_event throws for every event, on_session_opened too: chat goes on.
  EXPECT_EQ(send(alice, c, "still served")["type"], "ack");
  auto delivered = bob.next_of("message.new");
  ASSERT_TRUE(delivered);
  EXPECT_EQ((*delivered)["message"].as_object()["text"], "still served");
  EXPECT_GE(metric(host.port(), "switchboard_plugin_exceptions_total"), 4);
  EXPECT_GE(metric(host.port(), "switchboard_plugin_duplicate_answers_total"), 1);
  EXPECT_EQ(metric(host.port(), "switchboard_plugin_missing_answers_total"), 1);
  auto finished = host.stop(SIGTERM);
  EXPECT_EQ(finished.exit_code, 0) << finished.output;
}

// Traffic of every kind in flight when SIGTERM arrives: sends, history reads,
// resumes, typing timers, idle keep-alive HTTP connections. The host exits 0
// and every message it acknowledged is in storage after a restart.
void shutdown_under_load(HostOptions options) {
  HostProcess host(options);
  auto owner_token = token_for("owner");
  WsClient owner(host.port(), owner_token);
  auto c = group(owner, {"s0", "s1", "s2", "s3", "reader"});
  // Idle keep-alive HTTP connections, open across the stop.
  asio::io_context io;
  std::vector<tcp::socket> idle;
  for (int i = 0; i < 20; ++i) {
    tcp::socket s(io);
    s.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), host.port()));
    std::string req = "GET /health HTTP/1.1\r\nHost: x\r\n\r\n";
    asio::write(s, asio::buffer(req));
    char buf[256];
    s.read_some(asio::buffer(buf));
    idle.push_back(std::move(s));
  }
  std::mutex mutex;
  std::set<std::string> acknowledged;
  std::atomic<bool> stop{false};
  std::vector<std::thread> load;
  for (int s = 0; s < 4; ++s) {
    load.emplace_back([&, s] {
      try {
        WsClient sender(host.port(), token_for("s" + std::to_string(s)));
        for (int i = 0; !stop; ++i) {
          std::string key = "s" + std::to_string(s) + "-" + std::to_string(i);
          // Several in flight: send three, then collect their answers.
          auto r = send(sender, c, "load " + key, key);
          if (r["type"] == "ack") {
            std::lock_guard lock(mutex);
            acknowledged.insert(key);
          } else if (r.empty()) {
            break;  // the host closed: stopping
          }
          sender.command({{"type", "typing.start"}, {"conversation_id", c}}, 2s);
        }
      } catch (const std::exception&) {
        // The connection closed under us: the host is stopping.
      }
    });
  }
  load.emplace_back([&] {
    try {
      WsClient reader(host.port(), token_for("reader"));
      while (!stop) {
        reader.command({{"type", "history"}, {"conversation_id", c}, {"limit", 50}}, 2s);
        json::array positions;
        positions.push_back(json::object{{"conversation_id", c}, {"epoch", "stale"}, {"seq", 1}});
        reader.command({{"type", "subscribe"}, {"positions", positions}}, 2s);
      }
    } catch (const std::exception&) {
    }
  });
  // However this test ends, the load threads end with it.
  struct JoinAll {
    std::atomic<bool>& stop;
    std::vector<std::thread>& threads;
    ~JoinAll() {
      stop = true;
      for (auto& t : threads) if (t.joinable()) t.join();
    }
  } join_all{stop, load};
  auto deadline = Clock::now() + kSlow * 30s;
  auto acknowledged_count = [&] {
    std::lock_guard lock(mutex);
    return acknowledged.size();
  };
  while (acknowledged_count() < 200 && Clock::now() < deadline) std::this_thread::sleep_for(10ms);
  ASSERT_GE(acknowledged_count(), 200u) << "the load never got going\n" << host.output();
  auto finished = host.stop(SIGTERM);
  stop = true;
  for (auto& t : load) t.join();
  EXPECT_EQ(finished.exit_code, 0) << finished.output;
  EXPECT_EQ(finished.output.find("ERROR: AddressSanitizer"), std::string::npos) << finished.output;
  EXPECT_EQ(finished.output.find("runtime error:"), std::string::npos) << finished.output;
  EXPECT_EQ(owner.closed(5s), 1001);

  host.start();
  WsClient check(host.port(), owner_token);
  auto stored = stored_messages(check, c).keys;
  for (const auto& key : acknowledged) {
    EXPECT_EQ(stored[key], 1) << "acknowledged message " << key << " stored " << stored[key] << " times";
  }
}

TEST(ShutdownUnderLoad, SqliteKeepsEveryAcknowledgedMessage) { shutdown_under_load({}); }

TEST(ShutdownUnderLoad, PostgresKeepsEveryAcknowledgedMessage) {
  const char* url = std::getenv("DATABASE_URL");
  if (!url) GTEST_SKIP() << "run under tests/servers/with-postgres.sh (the e2e/shutdown-postgres test does)";
  shutdown_under_load({.storage = std::string("\n[storage]\nplugin = \"storage-postgres\"\n[storage.config]\nurl = \"") +
                                  url + "\"\n"});
}

// SIGKILL mid-traffic, five times, on SQLite with synchronous = full: every
// acknowledged message is there exactly once, seq has no gap, and resending
// what was never acknowledged stores each once.
TEST(KillNine, EveryAcknowledgedMessageSurvivesFiveKills) {
  TempDir data;
  HostOptions options;
  options.data_dir = data.path();
  options.storage = "\n[storage]\nplugin = \"storage-sqlite\"\n[storage.config]\npath = \"" + data.path() +
                    "/switchboard.db\"\nsynchronous = \"full\"\n";
  HostProcess host(options);
  auto token = token_for("writer");
  std::int64_t c = 0;
  {
    WsClient w(host.port(), token);
    c = group(w, {"other"});
  }
  std::set<std::string> acknowledged, unanswered;
  std::mt19937 rng(42);
  for (int round = 0; round < 5; ++round) {
    if (round > 0) host.start();
    std::atomic<bool> killed{false};
    std::mutex mutex;
    std::thread writer([&] {
      try {
        WsClient w(host.port(), token);
        for (int i = 0; !killed; ++i) {
          std::string key = "r" + std::to_string(round) + "-" + std::to_string(i);
          {
            std::lock_guard lock(mutex);
            unanswered.insert(key);
          }
          auto r = send(w, c, "kill test " + key, key);
          if (r["type"] != "ack") break;
          std::lock_guard lock(mutex);
          unanswered.erase(key);
          acknowledged.insert(key);
        }
      } catch (const std::exception&) {
      }
    });
    auto enough = Clock::now() + std::chrono::milliseconds(300 + rng() % 700);
    while (Clock::now() < enough) std::this_thread::sleep_for(10ms);
    auto finished = host.stop(SIGKILL);
    killed = true;
    writer.join();
    EXPECT_EQ(finished.signal, SIGKILL);
  }
  host.start();
  WsClient w(host.port(), token);
  // What was sent but never answered: resent with the same keys.
  for (const auto& key : unanswered) EXPECT_EQ(send(w, c, "kill test " + key, key)["type"], "ack") << key;
  auto history = stored_messages(w, c);
  EXPECT_TRUE(history.gap_free) << "seq has a gap or a repeat";
  auto& stored = history.keys;
  ASSERT_GE(acknowledged.size(), 5u) << "too little traffic to test anything";
  for (const auto& key : acknowledged) EXPECT_EQ(stored[key], 1) << "acknowledged " << key;
  for (const auto& key : unanswered) EXPECT_EQ(stored[key], 1) << "resent " << key;
}

// An event right after the one that adds a member reaches that member live,
// whichever worker their session is on: delivery follows each worker's order.
TEST(Delivery, EventsRightAfterAJoinReachTheNewMember) {
  HostProcess host({.server = "threads = 2\ncommands_per_second = 100000\ncommand_burst = 100000\n"});
  WsClient bob(host.port(), token_for("bob"));      // the first connection: worker 0
  WsClient alice(host.port(), token_for("alice"));  // the second: worker 1
  for (int i = 0; i < 100; ++i) {
    std::string text = "right after the join " + std::to_string(i);
    alice.send_json({{"id", "c" + std::to_string(i)}, {"type", "conversation.create"}, {"kind", "group"},
                     {"name", "g"}, {"members", json::array{"bob"}}});
    // Not waiting for the create's answer: the send is queued right behind it.
    std::optional<std::int64_t> conversation;
    while (!conversation) {
      auto f = alice.next(10s);
      ASSERT_TRUE(f) << "no answer to the create";
      if ((*f)["id"] == json::value("c" + std::to_string(i))) {
        conversation = (*f)["result"].as_object()["conversation"].as_object()["id"].as_int64();
      }
    }
    alice.send_json({{"id", "m" + std::to_string(i)}, {"type", "message.send"}, {"conversation_id", *conversation},
                     {"text", text}});
    alice.send_json({{"id", "t" + std::to_string(i)}, {"type", "typing.start"}, {"conversation_id", *conversation}});
    // Both arrive, in either order (typing skips storage, the message does not).
    bool message = false, typing = false;
    while (!(message && typing)) {
      auto f = bob.next(10s);
      ASSERT_TRUE(f) << "round " << i << ": bob missed " << (message ? "the typing" : "the message")
                     << " sent right after he was added";
      if ((*f)["type"] == "typing.start" && (*f)["conversation_id"] == json::value(*conversation)) typing = true;
      if ((*f)["type"] == "message.new" && (*f)["message"].as_object()["text"] == json::value(text)) message = true;
    }
  }
}

// --- Hostile input --------------------------------------------------------

TEST(Hostile, IdleSocketsAreCappedPerAddressAndClosedAfterTheHeaderDeadline) {
  // max_connections set, so that only the per-address cap can refuse here.
  HostProcess host({.server = "max_connections = 15000\n"});
  long rss_before = host.rss_kib();
  long refused_before = metric(host.port(), "switchboard_refused_connections_total");
  asio::io_context io;
  std::vector<tcp::socket> sockets;
  // 5,000 idle sockets from 20 addresses: 250 each, within the per-address cap of 256.
  for (int i = 0; i < 5000; ++i) sockets.push_back(connect_from(io, "127.0.0." + std::to_string(2 + i % 20), host.port()));
  // One address over its share by 44: those are refused at once, the others kept.
  std::vector<tcp::socket> over;
  for (int i = 0; i < 300; ++i) over.push_back(connect_from(io, "127.0.0.30", host.port()));
  auto deadline = Clock::now() + kSlow * 10s;
  while (metric(host.port(), "switchboard_refused_connections_total") - refused_before < 44 && Clock::now() < deadline) {
    std::this_thread::sleep_for(20ms);
  }
  EXPECT_EQ(metric(host.port(), "switchboard_refused_connections_total") - refused_before, 44)
      << "exactly what is over the per-address share is refused, nothing else";
  int refused = 0;
  for (auto& s : over) refused += closed_by_peer(s, 1ms) ? 1 : 0;
  EXPECT_EQ(refused, 44);
  EXPECT_LT(round_trip(host.port()), kSlow * 2000ms);
  long rss = host.rss_kib();
  EXPECT_LT(rss - rss_before, kSlow * 64 * 1024) << "5,000 idle sockets cost " << (rss - rss_before) << " KiB";
  // The header deadline (10 s from each accept) closes every idle one. One
  // deadline for all: a socket accepted late from the backlog closes late.
  int closed = 0;
  auto all_closed_by = Clock::now() + kSlow * 30s;
  for (auto& s : sockets) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(all_closed_by - Clock::now());
    closed += closed_by_peer(s, std::max(left, 1ms)) ? 1 : 0;
  }
  EXPECT_EQ(closed, 5000);
  EXPECT_TRUE(host.running());
}

TEST(Hostile, SlowlorisHeadersAreCutAtTheDeadline) {
  HostProcess host;
  asio::io_context io;
  std::vector<tcp::socket> sockets;
  for (int i = 0; i < 2000; ++i) {
    sockets.push_back(connect_from(io, "127.0.1." + std::to_string(1 + i % 10), host.port()));
    asio::write(sockets.back(), asio::buffer(std::string("GET /conversations HTTP/1.1\r\nHost: x\r\n")));
  }
  auto start = Clock::now();
  // One more header line every second: never a complete request.
  int open = 2000;
  while (open > 0 && Clock::now() - start < 25s) {
    open = 0;
    for (auto& s : sockets) {
      if (!s.is_open()) continue;
      boost::system::error_code ec;
      asio::write(s, asio::buffer(std::string("X-Slow: 1\r\n")), ec);
      if (ec || closed_by_peer(s, 1ms)) {
        s.close();
      } else {
        ++open;
      }
    }
    EXPECT_LT(round_trip(host.port()), kSlow * 2000ms);
    std::this_thread::sleep_for(1s);
  }
  EXPECT_EQ(open, 0) << "slow headers held sockets past the 10 s header deadline";
  EXPECT_LT(Clock::now() - start, 20s);
}

TEST(Hostile, OversizedHeadersAndBodiesAreRefusedBeforeBeingRead) {
  HostProcess host;
  asio::io_context io;
  {
    auto s = connect_from(io, "127.0.0.1", host.port());
    std::string req = "GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(1 << 20, 'a') + "\r\n\r\n";
    boost::system::error_code ec;
    asio::write(s, asio::buffer(req), ec);  // the host may close before taking it all
    EXPECT_EQ(read_status(s), 431);
  }
  {
    auto s = connect_from(io, "127.0.0.1", host.port());
    std::string req = "POST /conversations HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + token_for("a") +
                      "\r\nContent-Type: application/json\r\nContent-Length: 10000000000\r\n\r\n{";
    asio::write(s, asio::buffer(req));
    auto start = Clock::now();
    EXPECT_EQ(read_status(s), 413);
    EXPECT_LT(Clock::now() - start, 2s) << "a 10 GB body was waited for";
  }
  {
    // No token: 401 at once, before a byte of the (slow) body is read.
    auto s = connect_from(io, "127.0.0.1", host.port());
    std::string req = "POST /conversations HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n{";
    asio::write(s, asio::buffer(req));
    auto start = Clock::now();
    EXPECT_EQ(read_status(s), 401);
    EXPECT_LT(Clock::now() - start, 2s);
  }
  EXPECT_LT(round_trip(host.port()), kSlow * 2000ms);
}

TEST(Hostile, RestIsRateLimitedPerUser) {
  HostProcess host({.server = "rest_requests_per_second = 5\nrest_burst = 10\n"});
  auto t = token_for("spammer");
  int ok = 0, limited = 0;
  auto start = Clock::now();
  for (int i = 0; i < 40; ++i) {
    int status = http_request(host.port(), "GET", "/conversations", "", t).status;
    ok += status == 200;
    limited += status == 429;
  }
  double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  EXPECT_EQ(ok + limited, 40);
  // The burst of 10, plus 5 a second for as long as it took, at most.
  EXPECT_LE(ok, 10 + static_cast<int>(elapsed * 5) + 1) << "in " << elapsed << " s";
  EXPECT_GE(limited, 1);
  EXPECT_EQ(http_request(host.port(), "GET", "/conversations", "", token_for("someone-else")).status, 200)
      << "one user's rate limited another";
}

TEST(Hostile, OneByteSegmentsPingFloodsAndHugeJsonLeaveOthersServed) {
  HostProcess host({.server = "max_frame_bytes = 1048576\n"});
  asio::io_context io;
  long rss_before = host.rss_kib();
  // A 1 MiB message, one byte per write.
  std::thread trickle([&] {
    auto s = raw_websocket(io, host.port(), token_for("trickler"));
    s.set_option(tcp::no_delay(true));
    std::string text = R"({"id":"big","type":"ping","pad":")" + std::string((1 << 20) - 64, 'p') + R"("})";
    std::string frame = client_frame(0x81, text);
    boost::system::error_code ec;
    for (std::size_t i = 0; i < frame.size() && !ec; ++i) asio::write(s, asio::buffer(&frame[i], 1), ec);
  });
  // 100,000 pings as fast as possible, never reading a pong.
  std::thread flood([&] {
    auto s = raw_websocket(io, host.port(), token_for("pinger"));
    std::string burst;
    for (int i = 0; i < 1000; ++i) burst += client_frame(0x89, "ping!");
    boost::system::error_code ec;
    for (int i = 0; i < 100 && !ec; ++i) asio::write(s, asio::buffer(burst), ec);
  });
  for (int i = 0; i < 5; ++i) EXPECT_LT(round_trip(host.port()), kSlow * 2000ms) << "round " << i;
  flood.join();
  trickle.join();
  // Deeply nested and very wide JSON: a clear error, the connection stays.
  WsClient json_attacker(host.port(), token_for("nester"));
  std::string nested = R"({"id":"n","type":"ping","x":)" + std::string(100000, '[') + std::string(100000, ']') + "}";
  json_attacker.send(nested);
  auto answer = json_attacker.next(10s);
  ASSERT_TRUE(answer);
  EXPECT_EQ((*answer)["code"], "bad_request") << json::serialize(*answer);
  std::string wide = R"({"id":"w","type":"message.send","conversation_id":1,"text":"x")";
  for (int i = 0; i < 40000; ++i) wide += ",\"k" + std::to_string(i) + "\":" + std::to_string(i);
  wide += "}";
  json_attacker.send(wide);
  auto wide_answer = json_attacker.next(10s);
  ASSERT_TRUE(wide_answer);
  EXPECT_EQ((*wide_answer)["type"], "error");
  EXPECT_EQ(json_attacker.command({{"type", "ping"}})["type"], "ack");
  EXPECT_LT(host.rss_kib() - rss_before, kSlow * 256 * 1024);
  EXPECT_TRUE(host.running());
}

TEST(Hostile, ATenThousandPositionSubscribeIsChargedByItsCost) {
  // 10,000 positions take ~600 KB of JSON: over the default 64 KiB frame. A
  // burst of 10 and one token a second leave a debt of 91 tokens: 91 s to
  // refill, far longer than the resume's reads take even under a sanitizer.
  HostProcess host({.server = "max_frame_bytes = 1048576\ncommands_per_second = 1\ncommand_burst = 10\n"});
  WsClient attacker(host.port(), token_for("resumer"));
  json::array positions;
  for (int i = 0; i < 10000; ++i) {
    positions.push_back(json::object{{"conversation_id", 1000000 + i}, {"epoch", "e"}, {"seq", 1}});
  }
  // The subscribe costs 1 + 100 tokens: the whole burst and far more, so the
  // two commands sent right behind it are refused until the bucket refills.
  attacker.send_json({{"id", "sub"}, {"type", "subscribe"}, {"positions", positions}});
  attacker.send_json({{"id", "next-1"}, {"type", "conversation.list"}});
  attacker.send_json({{"id", "next-2"}, {"type", "conversation.list"}});
  std::map<std::string, std::string> answers;
  auto until = Clock::now() + kSlow * 60s;
  while (answers.size() < 3 && Clock::now() < until) {
    auto f = attacker.next(kSlow * 20s);
    if (!f) break;
    const auto* id = f->if_contains("id");
    if (!id || !id->is_string()) continue;
    std::string key(id->as_string());
    const auto* code = f->if_contains("code");
    answers[key] = f->at("type") == "ack" ? std::string("ack")
                                           : (code && code->is_string() ? std::string(code->as_string()) : "?");
  }
  EXPECT_EQ(answers["sub"], "ack");
  EXPECT_EQ(answers["next-1"], "rate_limited");
  EXPECT_EQ(answers["next-2"], "rate_limited");
  EXPECT_LT(round_trip(host.port()), kSlow * 2000ms);
}

}  // namespace
}  // namespace switchboard::testing
