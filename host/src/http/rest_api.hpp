// The REST API on the server's port: health, readiness and metrics, then the
// seed's endpoints and the features' routes, with the WebSocket's auth.
#pragma once

#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <functional>

#include <optional>

#include "auth/token_verifier.hpp"
#include "http/rate_limiter.hpp"
#include "http/static_files.hpp"
#include "core/chat_service.hpp"
#include "core/feature_registry.hpp"
#include "metrics/metrics_registry.hpp"
#include "switchboard/bus.hpp"

namespace switchboard::host {

using HttpRequestMessage = boost::beast::http::request<boost::beast::http::string_body>;
using HttpResponseMessage = boost::beast::http::response<boost::beast::http::string_body>;

// The token from "Authorization: Bearer" or "?token=" (empty if none).
std::string request_token(const HttpRequestMessage& request);

// Who may make a request, decided from its header alone, before any body is read.
struct Admission {
  std::optional<HttpResponseMessage> refusal;  // 401 or 429, sent instead (the body is never read)
  UserId user;  // empty for the public routes (/health, /ready, /metrics, static files, /dev/token)
  bool admin = false;  // POST /admin/reload from this machine
};

// What POST /admin/reload answers: applied (or, for a dry run, would be).
struct ReloadAnswer {
  bool ok = false;
  std::string summary;  // what changed (would change), or why it was refused
};
// Runs a reload (or a dry run) off the caller's thread; `done` runs once.
// `config`: the file the caller means (empty: the host's own); a host
// running with another file refuses.
using ReloadRequest =
    std::function<void(bool dry_run, std::string config, std::function<void(ReloadAnswer)> done)>;

// What the REST API serves besides its routes.
struct RestExtras {
  const StaticFiles* files = nullptr;  // [server] static_dir, at GET /…
  bool dev_tokens = false;             // [auth] dev_tokens: POST /dev/token
  ReloadRequest reload;                // POST /admin/reload (from a loopback peer only)
};

class RestApi {
 public:
  RestApi(ChatService& chat, FeatureRegistry& features, const TokenVerifier& verifier, Clock& clock,
          MetricsRegistry& metrics, Storage& storage, Bus& bus, double requests_per_second, double burst,
          RestExtras extras = {});

  // From the request's header: the token, then the token's rate (per user).
  // `loopback_peer`: the connection comes from this machine (the admin
  // route answers nobody else).
  Admission admit(const HttpRequestMessage& header, bool loopback_peer = false);
  // The whole request, once admitted. `reply` may be called on any thread.
  void handle(const HttpRequestMessage& request, const Admission& admission,
              std::function<void(HttpResponseMessage)> reply);

 private:
  bool public_route(const HttpRequestMessage& req) const;
  HttpResponseMessage dev_token(const HttpRequestMessage& req);

  ChatService& chat_;
  FeatureRegistry& features_;
  const TokenVerifier& verifier_;
  Clock& clock_;
  MetricsRegistry& metrics_;
  Storage& storage_;
  Bus& bus_;
  Counter& requests_;
  Counter& rate_limited_;
  RateLimiter limiter_;
  RestExtras extras_;
  Counter& dev_tokens_;
};

}  // namespace switchboard::host
