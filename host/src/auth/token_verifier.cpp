#include "auth/token_verifier.hpp"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>

#include <jwt.h>

#include <array>
#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>
#include <memory>
#include <optional>

#include "switchboard/services.hpp"

namespace switchboard::host {

namespace {

struct JwtFree {
  void operator()(jwt_t* j) const { jwt_free(j); }
};
using JwtPtr = std::unique_ptr<jwt_t, JwtFree>;

Error refused(std::string why) { return Error{Errc::forbidden, std::move(why)}; }

// base64url (RFC 4648 §5), trailing '=' tolerated; false on any other byte.
bool base64url_decode(std::string_view in, std::string& out) {
  while (!in.empty() && in.back() == '=') in.remove_suffix(1);
  if (in.size() % 4 == 1) return false;
  out.clear();
  out.reserve(in.size() * 3 / 4);
  std::uint32_t bits = 0;
  int count = 0;
  for (char ch : in) {
    int v;
    if (ch >= 'A' && ch <= 'Z') v = ch - 'A';
    else if (ch >= 'a' && ch <= 'z') v = ch - 'a' + 26;
    else if (ch >= '0' && ch <= '9') v = ch - '0' + 52;
    else if (ch == '-') v = 62;
    else if (ch == '_') v = 63;
    else return false;
    bits = (bits << 6) | static_cast<std::uint32_t>(v);
    count += 6;
    if (count >= 8) {
      count -= 8;
      out.push_back(static_cast<char>((bits >> count) & 0xFF));
    }
  }
  return true;
}

// An integer claim (as libjwt reads one: a JSON integer, nothing else).
std::optional<std::int64_t> integer_claim(const boost::json::object& claims, std::string_view name) {
  const auto* v = claims.if_contains(name);
  if (!v) return std::nullopt;
  if (v->is_int64()) return v->get_int64();
  if (v->is_uint64() && v->get_uint64() <= static_cast<std::uint64_t>(INT64_MAX)) {
    return static_cast<std::int64_t>(v->get_uint64());
  }
  return std::nullopt;
}

struct MacCtxFree {
  void operator()(void* ctx) const { EVP_MAC_CTX_free(static_cast<EVP_MAC_CTX*>(ctx)); }
};

}  // namespace

TokenVerifier::TokenVerifier(AuthConfig config) : config_(std::move(config)) {
  if (config_.algorithm == "HS256") {
    alg_ = JWT_ALG_HS256;
    if (config_.secret.size() < 16) {
      throw ConfigError("auth.secret: HS256 needs a secret of at least 16 bytes");
    }
    EVP_MAC* mac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
    EVP_MAC_CTX* ctx = mac ? EVP_MAC_CTX_new(mac) : nullptr;
    EVP_MAC_free(mac);  // the context keeps its own reference
    char digest[] = "SHA256";
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0), OSSL_PARAM_END};
    if (!ctx || EVP_MAC_init(ctx, reinterpret_cast<const unsigned char*>(config_.secret.data()), config_.secret.size(),
                             params) != 1) {
      EVP_MAC_CTX_free(ctx);
      ERR_clear_error();
      throw ConfigError("auth: OpenSSL has no HMAC-SHA256 for HS256");
    }
    hmac_ = std::shared_ptr<void>(ctx, MacCtxFree{});
  } else if (config_.algorithm == "RS256") {
    alg_ = JWT_ALG_RS256;
    if (config_.public_key_pem.empty()) throw ConfigError("auth.public_key_file: RS256 needs a public key");
  } else {
    throw ConfigError("auth.algorithm: \"" + config_.algorithm + "\" is not supported (HS256 or RS256)");
  }
}

Result<UserId> TokenVerifier::verify(std::string_view token, TimeMs now_ms) const {
  if (token.empty()) return refused("no token (use ?token= or Authorization: Bearer)");
  if (alg_ == JWT_ALG_HS256) return verify_hs256(token, now_ms);
  std::string text(token);
  const std::string& key = alg_ == JWT_ALG_HS256 ? config_.secret : config_.public_key_pem;
  jwt_t* raw = nullptr;
  int rc = jwt_decode(&raw, text.c_str(), reinterpret_cast<const unsigned char*>(key.data()),
                      static_cast<int>(key.size()));
  JwtPtr jwt(raw);
  // libjwt leaves OpenSSL's reasons for a refused token in this thread's
  // queue, where the next TLS call on this worker would read them as its own.
  ERR_clear_error();
  if (rc != 0 || !jwt) return refused("invalid token (bad format or signature)");
  // libjwt verifies with whatever algorithm the token names; only ours counts.
  if (jwt_get_alg(jwt.get()) != static_cast<jwt_alg_t>(alg_)) {
    return refused(std::string("token algorithm ") + jwt_alg_str(jwt_get_alg(jwt.get())) + " is not the configured " +
                   config_.algorithm);
  }
  long now = static_cast<long>(now_ms / 1000);
  errno = 0;
  long exp = jwt_get_grant_int(jwt.get(), "exp");
  if (errno == ENOENT) return refused("token has no exp");
  if (now > exp + config_.leeway_seconds) return refused("token expired");
  errno = 0;
  long nbf = jwt_get_grant_int(jwt.get(), "nbf");
  if (errno != ENOENT && now + config_.leeway_seconds < nbf) return refused("token not valid yet (nbf)");
  const char* sub = jwt_get_grant(jwt.get(), "sub");
  if (!sub || !*sub) return refused("token has no sub");
  std::string user(sub);
  if (user.size() > 256) return refused("sub longer than 256 bytes");
  return user;
}

// header.claims.signature: the header names HS256, the signature is the
// HMAC-SHA256 of "header.claims" under the secret (compared in constant
// time), and then the claims are checked as for any algorithm.
Result<UserId> TokenVerifier::verify_hs256(std::string_view token, TimeMs now_ms) const {
  const auto invalid = [] { return refused("invalid token (bad format or signature)"); };
  auto first = token.find('.');
  auto second = first == std::string_view::npos ? first : token.find('.', first + 1);
  if (second == std::string_view::npos || token.find('.', second + 1) != std::string_view::npos) return invalid();
  std::string header, claims, signature;
  if (!base64url_decode(token.substr(0, first), header) ||
      !base64url_decode(token.substr(first + 1, second - first - 1), claims) ||
      !base64url_decode(token.substr(second + 1), signature)) {
    return invalid();
  }
  boost::system::error_code ec;
  auto head = boost::json::parse(header, ec);
  if (ec || !head.is_object()) return invalid();
  const auto* alg = head.as_object().if_contains("alg");
  if (!alg || !alg->is_string()) return invalid();
  if (alg->get_string() != "HS256") {
    return refused("token algorithm " + std::string(alg->get_string()) + " is not the configured HS256");
  }
  std::array<unsigned char, EVP_MAX_MD_SIZE> mac{};
  std::size_t mac_size = 0;
  std::unique_ptr<EVP_MAC_CTX, MacCtxFree> ctx(EVP_MAC_CTX_dup(static_cast<EVP_MAC_CTX*>(hmac_.get())));
  std::string_view signed_part = token.substr(0, second);
  bool computed = ctx &&
                  EVP_MAC_update(ctx.get(), reinterpret_cast<const unsigned char*>(signed_part.data()),
                                 signed_part.size()) == 1 &&
                  EVP_MAC_final(ctx.get(), mac.data(), &mac_size, mac.size()) == 1;
  if (!computed) {
    ERR_clear_error();
    return Error{Errc::internal, "HMAC-SHA256 failed in OpenSSL"};
  }
  if (signature.size() != mac_size || CRYPTO_memcmp(signature.data(), mac.data(), mac_size) != 0) return invalid();
  return check_claims(claims, now_ms);
}

Result<UserId> TokenVerifier::check_claims(std::string_view claims_json, TimeMs now_ms) const {
  boost::system::error_code ec;
  auto parsed = boost::json::parse(claims_json, ec);
  if (ec || !parsed.is_object()) return refused("invalid token (bad format or signature)");
  const auto& claims = parsed.as_object();
  std::int64_t now = now_ms / 1000;
  auto exp = integer_claim(claims, "exp");
  if (!exp) return refused("token has no exp");
  if (now - config_.leeway_seconds > *exp) return refused("token expired");
  auto nbf = integer_claim(claims, "nbf");
  if (nbf && now + config_.leeway_seconds < *nbf) return refused("token not valid yet (nbf)");
  const auto* sub = claims.if_contains("sub");
  if (!sub || !sub->is_string() || sub->get_string().empty()) return refused("token has no sub");
  if (sub->get_string().size() > 256) return refused("sub longer than 256 bytes");
  if (sub->get_string().find('\0') != boost::json::string::npos) return refused("sub contains a NUL byte");
  return UserId(sub->get_string());
}

std::string TokenVerifier::mint(const UserId& user, std::chrono::seconds ttl, TimeMs now_ms) const {
  const std::string& key = alg_ == JWT_ALG_HS256 ? config_.secret : config_.private_key_pem;
  if (key.empty()) throw ConfigError("auth.private_key_file: minting an RS256 token needs the private key");
  jwt_t* raw = nullptr;
  if (jwt_new(&raw) != 0) throw std::runtime_error("jwt_new failed");
  JwtPtr jwt(raw);
  long now = static_cast<long>(now_ms / 1000);
  jwt_add_grant(jwt.get(), "sub", user.c_str());
  jwt_add_grant_int(jwt.get(), "iat", now);
  jwt_add_grant_int(jwt.get(), "exp", now + static_cast<long>(ttl.count()));
  if (jwt_set_alg(jwt.get(), static_cast<jwt_alg_t>(alg_), reinterpret_cast<const unsigned char*>(key.data()),
                  static_cast<int>(key.size())) != 0) {
    throw ConfigError("auth: the signing key is not usable for " + config_.algorithm);
  }
  char* out = jwt_encode_str(jwt.get());
  ERR_clear_error();
  if (!out) throw ConfigError("auth: signing failed (is the key valid for " + config_.algorithm + "?)");
  std::string token(out);
  free(out);
  return token;
}

}  // namespace switchboard::host
