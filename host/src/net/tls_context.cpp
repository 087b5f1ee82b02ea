#include "net/tls_context.hpp"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509err.h>

#include <stdexcept>

namespace switchboard::host {

namespace {

// OpenSSL's queued reasons, oldest first, on one line; the queue is emptied.
std::string openssl_errors() {
  std::string out;
  while (unsigned long e = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    out += (out.empty() ? "" : "; ") + std::string(buf);
  }
  return out.empty() ? "unknown OpenSSL error" : out;
}

[[noreturn]] void fail(const TlsConfig& config, const std::string& what) {
  throw std::runtime_error((config.where.empty() ? "" : config.where + ": ") + "server.tls: " + what + ": " +
                           openssl_errors());
}

}  // namespace

TlsContext::TlsContext(TlsConfig config) : config_(std::move(config)), loaded_(load(config_)) {}

TlsContext::Loaded TlsContext::load(const TlsConfig& config) {
  ERR_clear_error();
  std::shared_ptr<SSL_CTX> ctx(SSL_CTX_new(TLS_server_method()), SSL_CTX_free);
  if (!ctx) fail(config, "cannot create a context");
  SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
  // No TLS 1.2 renegotiation (a TLS 1.3 KeyUpdate may still make a read
  // write: Connection waits for the direction OpenSSL asks for). Partial
  // writes: a connection writes one record at a time (Connection::flush).
  SSL_CTX_set_options(ctx.get(), SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
  SSL_CTX_set_mode(ctx.get(), SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                                  SSL_MODE_RELEASE_BUFFERS);
  // An encrypted key would make OpenSSL ask for its pass phrase on the
  // terminal — blocking SIGHUP's thread. It is refused instead.
  SSL_CTX_set_default_passwd_cb(ctx.get(), [](char*, int, int, void*) { return 0; });
  if (SSL_CTX_use_certificate_chain_file(ctx.get(), config.cert.c_str()) != 1) {
    fail(config, "cert \"" + config.cert + "\" is not a readable PEM certificate chain");
  }
  if (SSL_CTX_use_PrivateKey_file(ctx.get(), config.key.c_str(), SSL_FILETYPE_PEM) != 1) {
    if (ERR_GET_REASON(ERR_peek_last_error()) == X509_R_KEY_VALUES_MISMATCH) {
      fail(config, "key \"" + config.key + "\" does not match cert \"" + config.cert + "\"");
    }
    fail(config, "key \"" + config.key + "\" is not a readable, unencrypted PEM private key");
  }
  if (SSL_CTX_check_private_key(ctx.get()) != 1) {
    fail(config, "key \"" + config.key + "\" does not match cert \"" + config.cert + "\"");
  }
  Loaded loaded;
  if (X509* leaf = SSL_CTX_get0_certificate(ctx.get())) {
    struct tm when {};
    if (ASN1_TIME_to_tm(X509_get0_notAfter(leaf), &when) == 1) loaded.not_after = timegm(&when);
  }
  loaded.context = std::move(ctx);
  return loaded;
}

std::shared_ptr<SSL_CTX> TlsContext::current() const {
  std::lock_guard lock(mutex_);
  return loaded_.context;
}

void TlsContext::commit(Loaded fresh) {
  std::lock_guard lock(mutex_);
  loaded_ = std::move(fresh);
}

std::int64_t TlsContext::not_after() const {
  std::lock_guard lock(mutex_);
  return loaded_.not_after;
}

}  // namespace switchboard::host
