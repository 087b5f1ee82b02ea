// JWT verification: HS256 here, with a keyed HMAC prepared once (a connect
// storm verifies thousands a second; libjwt re-derives the key and parses
// with Jansson each time), RS256 and minting with Debian's libjwt. The
// configured algorithm is enforced: a token signed with another one
// (including "none", or HS256 with the RSA public key as its secret) is
// refused.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <string_view>

#include "switchboard/result.hpp"
#include "switchboard/types.hpp"

namespace switchboard::host {

struct AuthConfig {
  std::string algorithm = "HS256";  // HS256 or RS256
  std::string secret;               // HS256
  std::string public_key_pem;       // RS256: verifies
  std::string private_key_pem;      // RS256: only for `switchboard token`
  std::int64_t leeway_seconds = 5;  // clock skew allowed on exp and nbf
};

class TokenVerifier {
 public:
  // Throws ConfigError when the algorithm or keys are unusable.
  explicit TokenVerifier(AuthConfig config);

  // The user (`sub`), or Errc::forbidden with the reason.
  Result<UserId> verify(std::string_view token, TimeMs now_ms) const;

  // A token for development and tests. Throws ConfigError without a signing key.
  std::string mint(const UserId& user, std::chrono::seconds ttl, TimeMs now_ms) const;

 private:
  Result<UserId> verify_hs256(std::string_view token, TimeMs now_ms) const;
  Result<UserId> check_claims(std::string_view claims_json, TimeMs now_ms) const;

  AuthConfig config_;
  int alg_;  // jwt_alg_t
  std::shared_ptr<void> hmac_;  // HS256: an EVP_MAC_CTX keyed with the secret, copied per token
};

}  // namespace switchboard::host
