// switchboard-loadgen: N WebSocket connections (spread over several
// 127.0.0.x source addresses) in conversations of K members; S senders per
// conversation send message.send either closed-loop (a window of W messages
// in flight each) or open-loop at a total rate. Reports delivered
// message.new frames per second, send-to-receive latency (p50/p99/max) and,
// given the server's pid, its RSS per idle connection.
//
// With --reconnect, once all are connected it drops every connection at
// once, posts one message to each conversation meanwhile, reconnects them all
// and resumes each from where it was: the time until the last client has its
// missed message replayed (a reconnect storm).
//
// Beast performs each handshake; frames are then written and parsed raw, so
// the generator on one core outpaces the server under test.
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/json.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <thread>
#include <iostream>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "auth/token_verifier.hpp"

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
namespace json = boost::json;
using asio::ip::tcp;
using Clock = std::chrono::steady_clock;

namespace {

struct Options {
  std::string host = "127.0.0.1";
  unsigned short port = 8080;
  int connections = 1000;
  int conversation_size = 100;
  int senders = 10;          // per conversation
  int window = 4;            // closed loop: messages in flight per sender
  double rate = 0;           // open loop: messages per second in total (0: closed loop)
  int seconds = 10;
  int warmup = 2;
  int sources = 8;           // 127.0.0.1 .. 127.0.0.N
  int text_bytes = 64;
  std::string secret;
  bool peer = false;         // the peer: no REST setup, conversation = index + 1
  // nginx + nchan (nchan_pubsub websocket): no hello, no ack; frames are
  // broadcast verbatim, so a sender's own copy coming back is its ack.
  bool nchan = false;
  int server_pid = 0;
  std::string label = "switchboard";
  // Several hosts of a cluster: connection i goes to target i % n, and only
  // deliveries that crossed hosts count for latency.
  std::vector<std::pair<std::string, unsigned short>> targets;
  int user_offset = 0;  // several generators at once: distinct users
  // Handshakes in flight while connecting: 1 is one blocking handshake at a
  // time (what the scenarios have always done); more measure the server's
  // connect rate (a connect storm) instead of one round trip after another.
  int connect_concurrency = 1;
  // The reconnect storm; with a sync directory, several generators drop
  // together: each writes ready-<user offset> and waits for a file named go.
  bool reconnect = false;
  std::string sync_dir;
};

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch()).count();
}

long rss_kib(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  }
  return -1;
}

// A client frame: FIN+text, masked with a zero key (XOR is then a no-op;
// the server must accept any key).
void append_frame(std::string& out, std::string_view payload) {
  out.push_back(static_cast<char>(0x81));
  std::size_t n = payload.size();
  if (n < 126) {
    out.push_back(static_cast<char>(0x80 | n));
  } else {
    out.push_back(static_cast<char>(0x80 | 126));
    out.push_back(static_cast<char>((n >> 8) & 0xFF));
    out.push_back(static_cast<char>(n & 0xFF));
  }
  out.append(4, '\0');
  out.append(payload);
}

struct Stats {
  bool measuring = false;
  std::uint64_t delivered = 0;
  std::uint64_t acks = 0;
  std::uint64_t errors = 0;
  std::vector<std::uint32_t> latency_us;
};

class Connection;

// Where a client was before the drop, and the message it missed.
struct Position {
  std::string epoch;
  std::int64_t seq = 0;     // its last seq when the client was connected
  std::int64_t missed = 0;  // the seq of the message posted while it was away
};

struct World {
  Options opt;
  std::vector<Position> positions;  // per conversation
  bool resuming = false;            // the reconnect phase
  int resumed = 0;
  int not_recovered = 0;
  int reconnects = 0;     // a client closed before it resumed, reconnecting after a backoff
  int resubscribes = 0;   // a subscribe answered "try again later", sent again after a backoff
  Clock::time_point last_resumed;
  asio::io_context io{1};
  Stats stats;
  std::vector<std::unique_ptr<Connection>> connections;
  std::vector<char> scratch = std::vector<char>(256 * 1024);
  std::string padding;
  int ready = 0;
  int closed = 0;
};

class Connection {
 public:
  Connection(World& w, int index, std::int64_t conversation, bool sender, std::size_t slot = 0)
      : w_(w), socket_(w.io), index_(index), conversation_(conversation), sender_(sender),
        target_(w.opt.targets.empty() ? 0 : index % static_cast<int>(w.opt.targets.size())), slot_(slot) {}

  // The drop: the socket closes at once; its handlers end aborted.
  void drop() {
    dropping_ = true;
    boost::system::error_code ec;
    socket_.close(ec);
  }

  // After the drop's handlers ran: a fresh client, same user and conversation.
  void reset() {
    reopen();
    dropping_ = hello_ = false;
  }

  void connect(const std::string& token) {
    std::string source = "127.0.0." + std::to_string(1 + index_ % std::max(1, w_.opt.sources));
    socket_.open(tcp::v4());
    socket_.bind(tcp::endpoint(asio::ip::make_address(source), 0));
    std::string host = w_.opt.targets.empty() ? w_.opt.host : w_.opt.targets[static_cast<std::size_t>(target_)].first;
    unsigned short port = w_.opt.targets.empty() ? w_.opt.port : w_.opt.targets[static_cast<std::size_t>(target_)].second;
    socket_.connect(tcp::endpoint(asio::ip::make_address(host), port));
    // The upgrade with Beast's HTTP parser, keeping whatever followed the
    // 101 (the server's hello may arrive in the same segment).
    http::request<http::empty_body> req{http::verb::get, "/ws?token=" + token + "&conv=" + std::to_string(conversation_), 11};
    req.set(http::field::host, w_.opt.host);
    req.set(http::field::upgrade, "websocket");
    req.set(http::field::connection, "Upgrade");
    req.set(http::field::sec_websocket_key, "dGhlIHNhbXBsZSBub25jZQ==");
    req.set(http::field::sec_websocket_version, "13");
    http::write(socket_, req);
    beast::flat_buffer buffer;
    http::response_parser<http::empty_body> parser;
    parser.skip(true);  // a 101 has no body
    http::read_header(socket_, buffer, parser);
    if (parser.get().result() != http::status::switching_protocols) {
      throw std::runtime_error("upgrade refused: " + std::to_string(parser.get().result_int()));
    }
    socket_.set_option(tcp::no_delay(true));
    socket_.non_blocking(true);
    if (buffer.size() > 0) {
      auto bytes = beast::buffers_to_string(buffer.data());
      on_bytes(bytes.data(), bytes.size());
    }
    if (w_.opt.nchan) ++w_.ready;  // nchan says nothing on connect
    wait_read();
  }

  // The same upgrade without blocking: `connected` runs once the 101 is in
  // (false: refused or failed; the connection counts as closed).
  void connect_async(std::string token, std::function<void(bool)> connected) {
    token_ = token;
    std::string source = "127.0.0." + std::to_string(1 + index_ % std::max(1, w_.opt.sources));
    socket_.open(tcp::v4());
    socket_.bind(tcp::endpoint(asio::ip::make_address(source), 0));
    std::string host = w_.opt.targets.empty() ? w_.opt.host : w_.opt.targets[static_cast<std::size_t>(target_)].first;
    unsigned short port = w_.opt.targets.empty() ? w_.opt.port : w_.opt.targets[static_cast<std::size_t>(target_)].second;
    inflight_ = "GET /ws?token=" + token + "&conv=" + std::to_string(conversation_) + " HTTP/1.1\r\nHost: " +
                w_.opt.host + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
    socket_.async_connect(tcp::endpoint(asio::ip::make_address(host), port), [this, connected](boost::system::error_code ec) {
      if (ec) return fail(connected);
      asio::async_write(socket_, asio::buffer(inflight_), [this, connected](boost::system::error_code ec, std::size_t) {
        inflight_.clear();
        if (ec) return fail(connected);
        asio::async_read_until(socket_, asio::dynamic_buffer(pending_), "\r\n\r\n",
                               [this, connected](boost::system::error_code ec, std::size_t header) {
          if (ec || pending_.compare(0, 12, "HTTP/1.1 101") != 0) return fail(connected);
          std::string rest = pending_.substr(header);
          pending_.clear();
          socket_.set_option(tcp::no_delay(true));
          socket_.non_blocking(true);
          if (!rest.empty()) on_bytes(rest.data(), rest.size());
          if (w_.opt.nchan) ++w_.ready;
          wait_read();
          connected(true);
        });
      });
    });
  }

  void start_sending() {
    if (!sender_) return;
    if (w_.opt.rate <= 0) {
      for (int i = 0; i < w_.opt.window; ++i) send_one();
    }
  }

  void send_one() {
    if (w_.opt.nchan) {
      std::string payload = "{\"type\":\"message.new\",\"from\":" + std::to_string(index_) + ",\"text\":\"t=" +
                            std::to_string(now_ns()) + " " + w_.padding + "\"}";
      append_frame(out_, payload);
      return flush();
    }
    std::string payload = "{\"id\":" + std::to_string(++sent_) + ",\"type\":\"message.send\",\"conversation_id\":" +
                          std::to_string(conversation_) + ",\"text\":\"t=" + std::to_string(now_ns()) + " h=" + std::to_string(target_) + " " +
                          w_.padding + "\"}";
    append_frame(out_, payload);
    flush();
  }

  bool sender() const { return sender_; }

 private:
  void wait_read() {
    socket_.async_wait(tcp::socket::wait_read, [this](boost::system::error_code ec) {
      if (ec) return done();
      for (;;) {
        boost::system::error_code rec;
        std::size_t n = socket_.read_some(asio::buffer(w_.scratch), rec);
        if (rec == asio::error::would_block) break;
        if (rec) return done();
        on_bytes(w_.scratch.data(), n);
        if (n < w_.scratch.size()) break;
      }
      wait_read();
    });
  }

  void fail(const std::function<void(bool)>& connected) {
    done();
    // In a reconnect storm a client retries (done() scheduled it): its slot
    // among the handshakes in flight is free meanwhile.
    connected(w_.opt.reconnect);
  }

  void done() {
    if (!closed_) {
      closed_ = true;
      ++w_.closed;
      // As a client written from docs/protocol.md does: closed before it
      // resumed (refused, "storage unavailable, retry"), it reconnects after
      // a random backoff.
      if (w_.opt.reconnect && !dropping_ && !resumed_) {
        ++w_.reconnects;
        later([this] {
          reopen();
          connect_async(token_, [](bool) {});
        });
      }
    }
  }

  void reopen() {
    closed_ = writing_ = false;
    out_.clear();
    inflight_.clear();
    pending_.clear();
    boost::system::error_code ec;
    socket_.close(ec);
    socket_ = tcp::socket(w_.io);
  }

  // Runs `f` after a backoff with full jitter: a random delay up to 250 ms,
  // doubling with each retry of this client, at most 5 s.
  template <class F>
  void later(F f) {
    if (!retry_) retry_ = std::make_unique<asio::steady_timer>(w_.io);
    int cap = std::min(5000, 250 << std::min(attempts_++, 5));
    std::uniform_int_distribution<int> pick(0, cap);
    retry_->expires_after(std::chrono::milliseconds(pick(random_)));
    retry_->async_wait([f = std::move(f)](boost::system::error_code ec) {
      if (!ec) f();
    });
  }

  void on_bytes(const char* data, std::size_t n) {
    if (!pending_.empty()) {
      pending_.append(data, n);
      std::string joined;
      joined.swap(pending_);
      std::size_t used = parse(joined.data(), joined.size());
      pending_.assign(joined.data() + used, joined.size() - used);
    } else {
      std::size_t used = parse(data, n);
      pending_.assign(data + used, n - used);
    }
  }

  std::size_t parse(const char* data, std::size_t n) {
    std::size_t at = 0;
    while (n - at >= 2) {
      auto op = static_cast<unsigned char>(data[at]) & 0x0F;
      std::uint64_t len = static_cast<unsigned char>(data[at + 1]) & 0x7F;
      std::size_t header = 2;
      if (len == 126) {
        if (n - at < 4) break;
        len = (static_cast<unsigned char>(data[at + 2]) << 8) | static_cast<unsigned char>(data[at + 3]);
        header = 4;
      } else if (len == 127) {
        if (n - at < 10) break;
        len = 0;
        for (int i = 0; i < 8; ++i) len = (len << 8) | static_cast<unsigned char>(data[at + 2 + i]);
        header = 10;
      }
      if (n - at < header + len) break;
      std::string_view payload(data + at + header, static_cast<std::size_t>(len));
      if (op == 0x1) on_text(payload);
      if (op == 0x9) {  // ping: answer with a pong carrying the same payload
        out_.push_back(static_cast<char>(0x8A));
        out_.push_back(static_cast<char>(0x80 | payload.size()));
        out_.append(4, '\0');
        out_.append(payload);
        flush();
      }
      at += header + static_cast<std::size_t>(len);
    }
    return at;
  }

  void resume() {
    const Position& at = w_.positions[slot_];
    json::object position{{"conversation_id", conversation_}, {"epoch", at.epoch}, {"seq", at.seq}};
    append_frame(out_, json::serialize(json::object{{"id", "resume"}, {"type", "subscribe"},
                                                    {"positions", json::array{position}}}));
    flush();
  }

  void on_resume(std::string_view p) {
    auto frame = json::parse(p).as_object();
    const auto* id = frame.if_contains("conversation_id");
    if (!id || !id->is_int64() || id->get_int64() != conversation_ || resumed_) return;
    const auto* recovered = frame.if_contains("recovered");
    if (recovered && recovered->is_bool() && recovered->get_bool() && saw_missed_) {
      resumed_ = true;
      ++w_.resumed;
      w_.last_resumed = Clock::now();
    } else if (const auto* reason = frame.if_contains("reason"); reason && *reason == "unavailable") {
      resubscribe();  // "send subscribe with the same position again later"
    } else {
      resumed_ = true;  // final: nothing more to wait for
      if (++w_.not_recovered <= 3) std::cerr << "not resumed: " << p.substr(0, 300) << "\n";
    }
  }

  void resubscribe() {
    ++w_.resubscribes;
    later([this] {
      if (!closed_) resume();
    });
  }

  void on_text(std::string_view p) {
    if (w_.resuming && p.starts_with("{\"type\":\"message.new\"")) {
      auto frame = json::parse(p).as_object();
      if (frame.at("seq").as_int64() == w_.positions[slot_].missed) saw_missed_ = true;
      return;
    }
    if (p.starts_with("{\"type\":\"message.new\"")) {
      auto t = p.find("\"text\":\"t=");
      if (t != std::string_view::npos && w_.stats.measuring) {
        std::int64_t sent = 0;
        std::size_t i = t + 10;
        for (; i < p.size() && p[i] >= '0' && p[i] <= '9'; ++i) sent = sent * 10 + (p[i] - '0');
        int from = -1;
        if (p.substr(i, 3) == " h=") {
          from = 0;
          for (i += 3; i < p.size() && p[i] >= '0' && p[i] <= '9'; ++i) from = from * 10 + (p[i] - '0');
        }
        ++w_.stats.delivered;
        bool crossed = w_.opt.targets.size() < 2 || from != target_;
        if (crossed) {
          w_.stats.latency_us.push_back(static_cast<std::uint32_t>(std::max<std::int64_t>(0, now_ns() - sent) / 1000));
        }
      }
      if (w_.opt.nchan && sender_) {
        // Its own message back: what an ack is to the others.
        std::string mine = "{\"type\":\"message.new\",\"from\":" + std::to_string(index_) + ",";
        if (p.starts_with(mine)) {
          if (w_.stats.measuring) ++w_.stats.acks;
          if (w_.opt.rate <= 0) send_one();
        }
      }
    } else if (p.starts_with("{\"type\":\"ack\"")) {
      if (w_.stats.measuring) ++w_.stats.acks;
      if (sender_ && w_.opt.rate <= 0) send_one();
    } else if (p.starts_with("{\"type\":\"hello\"")) {
      if (!hello_) ++w_.ready;
      hello_ = true;
      if (w_.resuming) resume();
    } else if (p.starts_with("{\"type\":\"resume\"")) {
      on_resume(p);
    } else if (w_.resuming && p.starts_with("{\"type\":\"error\",\"id\":\"resume\"")) {
      // The subscribe itself refused for now (storage slow or failing): again later.
      if (!resumed_) resubscribe();
    } else if (p.starts_with("{\"type\":\"error\"")) {
      ++w_.stats.errors;
      if (w_.stats.errors <= 3) std::cerr << "error frame: " << p.substr(0, 200) << "\n";
      if (sender_ && w_.opt.rate <= 0) send_one();
    }
  }

  void flush() {
    if (writing_ || out_.empty() || closed_) return;
    writing_ = true;
    inflight_.swap(out_);
    asio::async_write(socket_, asio::buffer(inflight_), [this](boost::system::error_code ec, std::size_t) {
      writing_ = false;
      inflight_.clear();
      if (ec) return done();
      flush();
    });
  }

  World& w_;
  tcp::socket socket_;
  int index_;
  std::int64_t conversation_;
  bool sender_;
  bool closed_ = false;
  bool writing_ = false;
  std::string out_, inflight_, pending_;
  std::uint64_t sent_ = 0;
  int target_ = 0;
  std::size_t slot_ = 0;  // its conversation's index
  bool saw_missed_ = false;
  bool resumed_ = false;
  bool hello_ = false;      // counted ready once, however often it reconnected
  bool dropping_ = false;   // closed by the generator: no retry
  std::string token_;
  int attempts_ = 0;
  std::unique_ptr<asio::steady_timer> retry_;
  std::minstd_rand random_{static_cast<unsigned>(index_ + 1)};
};

// POST `target` with a JSON body as `token`'s user; the response body, or
// throws naming `what` unless the answer is 201.
std::string rest_post(const Options& opt, const std::string& token, const std::string& target,
                      const json::object& body, const char* what) {
  asio::io_context io;
  beast::tcp_stream stream(io);
  stream.connect(tcp::endpoint(asio::ip::make_address(opt.host), opt.port));
  http::request<http::string_body> req{http::verb::post, target, 11};
  req.set(http::field::host, opt.host);
  req.set(http::field::authorization, "Bearer " + token);
  req.set(http::field::content_type, "application/json");
  req.body() = json::serialize(body);
  req.prepare_payload();
  http::write(stream, req);
  beast::flat_buffer buffer;
  http::response<http::string_body> res;
  http::read(stream, buffer, res);
  if (res.result_int() != 201) throw std::runtime_error(std::string(what) + ": " + res.body());
  return res.body();
}

std::string rest_create(const Options& opt, const std::string& token, const json::array& members) {
  return rest_post(opt, token, "/conversations", {{"kind", "group"}, {"name", "bench"}, {"members", members}},
                   "create conversation");
}

// POST /conversations/:id/messages; the message's seq.
std::int64_t rest_message(const Options& opt, const std::string& token, std::int64_t conversation,
                          const std::string& text) {
  auto body = rest_post(opt, token, "/conversations/" + std::to_string(conversation) + "/messages",
                        {{"text", text}}, "post message");
  return json::parse(body).at("seq").as_int64();
}

void usage() {
  std::cerr << "usage: switchboard-loadgen --port P --secret S [--connections N] [--conversation-size K]\n"
               "       [--senders S] [--window W | --rate MSGS_PER_S] [--seconds D] [--warmup D] [--sources A]\n"
               "       [--text-bytes B] [--server-pid PID] [--peer] [--label NAME]\n"
               "       [--targets HOST:PORT,HOST:PORT,...] [--user-offset N] [--connect-concurrency K]\n"
               "       [--reconnect [--sync-dir DIR]]\n";
}

}  // namespace

int main(int argc, char** argv) {
  World w;
  Options& o = w.opt;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        usage();
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--host") o.host = next();
    else if (a == "--port") o.port = static_cast<unsigned short>(std::stoi(next()));
    else if (a == "--connections") o.connections = std::stoi(next());
    else if (a == "--conversation-size") o.conversation_size = std::stoi(next());
    else if (a == "--senders") o.senders = std::stoi(next());
    else if (a == "--window") o.window = std::stoi(next());
    else if (a == "--rate") o.rate = std::stod(next());
    else if (a == "--seconds") o.seconds = std::stoi(next());
    else if (a == "--warmup") o.warmup = std::stoi(next());
    else if (a == "--sources") o.sources = std::stoi(next());
    else if (a == "--text-bytes") o.text_bytes = std::stoi(next());
    else if (a == "--secret") o.secret = next();
    else if (a == "--server-pid") o.server_pid = std::stoi(next());
    else if (a == "--peer") o.peer = true;
    else if (a == "--nchan") o.peer = o.nchan = true;
    else if (a == "--label") o.label = next();
    else if (a == "--user-offset") o.user_offset = std::stoi(next());
    else if (a == "--connect-concurrency") o.connect_concurrency = std::max(1, std::stoi(next()));
    else if (a == "--reconnect") o.reconnect = true;
    else if (a == "--sync-dir") o.sync_dir = next();
    else if (a == "--targets") {
      // host:port,host:port,...
      std::string list = next();
      for (std::size_t at = 0; at < list.size();) {
        auto comma = list.find(',', at);
        std::string item = list.substr(at, comma == std::string::npos ? std::string::npos : comma - at);
        auto colon = item.rfind(':');
        o.targets.emplace_back(item.substr(0, colon), static_cast<unsigned short>(std::stoi(item.substr(colon + 1))));
        at = comma == std::string::npos ? list.size() : comma + 1;
      }
      o.host = o.targets.front().first;
      o.port = o.targets.front().second;
    }
    else {
      usage();
      return 2;
    }
  }
  rlimit lim{};
  getrlimit(RLIMIT_NOFILE, &lim);
  lim.rlim_cur = lim.rlim_max;
  setrlimit(RLIMIT_NOFILE, &lim);
  w.padding.assign(static_cast<std::size_t>(std::max(0, o.text_bytes - 22)), 'x');

  switchboard::host::AuthConfig auth;
  auth.secret = o.secret.empty() ? "bench-secret-0123456789" : o.secret;
  switchboard::host::TokenVerifier minter(auth);
  auto token = [&](int i) {
    auto wall = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch());
    return minter.mint("u" + std::to_string(o.user_offset + i), std::chrono::hours(2), wall.count());
  };

  int conversations = (o.connections + o.conversation_size - 1) / o.conversation_size;
  std::vector<std::int64_t> ids(static_cast<std::size_t>(conversations));
  w.positions.resize(static_cast<std::size_t>(conversations));
  for (int c = 0; c < conversations; ++c) {
    if (o.peer) {
      ids[static_cast<std::size_t>(c)] = c + 1;
      continue;
    }
    json::array members;
    for (int i = c * o.conversation_size; i < std::min(o.connections, (c + 1) * o.conversation_size); ++i) {
      members.emplace_back("u" + std::to_string(o.user_offset + i));
    }
    auto body = json::parse(rest_create(o, token(c * o.conversation_size), members));
    const auto& conversation = body.at("conversation");
    ids[static_cast<std::size_t>(c)] = conversation.at("id").as_int64();
    w.positions[static_cast<std::size_t>(c)] = Position{std::string(conversation.at("epoch").as_string()),
                                                        conversation.at("last_seq").as_int64()};
  }

  long rss_before = o.server_pid ? rss_kib(o.server_pid) : -1;
  auto t0 = Clock::now();
  for (int i = 0; i < o.connections; ++i) {
    int c = i / o.conversation_size;
    bool sender = (i % o.conversation_size) < o.senders;
    w.connections.push_back(
        std::make_unique<Connection>(w, i, ids[static_cast<std::size_t>(c)], sender, static_cast<std::size_t>(c)));
  }
  if (o.reconnect) o.connect_concurrency = std::max(o.connect_concurrency, 64);
  if (o.connect_concurrency == 1) {
    for (int i = 0; i < o.connections; ++i) {
      w.connections[static_cast<std::size_t>(i)]->connect(token(i));
      if (i % 500 == 499) w.io.poll();
    }
  }
  // A storm: connect_concurrency handshakes kept in flight until every
  // connection has its hello (or failed); false after a deadline.
  std::vector<std::string> tokens;
  int failed = 0;
  auto storm = [&]() -> bool {
    int next_connection = 0;
    failed = 0;
    std::function<void()> launch = [&] {
      int i = next_connection++;
      w.connections[static_cast<std::size_t>(i)]->connect_async(tokens[static_cast<std::size_t>(i)], [&](bool ok) {
        if (!ok) ++failed;
        if (next_connection < o.connections) launch();
      });
    };
    for (int k = 0; k < std::min(o.connect_concurrency, o.connections); ++k) launch();
    auto started = Clock::now();
    while (w.ready + failed < o.connections) {
      w.io.run_for(std::chrono::milliseconds(100));
      if (Clock::now() - started > std::chrono::seconds(120 + o.connections / 100)) {
        std::cerr << "only " << w.ready << " of " << o.connections << " connections got hello\n";
        return false;
      }
    }
    if (failed) std::cerr << failed << " of " << o.connections << " connections failed to upgrade\n";
    return failed == 0;
  };
  if (o.connect_concurrency > 1) {
    // Every token minted first (the generator's work, not the server's).
    for (int i = 0; i < o.connections; ++i) tokens.push_back(token(i));
    t0 = Clock::now();
    if (!storm()) return 1;
  }
  // The connect loop blocks on each handshake; hellos are read from here on.
  auto connected = Clock::now();
  while (w.ready < o.connections) {
    w.io.run_for(std::chrono::milliseconds(100));
    // Hellos wait for a storage read each: allow for a slow database.
    if (Clock::now() - connected > std::chrono::seconds(120 + o.connections / 100)) {
      std::cerr << "only " << w.ready << " of " << o.connections << " connections got hello\n";
      return 1;
    }
  }
  double connect_s = std::chrono::duration<double>(Clock::now() - t0).count();
  // Let the server settle, then read its idle memory.
  w.io.run_for(std::chrono::milliseconds(1500));
  long rss_idle = o.server_pid ? rss_kib(o.server_pid) : -1;

  if (o.reconnect) {
    namespace fs = std::filesystem;
    if (!o.sync_dir.empty()) {
      std::ofstream(fs::path(o.sync_dir) / ("ready-" + std::to_string(o.user_offset))) << connect_s << "\n";
      auto waited = Clock::now();
      while (!fs::exists(fs::path(o.sync_dir) / "go")) {
        w.io.run_for(std::chrono::milliseconds(10));  // pings are answered meanwhile
        if (Clock::now() - waited > std::chrono::minutes(10)) {
          std::cerr << "no go in " << o.sync_dir << " after 10 minutes\n";
          return 1;
        }
      }
    }
    auto wall_ms = [] {
      return std::chrono::duration_cast<std::chrono::milliseconds>(
                 std::chrono::system_clock::now().time_since_epoch())
          .count();
    };
    // Every connection dropped at once.
    auto dropped_wall = wall_ms();
    auto dropped = Clock::now();
    for (auto& c : w.connections) c->drop();
    w.io.poll();
    w.io.restart();
    // While they are away, one message in each conversation: each client
    // misses one. Posting is the generator's work: timed apart.
    for (int c = 0; c < conversations; ++c) {
      auto& at = w.positions[static_cast<std::size_t>(c)];
      at.missed = rest_message(o, tokens[static_cast<std::size_t>(c * o.conversation_size)], ids[static_cast<std::size_t>(c)],
                            "missed while away");
    }
    for (auto& c : w.connections) c->reset();
    w.ready = 0;
    w.closed = 0;
    w.resuming = true;
    auto posted = Clock::now();
    // Progress on stderr every 5 s: where a slow storm spends its time.
    asio::steady_timer progress(w.io);
    std::function<void()> report = [&] {
      progress.expires_after(std::chrono::seconds(5));
      progress.async_wait([&](boost::system::error_code ec) {
        if (ec) return;
        std::cerr << "# " << o.label << " +" << std::chrono::duration_cast<std::chrono::seconds>(Clock::now() - posted).count()
                  << " s: hello " << w.ready << ", resumed " << w.resumed << ", reconnects " << w.reconnects
                  << ", subscribes again " << w.resubscribes << "\n";
        report();
      });
    };
    report();
    bool all_connected = storm();
    auto reconnected = Clock::now();
    // Then every one resumed: its missed message replayed, and resume
    // recovered:true.
    while (all_connected && w.resumed + w.not_recovered < o.connections) {
      w.io.run_for(std::chrono::milliseconds(50));
      if (Clock::now() - dropped > std::chrono::seconds(300)) break;
    }
    progress.cancel();
    auto end = w.resumed + w.not_recovered == o.connections ? w.last_resumed : Clock::now();
    double total_s = std::chrono::duration<double>(end - dropped).count();
    json::object r{{"label", o.label},
                   {"connections", o.connections},
                   {"conversation_size", o.conversation_size},
                   {"connect_concurrency", o.connect_concurrency},
                   {"hosts", std::max<std::size_t>(1, o.targets.size())},
                   {"first_connect_seconds", connect_s},
                   {"posting_seconds", std::chrono::duration<double>(posted - dropped).count()},
                   {"reconnect_seconds", std::chrono::duration<double>(reconnected - posted).count()},
                   {"reconnect_to_last_resume_seconds", std::chrono::duration<double>(end - posted).count()},
                   {"resumed", w.resumed},
                   {"not_recovered", w.not_recovered},
                   {"failed_connects", failed},
                   {"reconnects_after_refusal", w.reconnects},
                   {"subscribes_sent_again", w.resubscribes},
                   {"drop_to_last_resume_seconds", total_s},
                   {"dropped_wall_ms", dropped_wall},
                   {"last_resume_wall_ms", dropped_wall + static_cast<std::int64_t>(total_s * 1000)}};
    std::cout << json::serialize(r) << std::endl;
    std::fflush(stdout);
    std::_Exit(w.resumed == o.connections ? 0 : 1);
  }

  for (auto& c : w.connections) c->start_sending();
  std::vector<Connection*> senders;
  for (auto& c : w.connections) {
    if (c->sender()) senders.push_back(c.get());
  }
  // Open loop: a timer releases sends at the offered rate, round robin.
  std::size_t next_sender = 0;
  asio::steady_timer ticker(w.io);
  auto tick_every = std::chrono::milliseconds(1);
  double credit = 0;
  auto last_tick = Clock::now();
  std::function<void()> tick = [&] {
    // Credit by elapsed time: timers fire late, the offered rate must not.
    auto now = Clock::now();
    credit += o.rate * std::chrono::duration<double>(now - last_tick).count();
    last_tick = now;
    while (credit >= 1.0 && !senders.empty()) {
      senders[next_sender++ % senders.size()]->send_one();
      credit -= 1.0;
    }
    ticker.expires_after(tick_every);
    ticker.async_wait([&](boost::system::error_code ec) {
      if (!ec) tick();
    });
  };
  if (o.rate > 0) tick();

  w.io.run_for(std::chrono::seconds(o.warmup));
  w.stats.measuring = true;
  auto m0 = Clock::now();
  w.io.run_for(std::chrono::seconds(o.seconds));
  w.stats.measuring = false;
  double elapsed = std::chrono::duration<double>(Clock::now() - m0).count();
  ticker.cancel();

  auto& lat = w.stats.latency_us;
  std::sort(lat.begin(), lat.end());
  auto pct = [&](double p) -> double {
    if (lat.empty()) return 0;
    return lat[std::min(lat.size() - 1, static_cast<std::size_t>(p * static_cast<double>(lat.size())))] / 1000.0;
  };
  double per_conn = (rss_before >= 0 && rss_idle >= 0) ? (rss_idle - rss_before) * 1024.0 / o.connections : -1;
  json::object r{{"label", o.label},
                 {"connections", o.connections},
                 {"conversation_size", o.conversation_size},
                 {"senders_per_conversation", o.senders},
                 {"mode", o.rate > 0 ? "open" : "closed"},
                 {"offered_msgs_per_s", o.rate},
                 {"window", o.window},
                 {"seconds", elapsed},
                 {"connect_seconds", connect_s},
                 {"delivered_per_s", static_cast<double>(w.stats.delivered) / elapsed},
                 {"sends_acked_per_s", static_cast<double>(w.stats.acks) / elapsed},
                 {"errors", w.stats.errors},
                 {"closed", w.closed},
                 {"hosts", std::max<std::size_t>(1, o.targets.size())},
                 {"latency_scope", o.targets.size() > 1 ? "cross-host deliveries" : "all deliveries"},
                 {"latency_ms_p50", pct(0.50)},
                 {"latency_ms_p99", pct(0.99)},
                 {"latency_ms_max", lat.empty() ? 0.0 : lat.back() / 1000.0},
                 {"connect_concurrency", o.connect_concurrency},
                 {"connects_per_s", connect_s > 0 ? o.connections / connect_s : 0.0},
                 {"server_rss_kib_before", rss_before},
                 {"server_rss_kib_idle", rss_idle},
                 {"server_idle_bytes_per_connection", per_conn}};
  std::cout << json::serialize(r) << std::endl;
  std::fflush(stdout);
  std::_Exit(0);  // tens of thousands of sockets: let the kernel close them
}
