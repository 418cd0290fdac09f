// TLS client of the load generator: OpenSSL 3 over memory BIOs. See tls_client.h.
#include "tools/bench/tls_client.h"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

namespace ringmq::bench {

namespace {

std::string OpenSslErrors(const char* what) {
  std::string out = what;
  while (const unsigned long e = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof(buf));
    out += ": ";
    out += buf;
  }
  return out;
}

bool IsIpLiteral(const std::string& host) {
  unsigned char buf[16];
  return inet_pton(AF_INET, host.c_str(), buf) == 1 || inet_pton(AF_INET6, host.c_str(), buf) == 1;
}

}  // namespace

ssl_ctx_st* MakeTlsClientContext(const std::string& cafile, bool insecure, std::string* error) {
  ERR_clear_error();
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  if (ctx == nullptr) {
    *error = OpenSslErrors("SSL_CTX_new");
    return nullptr;
  }
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
  if (insecure) {
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
  } else {
    const int ok = cafile.empty() ? SSL_CTX_set_default_verify_paths(ctx)
                                  : SSL_CTX_load_verify_file(ctx, cafile.c_str());
    if (ok != 1) {
      *error = OpenSslErrors(("cannot load CA file " + cafile).c_str());
      SSL_CTX_free(ctx);
      return nullptr;
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
  }
  return ctx;
}

void FreeTlsClientContext(ssl_ctx_st* ctx) { SSL_CTX_free(ctx); }

TlsClient::TlsClient(ssl_ctx_st* ctx, const std::string& host) {
  ERR_clear_error();
  ssl_ = SSL_new(ctx);
  if (ssl_ == nullptr) {
    Fail("SSL_new");
    return;
  }
  rbio_ = BIO_new(BIO_s_mem());
  wbio_ = BIO_new(BIO_s_mem());
  if (rbio_ == nullptr || wbio_ == nullptr) {
    BIO_free(rbio_);
    BIO_free(wbio_);
    rbio_ = wbio_ = nullptr;
    Fail("BIO_new");
    return;
  }
  BIO_set_mem_eof_return(rbio_, -1);  // empty means "want more", not EOF
  SSL_set_bio(ssl_, rbio_, wbio_);
  SSL_set_connect_state(ssl_);
  if (IsIpLiteral(host)) {  // RFC 6066: no IP literals in SNI
    X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl_), host.c_str());
  } else {
    SSL_set_tlsext_host_name(ssl_, host.c_str());
    SSL_set1_host(ssl_, host.c_str());
  }
}

TlsClient::~TlsClient() { SSL_free(ssl_); }

bool TlsClient::Fail(const char* what) {
  if (!failed_) error_ = OpenSslErrors(what);
  failed_ = true;
  open_ = false;
  ERR_clear_error();
  return false;
}

void TlsClient::Drain(std::vector<uint8_t>* wire) {
  const size_t pending = BIO_ctrl_pending(wbio_);
  if (pending == 0) return;
  const size_t base = wire->size();
  wire->resize(base + pending);
  size_t n = 0;
  BIO_read_ex(wbio_, wire->data() + base, pending, &n);
  wire->resize(base + n);
}

bool TlsClient::Check(int ret, const char* what) {
  switch (SSL_get_error(ssl_, ret)) {
    case SSL_ERROR_WANT_READ:
    case SSL_ERROR_WANT_WRITE:
    case SSL_ERROR_ZERO_RETURN:  // close_notify: the TCP close follows
      return true;
    default:
      if (SSL_get_verify_result(ssl_) != X509_V_OK) {
        const std::string why = std::string("certificate verify failed: ") +
                                X509_verify_cert_error_string(SSL_get_verify_result(ssl_));
        Fail(what);
        error_ = "tls: " + why;
        return false;
      }
      return Fail(what);
  }
}

bool TlsClient::Start(std::vector<uint8_t>* wire) {
  if (failed_) return false;
  ERR_clear_error();
  const int r = SSL_do_handshake(ssl_);
  const bool ok = r == 1 || Check(r, "tls handshake");
  Drain(wire);
  return ok;
}

bool TlsClient::Feed(std::span<const uint8_t> in, std::vector<uint8_t>* app,
                     std::vector<uint8_t>* wire) {
  if (failed_) return false;
  ERR_clear_error();
  if (!in.empty()) {
    size_t n = 0;
    if (BIO_write_ex(rbio_, in.data(), in.size(), &n) != 1 || n != in.size()) {
      return Fail("BIO_write");
    }
  }
  if (!open_) {
    const int r = SSL_do_handshake(ssl_);
    if (r != 1) {
      const bool ok = Check(r, "tls handshake");
      Drain(wire);  // the next flight, or an alert
      return ok;
    }
    open_ = true;
  }
  // Decrypt straight into *app, 16 KiB (one record) at a time.
  for (;;) {
    const size_t base = app->size();
    app->resize(base + 16384);
    size_t n = 0;
    const int r = SSL_read_ex(ssl_, app->data() + base, 16384, &n);
    app->resize(base + n);
    if (r != 1) {
      const bool ok = Check(r, "tls read");
      Drain(wire);
      return ok;
    }
  }
}

bool TlsClient::Write(std::span<const uint8_t> app, std::vector<uint8_t>* wire) {
  if (!open_) return false;
  if (app.empty()) return true;
  ERR_clear_error();
  size_t n = 0;
  if (SSL_write_ex(ssl_, app.data(), app.size(), &n) != 1 || n != app.size()) {
    return Fail("tls write");
  }
  Drain(wire);
  return true;
}

std::string TlsClient::protocol() const { return ssl_ ? SSL_get_version(ssl_) : ""; }

}  // namespace ringmq::bench
