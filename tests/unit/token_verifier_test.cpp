// Token verification against tokens made with libjwt directly, including
// the classic attacks: alg none, and HS256 signed with the RSA public key.
#include "auth/token_verifier.hpp"

#include <gtest/gtest.h>
#include <jwt.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <chrono>
#include <fstream>
#include <sstream>

#include "support/process.hpp"
#include "switchboard/services.hpp"

namespace switchboard::host {
namespace {

using testing::TempDir;

constexpr const char* kSecret = "unit-test-secret-0123456789";

long now_s() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}
TimeMs now_ms() { return now_s() * 1000; }

struct Claims {
  std::string sub = "alice";
  std::optional<long> exp = now_s() + 3600;
  std::optional<long> nbf;
};

std::string make_token(jwt_alg_t alg, const std::string& key, const Claims& c) {
  jwt_t* jwt = nullptr;
  jwt_new(&jwt);
  if (!c.sub.empty()) jwt_add_grant(jwt, "sub", c.sub.c_str());
  if (c.exp) jwt_add_grant_int(jwt, "exp", *c.exp);
  if (c.nbf) jwt_add_grant_int(jwt, "nbf", *c.nbf);
  jwt_set_alg(jwt, alg, key.empty() ? nullptr : reinterpret_cast<const unsigned char*>(key.data()),
              static_cast<int>(key.size()));
  char* out = jwt_encode_str(jwt);
  std::string token = out ? out : "";
  free(out);
  jwt_free(jwt);
  return token;
}

std::string read(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

TokenVerifier hs256() {
  AuthConfig c;
  c.secret = kSecret;
  return TokenVerifier(c);
}

TEST(TokenVerifier, AcceptsAValidHs256TokenAndReturnsSub) {
  auto user = hs256().verify(make_token(JWT_ALG_HS256, kSecret, {}), now_ms());
  ASSERT_TRUE(user.ok()) << user.error().message;
  EXPECT_EQ(user.value(), "alice");
}

TEST(TokenVerifier, RefusesBadSignaturesAndGarbage) {
  EXPECT_FALSE(hs256().verify(make_token(JWT_ALG_HS256, "another-secret-0123456789", {}), now_ms()).ok());
  EXPECT_FALSE(hs256().verify("not-a-token", now_ms()).ok());
  EXPECT_FALSE(hs256().verify("", now_ms()).ok());
  auto tampered = make_token(JWT_ALG_HS256, kSecret, {});
  tampered[tampered.find('.') + 3] ^= 1;
  EXPECT_FALSE(hs256().verify(tampered, now_ms()).ok());
}

std::string base64url(std::string_view in, bool pad = false) {
  static const char* kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  std::size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    std::uint32_t v = (std::uint8_t(in[i]) << 16) | (std::uint8_t(in[i + 1]) << 8) | std::uint8_t(in[i + 2]);
    for (int k = 18; k >= 0; k -= 6) out.push_back(kAlphabet[(v >> k) & 63]);
  }
  if (in.size() - i == 1) {
    std::uint32_t v = std::uint8_t(in[i]) << 16;
    out += {kAlphabet[(v >> 18) & 63], kAlphabet[(v >> 12) & 63]};
    if (pad) out += "==";
  } else if (in.size() - i == 2) {
    std::uint32_t v = (std::uint8_t(in[i]) << 16) | (std::uint8_t(in[i + 1]) << 8);
    out += {kAlphabet[(v >> 18) & 63], kAlphabet[(v >> 12) & 63], kAlphabet[(v >> 6) & 63]};
    if (pad) out += "=";
  }
  return out;
}

// A token of exactly this header and these claims, HMAC-SHA256 signed.
std::string signed_token(const std::string& header, const std::string& claims, const std::string& key = kSecret,
                         bool pad = false) {
  std::string part = base64url(header, pad) + "." + base64url(claims, pad);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(part.data()),
       part.size(), mac, &size);
  return part + "." + base64url(std::string_view(reinterpret_cast<const char*>(mac), size), pad);
}

TEST(TokenVerifier, Hs256ReadsTokensExactlyAsTheStandardSays) {
  const std::string hs = R"({"alg":"HS256","typ":"JWT"})";
  const std::string exp = std::to_string(now_s() + 600);
  auto verdict = [](const std::string& token) {
    auto r = hs256().verify(token, now_ms());
    return r.ok() ? "ok:" + r.value() : r.error().message;
  };
  EXPECT_EQ(verdict(signed_token(hs, R"({"sub":"ann","exp":)" + exp + "}")), "ok:ann");
  EXPECT_EQ(verdict(signed_token(R"({"kid":"k1","alg":"HS256"})", R"({"sub":"ann","exp":)" + exp + "}")), "ok:ann")
      << "other header fields do not matter";
  EXPECT_EQ(verdict(signed_token(hs, R"({"sub":"ann","exp":)" + exp + "}", kSecret, true)), "ok:ann")
      << "padding is tolerated";
  EXPECT_EQ(verdict(signed_token(hs, R"({"sub":"ann","exp":9223372036854775807})")), "ok:ann");
  // What is refused, and why.
  EXPECT_EQ(verdict(make_token(JWT_ALG_HS512, kSecret, {})), "token algorithm HS512 is not the configured HS256");
  EXPECT_EQ(verdict(signed_token(R"({"alg":"none"})", R"({"sub":"ann","exp":)" + exp + "}")),
            "token algorithm none is not the configured HS256");
  EXPECT_EQ(verdict(signed_token(hs, R"({"sub":"ann","exp":")" + exp + R"("})")), "token has no exp")
      << "exp must be a number";
  EXPECT_EQ(verdict(signed_token(hs, R"({"sub":"ann","exp":1e12})")), "token has no exp") << "an integer";
  EXPECT_EQ(verdict(signed_token(hs, R"({"sub":7,"exp":)" + exp + "}")), "token has no sub");
  EXPECT_EQ(verdict(signed_token(hs, R"({"sub":"a\u0000b","exp":)" + exp + "}")), "sub contains a NUL byte");
  EXPECT_EQ(verdict(signed_token(hs, R"({"sub":")" + std::string(257, 's') + R"(","exp":)" + exp + "}")),
            "sub longer than 256 bytes");
  const std::string invalid = "invalid token (bad format or signature)";
  auto good = signed_token(hs, R"({"sub":"ann","exp":)" + exp + "}");
  EXPECT_EQ(verdict(good + ".x"), invalid) << "four parts";
  EXPECT_EQ(verdict(good.substr(0, good.size() - 2)), invalid) << "a short signature";
  EXPECT_EQ(verdict(good.substr(0, good.rfind('.') + 1)), invalid) << "no signature";
  EXPECT_EQ(verdict(signed_token("not json", R"({"sub":"ann","exp":)" + exp + "}")), invalid);
  EXPECT_EQ(verdict(signed_token(hs, "[1,2]")), invalid) << "claims not an object";
  EXPECT_EQ(verdict("a*b.c.d"), invalid) << "not base64url";
}

TEST(TokenVerifier, RefusesAlgNone) {
  auto r = hs256().verify(make_token(JWT_ALG_NONE, "", {}), now_ms());
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.code(), Errc::forbidden);
}

TEST(TokenVerifier, ChecksExpAndNbfWithLeeway) {
  auto expired = hs256().verify(make_token(JWT_ALG_HS256, kSecret, {.exp = now_s() - 60}), now_ms());
  ASSERT_FALSE(expired.ok());
  EXPECT_EQ(expired.error().message, "token expired");
  EXPECT_TRUE(hs256().verify(make_token(JWT_ALG_HS256, kSecret, {.exp = now_s() - 2}), now_ms()).ok())
      << "within the 5 s leeway";
  auto early = hs256().verify(make_token(JWT_ALG_HS256, kSecret, {.nbf = now_s() + 600}), now_ms());
  ASSERT_FALSE(early.ok());
  EXPECT_NE(early.error().message.find("nbf"), std::string::npos);
  EXPECT_TRUE(hs256().verify(make_token(JWT_ALG_HS256, kSecret, {.nbf = now_s() - 10}), now_ms()).ok());
  EXPECT_FALSE(hs256().verify(make_token(JWT_ALG_HS256, kSecret, {.exp = std::nullopt}), now_ms()).ok()) << "no exp";
  EXPECT_FALSE(hs256().verify(make_token(JWT_ALG_HS256, kSecret, {.sub = ""}), now_ms()).ok()) << "no sub";
}

TEST(TokenVerifier, Rs256VerifiesWithThePublicKeyAndRefusesAlgorithmConfusion) {
  TempDir dir;
  std::string priv = dir.path() + "/private.pem", pub = dir.path() + "/public.pem";
  std::string other = dir.path() + "/other.pem";
  ASSERT_EQ(std::system(("openssl genrsa -out " + priv + " 2048 2>/dev/null && openssl rsa -in " + priv +
                         " -pubout -out " + pub + " 2>/dev/null && openssl genrsa -out " + other + " 2048 2>/dev/null")
                            .c_str()),
            0);
  AuthConfig c;
  c.algorithm = "RS256";
  c.public_key_pem = read(pub);
  c.private_key_pem = read(priv);
  TokenVerifier rs(c);
  auto minted = rs.mint("bob", std::chrono::minutes(5), now_ms());
  auto user = rs.verify(minted, now_ms());
  ASSERT_TRUE(user.ok()) << user.error().message;
  EXPECT_EQ(user.value(), "bob");
  EXPECT_FALSE(rs.verify(make_token(JWT_ALG_RS256, read(other), {}), now_ms()).ok()) << "signed by another key";
  // The public key is public: an HS256 token "signed" with it must not pass.
  auto confused = rs.verify(make_token(JWT_ALG_HS256, c.public_key_pem, {}), now_ms());
  ASSERT_FALSE(confused.ok());
  EXPECT_NE(confused.error().message.find("not the configured RS256"), std::string::npos) << confused.error().message;
}

TEST(TokenVerifier, RefusesUnusableConfigs) {
  AuthConfig weak;
  weak.secret = "short";
  EXPECT_THROW(TokenVerifier{weak}, ConfigError);
  AuthConfig unknown;
  unknown.algorithm = "ES256";
  unknown.secret = kSecret;
  EXPECT_THROW(TokenVerifier{unknown}, ConfigError);
  AuthConfig nokey;
  nokey.algorithm = "RS256";
  EXPECT_THROW(TokenVerifier{nokey}, ConfigError);
}

}  // namespace
}  // namespace switchboard::host
