#include "http/rest_api.hpp"

#include "config/host_config.hpp"

#include <boost/beast/http/field.hpp>
#include <cmath>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/url/parse.hpp>

#include "protocol/json_codec.hpp"

namespace switchboard::host {

namespace http = boost::beast::http;
namespace json = boost::json;

namespace {

HttpResponseMessage respond(const HttpRequestMessage& req, http::status status, std::string body,
                            std::string_view type = "application/json") {
  HttpResponseMessage res{status, req.version()};
  res.set(http::field::server, "switchboard");
  res.set(http::field::content_type, type);
  res.set(http::field::cache_control, "no-store");
  res.keep_alive(req.keep_alive());
  res.body() = std::move(body);
  res.prepare_payload();
  return res;
}

// A Host or Origin naming this machine (localhost or a loopback address, any port).
bool names_this_machine(std::string_view host) {
  return loopback_address(host) || host == "localhost" || host.starts_with("localhost:");
}

// A proxy on this machine says it forwards someone else's request.
bool says_forwarded(const HttpRequestMessage& req) {
  return req.count(http::field::forwarded) || req.count("X-Forwarded-For") || req.count("X-Real-IP");
}

// What an answer needs of its request, kept past the request's lifetime.
HttpRequestMessage head_of(const HttpRequestMessage& req) {
  HttpRequestMessage head;
  head.version(req.version());
  head.keep_alive(req.keep_alive());
  return head;
}

HttpResponseMessage error(const HttpRequestMessage& req, Errc code, std::string_view message) {
  return respond(req, static_cast<http::status>(http_status(code)), error_body(error_code(code), message));
}

struct Target {
  std::vector<std::string> segments;  // decoded
  json::object query;
};

std::optional<Target> parse_target(std::string_view target) {
  auto url = boost::urls::parse_origin_form(target);
  if (!url) return std::nullopt;
  Target t;
  for (auto seg : url->segments()) {
    if (!seg.empty()) t.segments.push_back(seg);
  }
  for (auto param : url->params()) {
    if (param.has_value) t.query[param.key] = param.value;
  }
  return t;
}

}  // namespace

std::string request_token(const HttpRequestMessage& request) {
  auto auth = request[http::field::authorization];
  if (auth.size() > 7 && (auth.substr(0, 7) == "Bearer " || auth.substr(0, 7) == "bearer ")) {
    return std::string(auth.substr(7));
  }
  if (auto url = boost::urls::parse_origin_form(request.target())) {
    for (auto param : url->params()) {
      if (param.key == "token") return param.value;
    }
  }
  return {};
}

RestApi::RestApi(ChatService& chat, FeatureRegistry& features, const TokenVerifier& verifier, Clock& clock,
                 MetricsRegistry& metrics, Storage& storage, Bus& bus, double requests_per_second,
                 double burst, RestExtras extras)
    : chat_(chat),
      features_(features),
      verifier_(verifier),
      clock_(clock),
      metrics_(metrics),
      storage_(storage),
      bus_(bus),
      requests_(metrics.counter("http_requests_total", "REST requests answered")),
      rate_limited_(metrics.counter("http_rate_limited_total", "REST requests refused with 429 (per-user rate)")),
      limiter_(requests_per_second, burst),
      extras_(extras),
      dev_tokens_(metrics.counter("http_dev_tokens_total", "tokens minted at POST /dev/token ([auth] dev_tokens)")) {}

bool RestApi::public_route(const HttpRequestMessage& req) const {
  auto url = boost::urls::parse_origin_form(req.target());
  if (!url) return false;
  auto path = url->path();
  auto method = req.method();
  if (method == http::verb::post) return extras_.dev_tokens && path == "/dev/token";
  if (method == http::verb::get && (path == "/health" || path == "/ready" || path == "/metrics")) return true;
  // A request with a token is the API's, even where a file has its name.
  return (method == http::verb::get || method == http::verb::head) && extras_.files && request_token(req).empty() &&
         extras_.files->find(path);
}

Admission RestApi::admit(const HttpRequestMessage& req, bool loopback_peer) {
  Admission a;
  if (public_route(req)) return a;
  if (auto url = boost::urls::parse_origin_form(req.target()); url && url->path() == "/admin/reload") {
    // The operator's own machine, not a page in its browser: a loopback
    // peer, a loopback Host, no Origin (a browser sends one, and cannot add
    // X-Switchboard-Admin across origins without a preflight this host
    // never grants), and no proxy saying it forwards.
    std::string why;
    if (!extras_.reload) {
      why = "POST /admin/reload is off: set [server] admin_api = true to use switchboard reload (SIGHUP always works)";
    } else if (req.method() != http::verb::post) {
      why = "the admin API takes POST only";
    } else if (!loopback_peer || !names_this_machine(req[http::field::host]) || says_forwarded(req) ||
               req.count(http::field::origin) ||
               !req.count("X-Switchboard-Admin")) {
      why = "POST /admin/reload answers switchboard reload on this machine only (a loopback connection, a loopback "
            "Host, X-Switchboard-Admin, no Origin, no forwarding header)";
    } else {
      a.admin = true;
      return a;
    }
    auto res = respond(req, http::status::forbidden, error_body("forbidden", why));
    res.keep_alive(false);
    a.refusal = std::move(res);
    return a;
  }
  auto user = verifier_.verify(request_token(req), clock_.now_ms());
  if (!user) {
    auto res = respond(req, http::status::unauthorized, error_body("unauthorized", user.error().message));
    res.set(http::field::www_authenticate, "Bearer");
    res.keep_alive(false);  // its body, if any, is never read
    a.refusal = std::move(res);
    return a;
  }
  if (!limiter_.take(user.value())) {
    rate_limited_.add();
    auto wait = static_cast<long>(std::ceil(limiter_.wait_seconds(user.value())));
    auto res = respond(req, http::status::too_many_requests,
                       error_body("rate_limited", "too many requests for this user; retry after " +
                                                      std::to_string(std::max(1L, wait)) + " s"));
    res.set(http::field::retry_after, std::to_string(std::max(1L, wait)));
    res.keep_alive(false);
    a.refusal = std::move(res);
    return a;
  }
  a.user = user.value();
  return a;
}

void RestApi::handle(const HttpRequestMessage& req, const Admission& admission,
                     std::function<void(HttpResponseMessage)> reply) {
  requests_.add();
  auto target = parse_target(req.target());
  if (!target) return reply(error(req, Errc::bad_request, "malformed request target"));
  const auto& seg = target->segments;
  auto method = req.method();

  if (method == http::verb::get && seg.size() == 1 && seg[0] == "health") {
    return reply(respond(req, http::status::ok, R"({"status":"ok"})"));
  }
  if (method == http::verb::get && seg.size() == 1 && seg[0] == "ready") {
    Health s = storage_.health();
    Health b = bus_.health();
    json::object o;
    o["ready"] = s.ok && b.ok;
    o["storage"] = json::object{{"ok", s.ok}, {"detail", s.detail}};
    o["bus"] = json::object{{"ok", b.ok}, {"detail", b.detail}};
    return reply(respond(req, s.ok && b.ok ? http::status::ok : http::status::service_unavailable, json::serialize(o)));
  }
  if (method == http::verb::get && seg.size() == 1 && seg[0] == "metrics") {
    return reply(respond(req, http::status::ok, metrics_.render(), "text/plain; version=0.0.4"));
  }

  if (admission.admin) {
    const auto* dry = target->query.if_contains("dry_run");
    std::string dry_value = dry && dry->is_string() ? std::string(dry->as_string()) : "";
    if (dry && dry_value != "1" && dry_value != "true" && dry_value != "0" && dry_value != "false") {
      return reply(error(req, Errc::bad_request, "dry_run: 1 or 0"));
    }
    bool dry_run = dry_value == "1" || dry_value == "true";
    std::string config;
    std::error_code ec;
    auto body = json::parse(req.body(), ec);
    if (!ec && body.is_object()) {
      if (const auto* c = body.as_object().if_contains("config"); c && c->is_string()) config = c->as_string();
    }
    auto head = head_of(req);
    return extras_.reload(dry_run, std::move(config), [reply, head, dry_run](ReloadAnswer answer) {
      json::object o;
      o[dry_run ? "would_apply" : "applied"] = answer.ok;
      o[answer.ok ? "changes" : "error"] = answer.summary;
      reply(respond(head, answer.ok ? http::status::ok : http::status::conflict, json::serialize(o)));
    });
  }
  if (admission.user.empty()) {
    if (method == http::verb::post && extras_.dev_tokens && seg.size() == 2 && seg[0] == "dev" && seg[1] == "token") {
      return reply(dev_token(req));
    }
    if ((method == http::verb::get || method == http::verb::head) && extras_.files) {
      auto url = boost::urls::parse_origin_form(req.target());
      if (const StaticFiles::File* file = extras_.files->find(url->path())) {
        bool head = method == http::verb::head;
        auto res = respond(req, http::status::ok, head ? std::string() : file->content, file->content_type);
        if (head) res.content_length(file->content.size());
        res.set(http::field::cache_control, "no-cache");
        res.set("X-Content-Type-Options", "nosniff");
        return reply(std::move(res));
      }
    }
    return reply(error(req, Errc::not_found, "no such route"));
  }
  Caller caller{admission.user, 0};

  json::object args = target->query;
  if (method == http::verb::post || method == http::verb::put) {
    if (!req.body().empty()) {
      std::error_code ec;
      json::value body = json::parse(req.body(), ec);
      if (ec || !body.is_object()) return reply(error(req, Errc::bad_request, "body: expected a JSON object"));
      for (auto& [k, v] : body.as_object()) args[k] = v;
    }
  }
  auto answer = [reply, &req](http::status ok_status) {
    return [reply, head = head_of(req), ok_status](Result<json::value> r) {
      if (!r) return reply(error(head, r.code(), r.error().message));
      http::status status = ok_status;
      // A replayed create or send is not a new resource.
      if (status == http::status::created && r->is_object()) {
        const auto& o = r->as_object();
        if ((o.contains("created") && !o.at("created").as_bool()) ||
            (o.contains("duplicate") && o.at("duplicate").as_bool())) {
          status = http::status::ok;
        }
      }
      reply(respond(head, status, json::serialize(r.value())));
    };
  };

  // The core's routes: one operation each, answered in one place below.
  ChatService::Operation op = nullptr;
  http::status ok = http::status::ok;
  auto route_to = [&](ChatService::Operation o, http::status status) {
    op = o;
    ok = status;
  };
  bool conversations = !seg.empty() && seg[0] == "conversations";
  bool messages = !seg.empty() && seg[0] == "messages";
  if (conversations && seg.size() == 1) {
    if (method == http::verb::get) route_to(&ChatService::list_conversations, http::status::ok);
    if (method == http::verb::post) route_to(&ChatService::create_conversation, http::status::created);
  }
  // "/conversations/<id>/…" is the core's; other names ("unread") may be a feature's.
  bool numeric = seg.size() >= 2 && !seg[1].empty() && seg[1].find_first_not_of("0123456789") == std::string::npos;
  if (conversations && seg.size() >= 2 && numeric) {
    args["conversation_id"] = seg[1];
    if (seg.size() == 2 && method == http::verb::get) route_to(&ChatService::get_conversation, http::status::ok);
    if (seg.size() == 3 && seg[2] == "messages") {
      if (method == http::verb::get) route_to(&ChatService::history, http::status::ok);
      if (method == http::verb::post) {
        if (auto key = req["Idempotency-Key"]; !key.empty() && !args.contains("client_key")) args["client_key"] = key;
        route_to(&ChatService::send_message, http::status::created);
      }
    }
    if (seg.size() == 3 && seg[2] == "members" && method == http::verb::post) {
      route_to(&ChatService::add_member, http::status::created);
    }
  }
  if (messages && seg.size() == 2) {
    args["message_id"] = seg[1];
    if (method == http::verb::put) route_to(&ChatService::edit_message, http::status::ok);
    if (method == http::verb::delete_) route_to(&ChatService::delete_message, http::status::ok);
  }
  if (op) return (chat_.*op)(caller, std::move(args)).answer(answer(ok), chat_.faults());

  std::string path = "/";
  for (std::size_t i = 0; i < seg.size(); ++i) path += (i ? "/" : "") + seg[i];
  auto route = features_.for_route(std::string(http::to_string(method)), boost::urls::parse_origin_form(req.target())->encoded_path());
  if (route.feature) {
    HttpRequest request{http::to_string(method), path, route.params, req.body()};
    features_.handle_http(*route.feature, caller, request, [reply, head = head_of(req)](HttpResponse r) {
      reply(respond(head, static_cast<http::status>(r.status), std::move(r.body)));
    });
    return;
  }
  reply(error(req, Errc::not_found, "no route for " + std::string(http::to_string(method)) + " " + path));
}

// Development only ([auth] dev_tokens, HS256, loopback listener): whoever
// asks is whoever they say.
HttpResponseMessage RestApi::dev_token(const HttpRequestMessage& req) {
  // Only pages of this machine: a rebound DNS name reaching the loopback
  // listener carries its own Host (or Origin), and a reverse proxy on this
  // machine says it forwards.
  std::string_view origin = req[http::field::origin];
  if (origin.starts_with("http://")) origin.remove_prefix(7);
  else if (origin.starts_with("https://")) origin.remove_prefix(8);
  if (!names_this_machine(req[http::field::host]) || (!origin.empty() && !names_this_machine(origin)) ||
      says_forwarded(req)) {
    return error(req, Errc::forbidden,
                 "dev tokens are only for pages of this machine (Host and Origin localhost or 127.x, not forwarded)");
  }
  std::error_code ec;
  json::value body = json::parse(req.body(), ec);
  const json::string* user = nullptr;
  if (!ec && body.is_object()) {
    if (auto* u = body.as_object().if_contains("user_id")) user = u->if_string();
  }
  auto control = [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; };
  if (!user || user->empty() || user->size() > 256 || std::any_of(user->begin(), user->end(), control)) {
    return error(req, Errc::bad_request, "user_id: expected a string of 1 to 256 bytes, no control characters");
  }
  constexpr std::chrono::hours ttl{12};
  TimeMs now = clock_.now_ms();
  json::object o;
  o["token"] = verifier_.mint(std::string(*user), ttl, now);
  o["user_id"] = *user;
  o["expires_at"] = now + std::chrono::duration_cast<std::chrono::milliseconds>(ttl).count();
  dev_tokens_.add();
  return respond(req, http::status::ok, json::serialize(o));
}

}  // namespace switchboard::host
