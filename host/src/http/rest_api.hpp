// The REST API on the server's port: health, readiness and metrics, then the
// seed's endpoints and the features' routes, with the WebSocket's auth.
#pragma once

#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <functional>

#include "auth/token_verifier.hpp"
#include "core/chat_service.hpp"
#include "core/feature_registry.hpp"
#include "metrics/metrics_registry.hpp"
#include "switchboard/bus.hpp"

namespace switchboard::host {

using HttpRequestMessage = boost::beast::http::request<boost::beast::http::string_body>;
using HttpResponseMessage = boost::beast::http::response<boost::beast::http::string_body>;

// The token from "Authorization: Bearer" or "?token=" (empty if none).
std::string request_token(const HttpRequestMessage& request);

class RestApi {
 public:
  RestApi(ChatService& chat, FeatureRegistry& features, const TokenVerifier& verifier, Clock& clock,
          MetricsRegistry& metrics, Storage& storage, Bus& bus);

  // `reply` may be called on any thread.
  void handle(const HttpRequestMessage& request, std::function<void(HttpResponseMessage)> reply);

 private:
  ChatService& chat_;
  FeatureRegistry& features_;
  const TokenVerifier& verifier_;
  Clock& clock_;
  MetricsRegistry& metrics_;
  Storage& storage_;
  Bus& bus_;
  Counter& requests_;
};

}  // namespace switchboard::host
