#include "support/ws_client.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/json.hpp>
#include <array>
#include <future>
#include <stdexcept>

namespace switchboard::testing {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
namespace json = boost::json;
using asio::ip::tcp;

json::value HttpResult::json() const { return json::parse(body); }

HttpResult http_request(std::uint16_t port, const std::string& method, const std::string& target,
                        const std::string& body, const std::string& token,
                        const std::map<std::string, std::string>& headers) {
  asio::io_context io;
  beast::tcp_stream stream(io);
  HttpResult result;
  http::request<http::string_body> req{http::string_to_verb(method), target, 11};
  req.set(http::field::host, "127.0.0.1");
  if (!token.empty()) req.set(http::field::authorization, "Bearer " + token);
  for (const auto& [k, v] : headers) req.set(k, v);
  if (!body.empty()) {
    req.set(http::field::content_type, "application/json");
    req.body() = body;
  }
  req.prepare_payload();
  beast::flat_buffer buffer;
  http::response<http::string_body> res;
  stream.expires_after(10s);
  stream.async_connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port), [&](beast::error_code ec) {
    if (ec) return;
    http::async_write(stream, req, [&](beast::error_code ec, std::size_t) {
      if (ec) return;
      http::async_read(stream, buffer, res, [&](beast::error_code ec, std::size_t) {
        if (ec) return;
        result.status = static_cast<int>(res.result_int());
        result.body = res.body();
      });
    });
  });
  io.run();
  return result;
}

int upgrade_status(std::uint16_t port, const std::string& target, const std::map<std::string, std::string>& headers) {
  asio::io_context io;
  websocket::stream<beast::tcp_stream> ws(io);
  beast::get_lowest_layer(ws).expires_after(10s);
  beast::error_code ec;
  beast::get_lowest_layer(ws).connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port), ec);
  if (ec) return 0;
  ws.set_option(websocket::stream_base::decorator([&](websocket::request_type& req) {
    for (const auto& [k, v] : headers) req.set(k, v);
  }));
  websocket::response_type res;
  ws.handshake(res, "127.0.0.1", target, ec);
  return static_cast<int>(res.result_int());
}

struct WsClient::Impl {
  asio::io_context io;
  websocket::stream<tcp::socket> ws{io};
  beast::flat_buffer buffer;
  std::thread thread;
  std::mutex mutex;
  std::condition_variable cv;
  std::deque<json::object> frames;
  std::optional<int> close_code;
  bool reading = true;
  bool raw = false;
  std::string raw_bytes;
  std::array<char, 65536> raw_buffer;

  // Server frames are unmasked: find a close frame's code in what was read.
  std::optional<int> raw_close() {
    std::size_t i = 0;
    // Drops the complete frames scanned so far, whatever the exit.
    struct Trim {
      std::string& bytes;
      std::size_t& upto;
      ~Trim() { bytes.erase(0, upto); }
    } trim{raw_bytes, i};
    while (i + 2 <= raw_bytes.size()) {
      auto op = static_cast<unsigned char>(raw_bytes[i]) & 0x0F;
      std::uint64_t len = static_cast<unsigned char>(raw_bytes[i + 1]) & 0x7F;
      std::size_t header = 2;
      if (len == 126) {
        if (i + 4 > raw_bytes.size()) return std::nullopt;
        len = (static_cast<unsigned char>(raw_bytes[i + 2]) << 8) | static_cast<unsigned char>(raw_bytes[i + 3]);
        header = 4;
      } else if (len == 127) {
        if (i + 10 > raw_bytes.size()) return std::nullopt;
        len = 0;
        for (int k = 0; k < 8; ++k) len = (len << 8) | static_cast<unsigned char>(raw_bytes[i + 2 + k]);
        header = 10;
      }
      if (i + header + len > raw_bytes.size()) return std::nullopt;
      if (op == 0x8) {
        int code = len < 2 ? 1005
                           : (static_cast<unsigned char>(raw_bytes[i + header]) << 8) |
                                 static_cast<unsigned char>(raw_bytes[i + header + 1]);
        i = 0;  // keep the bytes: nothing reads them after a close
        return code;
      }
      i += header + static_cast<std::size_t>(len);
    }
    return std::nullopt;
  }

  void read_raw() {
    ws.next_layer().async_read_some(asio::buffer(raw_buffer), [this](beast::error_code ec, std::size_t n) {
      std::lock_guard lock(mutex);
      raw_bytes.append(raw_buffer.data(), n);
      if (auto code = raw_close()) {
        close_code = *code;
      } else if (ec) {
        close_code = 1006;
      }
      cv.notify_all();
      if (!close_code) read_raw();
    });
  }

  void read() {
    ws.async_read(buffer, [this](beast::error_code ec, std::size_t) {
      std::lock_guard lock(mutex);
      if (ec) {
        close_code = ws.reason().code ? static_cast<int>(ws.reason().code) : 1006;
        cv.notify_all();
        return;
      }
      std::string text = beast::buffers_to_string(buffer.data());
      buffer.consume(buffer.size());
      std::error_code pec;
      auto v = json::parse(text, pec);
      if (!pec && v.is_object()) frames.push_back(v.as_object());
      cv.notify_all();
      read();
    });
  }
};

WsClient::WsClient(std::uint16_t port, const std::string& token) : WsClient(port, token, Options{}) {}

WsClient::WsClient(std::uint16_t port, const std::string& token, Options options) : impl_(std::make_unique<Impl>()) {
  auto& ws = impl_->ws;
  beast::error_code ec;
  ws.next_layer().open(tcp::v4(), ec);
  if (options.receive_buffer) ws.next_layer().set_option(asio::socket_base::receive_buffer_size(options.receive_buffer), ec);
  ws.next_layer().connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port), ec);
  if (ec) throw std::runtime_error("connect failed: " + ec.message());
  ws.set_option(websocket::stream_base::decorator([&](websocket::request_type& req) {
    for (const auto& [k, v] : options.headers) req.set(k, v);
  }));
  ws.read_message_max(64 << 20);
  std::string target = options.target;
  if (!token.empty()) target += (target.find('?') == std::string::npos ? "?token=" : "&token=") + token;
  ws.handshake("127.0.0.1", target, ec);
  if (ec) throw std::runtime_error("handshake failed: " + ec.message());
  impl_->raw = options.raw;
  impl_->reading = options.read && !options.raw;
  if (impl_->reading) impl_->read();
  impl_->thread = std::thread([this] {
    auto guard = asio::make_work_guard(impl_->io);
    impl_->io.run();
  });
  if (impl_->reading) {
    auto hello = next_of("hello", 10s);
    if (!hello) throw std::runtime_error("no hello from the server");
    hello_ = *hello;
  }
}

WsClient::~WsClient() {
  impl_->io.stop();
  if (impl_->thread.joinable()) impl_->thread.join();
}

void WsClient::send(const std::string& text) {
  std::promise<beast::error_code> done;
  asio::post(impl_->io, [&] {
    impl_->ws.text(true);
    impl_->ws.async_write(asio::buffer(text), [&](beast::error_code ec, std::size_t) { done.set_value(ec); });
  });
  auto f = done.get_future();
  if (f.wait_for(10s) != std::future_status::ready) throw std::runtime_error("send timed out");
  f.get();
}

void WsClient::send_json(const json::value& v) { send(json::serialize(v)); }

void WsClient::send_binary(const std::string& data) {
  std::promise<void> done;
  asio::post(impl_->io, [&] {
    impl_->ws.binary(true);
    impl_->ws.async_write(asio::buffer(data), [&](beast::error_code, std::size_t) { done.set_value(); });
  });
  done.get_future().wait_for(10s);
}

json::object WsClient::command(json::object command, std::chrono::milliseconds deadline) {
  if (!command.contains("id")) command["id"] = next_id_++;
  json::value id = command["id"];
  send_json(command);
  auto end = std::chrono::steady_clock::now() + deadline;
  std::unique_lock lock(impl_->mutex);
  for (;;) {
    for (auto it = impl_->frames.begin(); it != impl_->frames.end(); ++it) {
      auto type = it->if_contains("type");
      if (type && (*type == "ack" || *type == "error") && it->if_contains("id") && it->at("id") == id) {
        json::object out = std::move(*it);
        impl_->frames.erase(it);
        return out;
      }
    }
    if (impl_->cv.wait_until(lock, end) == std::cv_status::timeout) {
      return json::object{{"type", "timeout"}, {"id", id}};
    }
  }
}

std::optional<json::object> WsClient::next(std::chrono::milliseconds deadline) {
  std::unique_lock lock(impl_->mutex);
  if (!impl_->cv.wait_for(lock, deadline, [&] { return !impl_->frames.empty() || impl_->close_code; })) return std::nullopt;
  if (impl_->frames.empty()) return std::nullopt;
  json::object out = std::move(impl_->frames.front());
  impl_->frames.pop_front();
  return out;
}

std::optional<json::object> WsClient::next_of(const std::string& type, std::chrono::milliseconds deadline) {
  auto end = std::chrono::steady_clock::now() + deadline;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(end - std::chrono::steady_clock::now());
    if (left.count() <= 0) return std::nullopt;
    auto f = next(left);
    if (!f) return std::nullopt;
    if (f->contains("type") && f->at("type") == type.c_str()) return f;
  }
}

void WsClient::drain() {
  std::lock_guard lock(impl_->mutex);
  impl_->frames.clear();
}

std::optional<int> WsClient::closed(std::chrono::milliseconds deadline) {
  if (!impl_->reading) {
    // Start reading now, to see the close.
    impl_->reading = true;
    asio::post(impl_->io, [this] { impl_->raw ? impl_->read_raw() : impl_->read(); });
  }
  std::unique_lock lock(impl_->mutex);
  if (!impl_->cv.wait_for(lock, deadline, [&] { return impl_->close_code.has_value(); })) return std::nullopt;
  return impl_->close_code;
}

bool WsClient::silent_for(std::chrono::milliseconds quiet) {
  std::unique_lock lock(impl_->mutex);
  return !impl_->cv.wait_for(lock, quiet, [&] { return !impl_->frames.empty(); });
}

void WsClient::close() {
  std::promise<void> done;
  asio::post(impl_->io, [&] {
    impl_->ws.async_close(websocket::close_code::normal, [&](beast::error_code) { done.set_value(); });
  });
  done.get_future().wait_for(10s);
}

}  // namespace switchboard::testing
