#include "auth/token_verifier.hpp"

#include <openssl/err.h>

#include <jwt.h>

#include <memory>

#include "switchboard/services.hpp"

namespace switchboard::host {

namespace {

struct JwtFree {
  void operator()(jwt_t* j) const { jwt_free(j); }
};
using JwtPtr = std::unique_ptr<jwt_t, JwtFree>;

Error refused(std::string why) { return Error{Errc::forbidden, std::move(why)}; }

}  // namespace

TokenVerifier::TokenVerifier(AuthConfig config) : config_(std::move(config)) {
  if (config_.algorithm == "HS256") {
    alg_ = JWT_ALG_HS256;
    if (config_.secret.size() < 16) {
      throw ConfigError("auth.secret: HS256 needs a secret of at least 16 bytes");
    }
  } else if (config_.algorithm == "RS256") {
    alg_ = JWT_ALG_RS256;
    if (config_.public_key_pem.empty()) throw ConfigError("auth.public_key_file: RS256 needs a public key");
  } else {
    throw ConfigError("auth.algorithm: \"" + config_.algorithm + "\" is not supported (HS256 or RS256)");
  }
}

Result<UserId> TokenVerifier::verify(std::string_view token, TimeMs now_ms) const {
  if (token.empty()) return refused("no token (use ?token= or Authorization: Bearer)");
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
