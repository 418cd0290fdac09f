#include "net/tls.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <cassert>
#include <utility>

namespace ringmq::net {
namespace {

// Drains this thread's OpenSSL error queue into "prefix: reason; reason".
std::string OpenSslErrors(std::string_view prefix) {
  std::string s(prefix);
  bool first = true;
  while (const unsigned long e = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof(buf));
    s += first ? ": " : "; ";
    s += buf;
    first = false;
  }
  return s;
}

// An encrypted key would make OpenSSL prompt on the terminal; answer "no password" instead.
int NoPassword(char*, int, int, void*) { return 0; }

constexpr unsigned char kSessionIdContext[] = "ringmq";

// Builds a server SSL_CTX from `config`; "" with *out set, or the error.
std::string BuildContext(const TlsConfig& config, SSL_CTX** out) {
  ERR_clear_error();
  SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
  if (ctx == nullptr) return OpenSslErrors("SSL_CTX_new");
  auto fail = [&](const std::string& what) {
    SSL_CTX_free(ctx);
    return OpenSslErrors(what);
  };
  if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1) return fail("TLS 1.2 minimum");
  SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
  SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
  SSL_CTX_set_default_passwd_cb(ctx, NoPassword);
  const std::string& ciphers = config.ciphers.empty() ? kDefaultTlsCiphers : config.ciphers;
  if (SSL_CTX_set_cipher_list(ctx, ciphers.c_str()) != 1) return fail("cipher list " + ciphers);
  if (!config.ciphersuites.empty() &&
      SSL_CTX_set_ciphersuites(ctx, config.ciphersuites.c_str()) != 1) {
    return fail("ciphersuites " + config.ciphersuites);
  }
  if (SSL_CTX_use_certificate_chain_file(ctx, config.cert_file.c_str()) != 1) {
    return fail("certificate " + config.cert_file);
  }
  if (SSL_CTX_use_PrivateKey_file(ctx, config.key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
    return fail("private key " + config.key_file);
  }
  if (SSL_CTX_check_private_key(ctx) != 1) {
    return fail("private key " + config.key_file + " does not match " + config.cert_file);
  }
  // Needed for session resumption when client certificates are verified; harmless otherwise.
  SSL_CTX_set_session_id_context(ctx, kSessionIdContext, sizeof(kSessionIdContext) - 1);
  if (!config.ca_file.empty()) {
    if (SSL_CTX_load_verify_file(ctx, config.ca_file.c_str()) != 1) {
      return fail("CA file " + config.ca_file);
    }
    STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(config.ca_file.c_str());
    if (names == nullptr) return fail("CA names in " + config.ca_file);
    SSL_CTX_set_client_CA_list(ctx, names);  // takes ownership
    SSL_CTX_set_verify(
        ctx, SSL_VERIFY_PEER | (config.require_client_cert ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0),
        nullptr);
  }
  *out = ctx;
  return "";
}

}  // namespace

// --- TlsContext ---

TlsContext::~TlsContext() { SSL_CTX_free(ctx_); }

std::string TlsContext::Load(const TlsConfig& config) {
  SSL_CTX* ctx = nullptr;
  std::string error = BuildContext(config, &ctx);
  if (!error.empty()) return error;
  SSL_CTX_set_tlsext_servername_callback(ctx, OnServerName);
  SSL_CTX_set_tlsext_servername_arg(ctx, this);
  SSL_CTX_free(ctx_);  // live sessions hold their own reference
  ctx_ = ctx;
  config_ = config;
  return "";
}

std::string TlsContext::Reload() {
  assert(loaded());
  const TlsConfig config = config_;
  return Load(config);
}

int TlsContext::OnServerName(SSL* ssl, int* alert, void* arg) {
  const auto* self = static_cast<const TlsContext*>(arg);
  const char* name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
  if (!self->sni_hook_ || name == nullptr) return SSL_TLSEXT_ERR_OK;
  const TlsContext* chosen = self->sni_hook_(name);
  if (chosen == nullptr || !chosen->loaded()) {
    *alert = SSL_AD_UNRECOGNIZED_NAME;
    return SSL_TLSEXT_ERR_ALERT_FATAL;
  }
  if (chosen != self && SSL_set_SSL_CTX(ssl, chosen->ctx_) == nullptr) {
    *alert = SSL_AD_INTERNAL_ERROR;
    return SSL_TLSEXT_ERR_ALERT_FATAL;
  }
  return SSL_TLSEXT_ERR_OK;
}

// --- TlsSession ---

TlsSession::~TlsSession() { Release(); }

TlsSession::TlsSession(TlsSession&& other) noexcept
    : ssl_(std::exchange(other.ssl_, nullptr)),
      rbio_(std::exchange(other.rbio_, nullptr)),
      wbio_(std::exchange(other.wbio_, nullptr)),
      state_(std::exchange(other.state_, TlsState::kIdle)),
      error_(std::move(other.error_)) {}

TlsSession& TlsSession::operator=(TlsSession&& other) noexcept {
  if (this != &other) {
    Release();
    ssl_ = std::exchange(other.ssl_, nullptr);
    rbio_ = std::exchange(other.rbio_, nullptr);
    wbio_ = std::exchange(other.wbio_, nullptr);
    state_ = std::exchange(other.state_, TlsState::kIdle);
    error_ = std::move(other.error_);
  }
  return *this;
}

void TlsSession::Release() {
  SSL_free(ssl_);  // frees both BIOs
  ssl_ = nullptr;
  rbio_ = wbio_ = nullptr;
}

std::string TlsSession::Start(const TlsContext& context) {
  assert(context.loaded() && state_ == TlsState::kIdle);
  ERR_clear_error();
  ssl_ = SSL_new(context.raw());
  rbio_ = BIO_new(BIO_s_mem());
  wbio_ = BIO_new(BIO_s_mem());
  if (ssl_ == nullptr || rbio_ == nullptr || wbio_ == nullptr) {
    BIO_free(rbio_);
    BIO_free(wbio_);
    rbio_ = wbio_ = nullptr;
    Release();
    return OpenSslErrors("TLS session");
  }
  // An empty memory BIO means "no data yet" (retry), not end of file.
  BIO_set_mem_eof_return(rbio_, -1);
  BIO_set_mem_eof_return(wbio_, -1);
  SSL_set_bio(ssl_, rbio_, wbio_);
  SSL_set_accept_state(ssl_);
  state_ = TlsState::kHandshake;
  return "";
}

TlsState TlsSession::Feed(std::span<const uint8_t> in, std::vector<uint8_t>* app,
                          std::vector<uint8_t>* wire) {
  assert(app != wire);
  if (state_ != TlsState::kHandshake && state_ != TlsState::kOpen) return state_;
  ERR_clear_error();
  if (!in.empty()) {
    size_t written = 0;
    if (BIO_write_ex(rbio_, in.data(), in.size(), &written) != 1 || written != in.size()) {
      Fail("buffering input");
      return state_;
    }
  }
  if (state_ == TlsState::kHandshake) {
    const int r = SSL_do_handshake(ssl_);
    if (r == 1) {
      state_ = TlsState::kOpen;
    } else {
      const int e = SSL_get_error(ssl_, r);
      if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) Fail("handshake");
    }
  }
  if (state_ == TlsState::kOpen) ReadApp(app);
  Drain(wire);
  return state_;
}

void TlsSession::ReadApp(std::vector<uint8_t>* app) {
  // Decrypt through a stack buffer: growing *app by a guessed size would zero-fill memory that
  // is mostly not used.
  uint8_t buf[16 * 1024];
  for (;;) {
    size_t n = 0;
    const int r = SSL_read_ex(ssl_, buf, sizeof(buf), &n);
    if (r == 1) {
      app->insert(app->end(), buf, buf + n);
      continue;
    }
    const int e = SSL_get_error(ssl_, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return;
    if (e == SSL_ERROR_ZERO_RETURN) {  // the peer's close_notify: answer it
      SSL_shutdown(ssl_);
      state_ = TlsState::kClosed;
      return;
    }
    Fail("read");
    return;
  }
}

bool TlsSession::Write(std::span<const uint8_t> app, std::vector<uint8_t>* wire) {
  if (state_ != TlsState::kOpen) return false;
  if (app.empty()) return true;
  ERR_clear_error();
  size_t written = 0;
  // A memory BIO always has room, so OpenSSL takes everything at once.
  const int r = SSL_write_ex(ssl_, app.data(), app.size(), &written);
  if (r != 1 || written != app.size()) {
    Fail("write");
    Drain(wire);
    return false;
  }
  Drain(wire);
  return true;
}

void TlsSession::Shutdown(std::vector<uint8_t>* wire) {
  if (state_ == TlsState::kOpen) {
    ERR_clear_error();
    SSL_shutdown(ssl_);  // 0: close_notify sent, the peer's not awaited
    Drain(wire);
  }
  if (state_ != TlsState::kFailed) state_ = TlsState::kClosed;
}

void TlsSession::Drain(std::vector<uint8_t>* wire) {
  const size_t pending = BIO_ctrl_pending(wbio_);
  if (pending == 0) return;
  const size_t at = wire->size();
  wire->resize(at + pending);
  size_t n = 0;
  if (BIO_read_ex(wbio_, wire->data() + at, pending, &n) != 1) n = 0;
  wire->resize(at + n);
}

void TlsSession::Fail(const char* what) {
  state_ = TlsState::kFailed;
  error_ = OpenSslErrors(std::string("TLS ") + what);
  if (error_.find(':') == std::string::npos) error_ += ": connection error";
}

std::string TlsSession::protocol() const { return ssl_ ? SSL_get_version(ssl_) : ""; }

std::string TlsSession::cipher() const {
  const char* c = ssl_ ? SSL_get_cipher_name(ssl_) : nullptr;
  return c ? c : "";
}

std::string TlsSession::server_name() const {
  const char* n = ssl_ ? SSL_get_servername(ssl_, TLSEXT_NAMETYPE_host_name) : nullptr;
  return n ? n : "";
}

std::string TlsSession::peer_subject() const {
  X509* cert = ssl_ ? SSL_get0_peer_certificate(ssl_) : nullptr;
  if (cert == nullptr) return "";
  BIO* bio = BIO_new(BIO_s_mem());
  if (bio == nullptr) return "";
  X509_NAME_print_ex(bio, X509_get_subject_name(cert), 0, XN_FLAG_RFC2253);
  char* data = nullptr;
  const long len = BIO_get_mem_data(bio, &data);
  std::string s(data, static_cast<size_t>(len > 0 ? len : 0));
  BIO_free(bio);
  return s;
}

bool TlsSession::peer_verified() const {
  return ssl_ != nullptr && SSL_get0_peer_certificate(ssl_) != nullptr &&
         SSL_get_verify_result(ssl_) == X509_V_OK;
}

}  // namespace ringmq::net
