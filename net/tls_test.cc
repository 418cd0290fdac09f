// TlsContext/TlsSession against an OpenSSL client over memory BIOs. A throwaway PKI (two CAs,
// server and client certificates, EC P-256) is generated with the OpenSSL API into a temporary
// directory once per test suite.
#include "net/tls.h"

#include <gtest/gtest.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "net/websocket.h"

namespace ringmq::net {
namespace {

using namespace std::string_view_literals;
using Bytes = std::vector<uint8_t>;

Bytes B(std::string_view s) { return Bytes(s.begin(), s.end()); }
std::string S(const Bytes& b) { return std::string(b.begin(), b.end()); }

// --- A throwaway PKI. ---

struct KeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
struct CertFree {
  void operator()(X509* c) const { X509_free(c); }
};
using Key = std::unique_ptr<EVP_PKEY, KeyFree>;
using Cert = std::unique_ptr<X509, CertFree>;

struct Issued {
  Key key;
  Cert cert;
};

void AddExt(X509* cert, X509* issuer, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
  ASSERT_NE(ext, nullptr) << value;
  X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
}

// A certificate for `cn`, signed by `issuer` (self-signed when null). `san` is a subjectAltName
// value for leaf certificates; a CA gets basicConstraints CA:TRUE.
Issued MakeCert(int serial, const std::string& cn, const Issued* issuer, bool ca, const char* san,
                const char* eku, long valid_from_s = -3600) {
  Issued out{Key(EVP_EC_gen("P-256")), Cert(X509_new())};
  X509* c = out.cert.get();
  X509_set_version(c, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(c), serial);
  X509_gmtime_adj(X509_getm_notBefore(c), valid_from_s);
  X509_gmtime_adj(X509_getm_notAfter(c), valid_from_s + 2L * 86400);
  X509_set_pubkey(c, out.key.get());
  X509_NAME* name = X509_get_subject_name(c);
  X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("ringmq test"), -1, -1, 0);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
  X509* issuer_cert = issuer ? issuer->cert.get() : c;
  X509_set_issuer_name(c, X509_get_subject_name(issuer_cert));
  AddExt(c, issuer_cert, NID_subject_key_identifier, "hash");
  if (ca) {
    AddExt(c, issuer_cert, NID_basic_constraints, "critical,CA:TRUE");
    AddExt(c, issuer_cert, NID_key_usage, "critical,keyCertSign,cRLSign");
  } else {
    AddExt(c, issuer_cert, NID_basic_constraints, "critical,CA:FALSE");
    AddExt(c, issuer_cert, NID_authority_key_identifier, "keyid");
    AddExt(c, issuer_cert, NID_key_usage, "critical,digitalSignature");
    AddExt(c, issuer_cert, NID_ext_key_usage, eku);
    if (san) AddExt(c, issuer_cert, NID_subject_alt_name, san);
  }
  X509_sign(c, issuer ? issuer->key.get() : out.key.get(), EVP_sha256());
  return out;
}

void WritePem(const std::string& path, const std::vector<X509*>& certs, EVP_PKEY* key) {
  FILE* f = std::fopen(path.c_str(), "w");
  ASSERT_NE(f, nullptr) << path;
  for (X509* c : certs) PEM_write_X509(f, c);
  if (key) PEM_write_PrivateKey(f, key, nullptr, nullptr, 0, nullptr, nullptr);
  std::fclose(f);
}

// --- The client: an OpenSSL client SSL over memory BIOs. ---

struct CtxFree {
  void operator()(SSL_CTX* c) const { SSL_CTX_free(c); }
};
using ClientCtx = std::unique_ptr<SSL_CTX, CtxFree>;

ClientCtx MakeClientCtx(const std::string& ca_file, const std::string& cert_file = "",
                        int max_version = 0) {
  ClientCtx ctx(SSL_CTX_new(TLS_client_method()));
  if (!ca_file.empty()) {
    EXPECT_EQ(SSL_CTX_load_verify_file(ctx.get(), ca_file.c_str()), 1);
    SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, nullptr);
  }
  if (!cert_file.empty()) {  // the key is in the same file
    EXPECT_EQ(SSL_CTX_use_certificate_chain_file(ctx.get(), cert_file.c_str()), 1);
    EXPECT_EQ(SSL_CTX_use_PrivateKey_file(ctx.get(), cert_file.c_str(), SSL_FILETYPE_PEM), 1);
  }
  if (max_version) {
    SSL_CTX_set_security_level(ctx.get(), 0);  // let the client even try TLS 1.1
    SSL_CTX_set_min_proto_version(ctx.get(), TLS1_VERSION);
    SSL_CTX_set_max_proto_version(ctx.get(), max_version);
  }
  return ctx;
}

class Client {
 public:
  Client(SSL_CTX* ctx, const char* host) : ssl_(SSL_new(ctx)) {
    rbio_ = BIO_new(BIO_s_mem());
    wbio_ = BIO_new(BIO_s_mem());
    BIO_set_mem_eof_return(rbio_, -1);
    BIO_set_mem_eof_return(wbio_, -1);
    SSL_set_bio(ssl_, rbio_, wbio_);
    SSL_set_connect_state(ssl_);
    if (host) {
      SSL_set_tlsext_host_name(ssl_, host);
      SSL_set1_host(ssl_, host);
    }
  }
  ~Client() { SSL_free(ssl_); }

  // Advances the handshake (or reads), returning false on a fatal error.
  bool Step() {
    if (failed_) return false;
    ERR_clear_error();
    if (!SSL_is_init_finished(ssl_)) {
      const int r = SSL_do_handshake(ssl_);
      if (r != 1) return Check(r);
    }
    char buf[16384];
    for (;;) {
      size_t n = 0;
      const int r = SSL_read_ex(ssl_, buf, sizeof(buf), &n);
      if (r == 1) {
        received_.append(buf, n);
        continue;
      }
      return Check(r);
    }
  }
  void Write(std::string_view s) {
    size_t n = 0;
    ASSERT_EQ(SSL_write_ex(ssl_, s.data(), s.size(), &n), 1);
  }
  void Shutdown() { SSL_shutdown(ssl_); }
  Bytes TakeOutput() {
    Bytes out(BIO_ctrl_pending(wbio_));
    size_t n = 0;
    if (!out.empty()) BIO_read_ex(wbio_, out.data(), out.size(), &n);
    out.resize(n);
    return out;
  }
  void Give(const Bytes& in) {
    size_t n = 0;
    if (!in.empty()) BIO_write_ex(rbio_, in.data(), in.size(), &n);
  }
  bool done() const { return SSL_is_init_finished(ssl_); }
  bool failed() const { return failed_; }
  bool got_close_notify() const { return close_notify_; }
  const std::string& error() const { return error_; }
  std::string& received() { return received_; }
  SSL* ssl() { return ssl_; }

 private:
  bool Check(int r) {
    const int e = SSL_get_error(ssl_, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return true;
    if (e == SSL_ERROR_ZERO_RETURN) {
      close_notify_ = true;
      return true;
    }
    failed_ = true;
    char buf[256];
    ERR_error_string_n(ERR_get_error(), buf, sizeof(buf));
    error_ = buf;
    return false;
  }

  SSL* ssl_;
  BIO* rbio_;
  BIO* wbio_;
  bool failed_ = false;
  bool close_notify_ = false;
  std::string error_;
  std::string received_;
};

// Moves bytes between client and server until neither produces any; the server's input is split
// into `chunk`-byte feeds. Returns the application bytes the server decrypted.
Bytes Pump(Client& client, TlsSession& server, size_t chunk = SIZE_MAX) {
  Bytes app;
  for (int round = 0; round < 50; ++round) {
    client.Step();
    const Bytes to_server = client.TakeOutput();
    Bytes to_client;
    for (size_t i = 0; i < to_server.size(); i += chunk) {
      const size_t n = std::min(chunk, to_server.size() - i);
      server.Feed(std::span(to_server).subspan(i, n), &app, &to_client);
    }
    if (to_server.empty()) server.Feed({}, &app, &to_client);
    client.Give(to_client);
    if (to_server.empty() && to_client.empty()) break;
  }
  client.Step();
  return app;
}

class TlsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    char tmpl[] = "/tmp/ringmq_tls_test_XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = new std::string(tmpl);
    Issued ca = MakeCert(1, "Test CA", nullptr, true, nullptr, nullptr);
    Issued other_ca = MakeCert(2, "Other CA", nullptr, true, nullptr, nullptr);
    Issued server =
        MakeCert(3, "localhost", &ca, false, "DNS:localhost,IP:127.0.0.1", "serverAuth");
    Issued other_server =
        MakeCert(4, "other.example", &other_ca, false, "DNS:other.example", "serverAuth");
    Issued client = MakeCert(5, "client-1", &ca, false, nullptr, "clientAuth");
    Issued rogue = MakeCert(6, "rogue", &other_ca, false, nullptr, "clientAuth");
    WritePem(Path("ca.pem"), {ca.cert.get()}, nullptr);
    WritePem(Path("other_ca.pem"), {other_ca.cert.get()}, nullptr);
    WritePem(Path("server.pem"), {server.cert.get()}, nullptr);
    WritePem(Path("server.key"), {}, server.key.get());
    WritePem(Path("other_server.pem"), {other_server.cert.get()}, nullptr);
    WritePem(Path("other_server.key"), {}, other_server.key.get());
    WritePem(Path("client.pem"), {client.cert.get()}, client.key.get());
    WritePem(Path("rogue.pem"), {rogue.cert.get()}, rogue.key.get());
  }
  static void TearDownTestSuite() {
    std::error_code ec;
    std::filesystem::remove_all(*dir_, ec);
    delete dir_;
    dir_ = nullptr;
  }
  static std::string Path(const char* name) { return *dir_ + "/" + name; }

  static TlsConfig ServerConfig() {
    TlsConfig c;
    c.cert_file = Path("server.pem");
    c.key_file = Path("server.key");
    return c;
  }

  // Loads `config` into ctx_ and starts server_.
  void StartServer(const TlsConfig& config) {
    ASSERT_EQ(ctx_.Load(config), "");
    ASSERT_EQ(server_.Start(ctx_), "");
    EXPECT_EQ(server_.state(), TlsState::kHandshake);
  }

  static std::string* dir_;
  TlsContext ctx_;
  TlsSession server_;
};

std::string* TlsTest::dir_ = nullptr;

TEST_F(TlsTest, HandshakeThenDataBothWays) {
  StartServer(ServerConfig());
  ClientCtx cctx = MakeClientCtx(Path("ca.pem"));
  Client client(cctx.get(), "localhost");
  Pump(client, server_);
  ASSERT_TRUE(client.done()) << client.error();
  ASSERT_EQ(server_.state(), TlsState::kOpen) << server_.error();
  EXPECT_EQ(server_.protocol(), "TLSv1.3");
  EXPECT_EQ(server_.server_name(), "localhost");
  EXPECT_EQ(server_.peer_subject(), "");
  EXPECT_FALSE(server_.peer_verified());

  client.Write("\x10\x0c\x00\x04MQTT"sv);
  EXPECT_EQ(S(Pump(client, server_)), "\x10\x0c\x00\x04MQTT"sv);
  Bytes wire;
  ASSERT_TRUE(server_.Write(B("\x20\x02\x00\x00"sv), &wire));
  client.Give(wire);
  client.Step();
  EXPECT_EQ(client.received(), "\x20\x02\x00\x00"sv);
}

TEST_F(TlsTest, ByteAtATimeAndLargeTransfers) {
  StartServer(ServerConfig());
  ClientCtx cctx = MakeClientCtx(Path("ca.pem"));
  Client client(cctx.get(), "localhost");
  Pump(client, server_, /*chunk=*/1);
  ASSERT_EQ(server_.state(), TlsState::kOpen) << server_.error();
  // 1 MiB each way, the server's input in odd chunks.
  std::mt19937 rng(3);
  std::string up(1 << 20, '\0'), down(1 << 20, '\0');
  for (char& c : up) c = static_cast<char>(rng());
  for (char& c : down) c = static_cast<char>(rng());
  client.Write(up);
  EXPECT_TRUE(S(Pump(client, server_, 4093)) == up);
  Bytes wire;
  ASSERT_TRUE(server_.Write(B(down), &wire));
  client.Give(wire);
  client.Step();
  EXPECT_TRUE(client.received() == down);
}

TEST_F(TlsTest, Tls12IsAcceptedWithAnEcdheAeadCipher) {
  StartServer(ServerConfig());
  ClientCtx cctx = MakeClientCtx(Path("ca.pem"), "", TLS1_2_VERSION);
  Client client(cctx.get(), "localhost");
  Pump(client, server_);
  ASSERT_EQ(server_.state(), TlsState::kOpen) << server_.error();
  EXPECT_EQ(server_.protocol(), "TLSv1.2");
  EXPECT_EQ(server_.cipher().rfind("ECDHE-", 0), 0u) << server_.cipher();
  EXPECT_NE(server_.cipher().find("GCM"), std::string::npos) << server_.cipher();
}

TEST_F(TlsTest, Tls11IsRefused) {
  StartServer(ServerConfig());
  ClientCtx cctx = MakeClientCtx(Path("ca.pem"), "", TLS1_1_VERSION);
  Client client(cctx.get(), "localhost");
  Pump(client, server_);
  EXPECT_EQ(server_.state(), TlsState::kFailed);
  EXPECT_NE(server_.error().find("protocol"), std::string::npos) << server_.error();
  EXPECT_TRUE(client.failed());  // it received the server's protocol_version alert
}

TEST_F(TlsTest, UntrustedServerCertificateFailsBothSides) {
  StartServer(ServerConfig());
  ClientCtx cctx = MakeClientCtx(Path("other_ca.pem"));  // does not trust our CA
  Client client(cctx.get(), "localhost");
  Pump(client, server_);
  EXPECT_TRUE(client.failed());
  EXPECT_NE(client.error().find("certificate verify failed"), std::string::npos) << client.error();
  EXPECT_EQ(server_.state(), TlsState::kFailed);
  EXPECT_NE(server_.error().find("unknown ca"), std::string::npos) << server_.error();
  Bytes app, wire;
  EXPECT_EQ(server_.Feed(B("more"), &app, &wire), TlsState::kFailed);
  EXPECT_FALSE(server_.Write(B("x"), &wire));
  EXPECT_TRUE(app.empty());
}

TEST_F(TlsTest, WrongHostNameFails) {
  StartServer(ServerConfig());
  ClientCtx cctx = MakeClientCtx(Path("ca.pem"));
  Client client(cctx.get(), "broker.example");
  Pump(client, server_);
  EXPECT_TRUE(client.failed());
  EXPECT_EQ(server_.state(), TlsState::kFailed);
}

TEST_F(TlsTest, PlainTextToTheTlsSideFailsCleanly) {
  const std::string inputs[] = {
      std::string("\x10\x0c\x00\x04MQTT\x04\x02\x00\x3c\x00\x00", 14),  // an MQTT CONNECT
      "GET /mqtt HTTP/1.1\r\nHost: x\r\n\r\n",
      std::string(64, '\0'),
  };
  for (const std::string& in : inputs) {
    TlsSession server;
    ASSERT_EQ(ctx_.Load(ServerConfig()), "");
    ASSERT_EQ(server.Start(ctx_), "");
    Bytes app, wire;
    EXPECT_EQ(server.Feed(B(in), &app, &wire), TlsState::kFailed);
    EXPECT_FALSE(server.error().empty());
    EXPECT_TRUE(app.empty());
  }
}

TEST_F(TlsTest, CloseNotifyFromTheClientIsAnswered) {
  StartServer(ServerConfig());
  ClientCtx cctx = MakeClientCtx(Path("ca.pem"));
  Client client(cctx.get(), "localhost");
  Pump(client, server_);
  ASSERT_EQ(server_.state(), TlsState::kOpen);
  client.Write("last");
  client.Shutdown();
  EXPECT_EQ(S(Pump(client, server_)), "last");
  EXPECT_EQ(server_.state(), TlsState::kClosed);
  EXPECT_TRUE(client.got_close_notify());
  Bytes wire;
  EXPECT_FALSE(server_.Write(B("x"), &wire));
}

TEST_F(TlsTest, ServerShutdownSendsCloseNotify) {
  StartServer(ServerConfig());
  ClientCtx cctx = MakeClientCtx(Path("ca.pem"));
  Client client(cctx.get(), "localhost");
  Pump(client, server_);
  Bytes wire;
  ASSERT_TRUE(server_.Write(B("bye"), &wire));
  server_.Shutdown(&wire);
  EXPECT_EQ(server_.state(), TlsState::kClosed);
  client.Give(wire);
  client.Step();
  EXPECT_EQ(client.received(), "bye");
  EXPECT_TRUE(client.got_close_notify());
}

TEST_F(TlsTest, WriteBeforeTheHandshakeFails) {
  StartServer(ServerConfig());
  Bytes wire;
  EXPECT_FALSE(server_.Write(B("x"), &wire));
  EXPECT_TRUE(wire.empty());
  TlsSession idle;
  Bytes app;
  EXPECT_EQ(idle.Feed(B("x"), &app, &wire), TlsState::kIdle);
}

TEST_F(TlsTest, ClientCertificates) {
  TlsConfig config = ServerConfig();
  config.ca_file = Path("ca.pem");
  config.require_client_cert = true;
  ASSERT_EQ(ctx_.Load(config), "");
  ClientCtx trusted = MakeClientCtx(Path("ca.pem"), Path("client.pem"));
  ClientCtx rogue = MakeClientCtx(Path("ca.pem"), Path("rogue.pem"));
  ClientCtx anonymous = MakeClientCtx(Path("ca.pem"));
  {
    TlsSession server;
    ASSERT_EQ(server.Start(ctx_), "");
    Client client(trusted.get(), "localhost");
    Pump(client, server);
    ASSERT_EQ(server.state(), TlsState::kOpen) << server.error();
    EXPECT_TRUE(server.peer_verified());
    EXPECT_EQ(server.peer_subject(), "CN=client-1,O=ringmq test");
  }
  {
    TlsSession server;
    ASSERT_EQ(server.Start(ctx_), "");
    Client client(rogue.get(), "localhost");
    Pump(client, server);
    EXPECT_EQ(server.state(), TlsState::kFailed);
    EXPECT_NE(server.error().find("certificate verify failed"), std::string::npos)
        << server.error();
  }
  {
    TlsSession server;
    ASSERT_EQ(server.Start(ctx_), "");
    Client client(anonymous.get(), "localhost");
    Pump(client, server);
    EXPECT_EQ(server.state(), TlsState::kFailed);
    EXPECT_NE(server.error().find("certificate"), std::string::npos) << server.error();
  }
}

TEST_F(TlsTest, LoadErrorsAreStrings) {
  TlsConfig missing = ServerConfig();
  missing.cert_file = Path("nope.pem");
  std::string e = ctx_.Load(missing);
  EXPECT_NE(e.find("nope.pem"), std::string::npos) << e;
  EXPECT_FALSE(ctx_.loaded());
  TlsConfig mismatch = ServerConfig();
  mismatch.key_file = Path("other_server.key");
  e = ctx_.Load(mismatch);
  EXPECT_NE(e.find("mismatch"), std::string::npos) << e;
  TlsConfig bad_ciphers = ServerConfig();
  bad_ciphers.ciphers = "NOT-A-CIPHER";
  EXPECT_NE(ctx_.Load(bad_ciphers), "");
  TlsConfig bad_ca = ServerConfig();
  bad_ca.ca_file = Path("server.key");
  EXPECT_NE(ctx_.Load(bad_ca), "");
  EXPECT_FALSE(ctx_.loaded());
}

TEST_F(TlsTest, ReloadSwapsCredentialsAndKeepsLiveSessions) {
  // The served files are copies that the test replaces, as an operator would.
  TlsConfig config;
  config.cert_file = Path("live.pem");
  config.key_file = Path("live.key");
  std::filesystem::copy_file(Path("server.pem"), config.cert_file,
                             std::filesystem::copy_options::overwrite_existing);
  std::filesystem::copy_file(Path("server.key"), config.key_file,
                             std::filesystem::copy_options::overwrite_existing);
  ASSERT_EQ(ctx_.Load(config), "");
  // A session that starts before the reload and finishes after it.
  ClientCtx old_trust = MakeClientCtx(Path("ca.pem"));
  Client early(old_trust.get(), "localhost");
  ASSERT_EQ(server_.Start(ctx_), "");
  early.Step();
  Bytes app, wire;
  server_.Feed(early.TakeOutput(), &app, &wire);

  std::filesystem::copy_file(Path("other_server.pem"), config.cert_file,
                             std::filesystem::copy_options::overwrite_existing);
  std::filesystem::copy_file(Path("other_server.key"), config.key_file,
                             std::filesystem::copy_options::overwrite_existing);
  ASSERT_EQ(ctx_.Reload(), "");

  early.Give(wire);
  Pump(early, server_);
  EXPECT_EQ(server_.state(), TlsState::kOpen) << server_.error();

  ClientCtx new_trust = MakeClientCtx(Path("other_ca.pem"));
  TlsSession after;
  ASSERT_EQ(after.Start(ctx_), "");
  Client late(new_trust.get(), "other.example");
  Pump(late, after);
  EXPECT_EQ(after.state(), TlsState::kOpen) << after.error();

  // A broken file: the error is reported and the current credentials stay.
  std::filesystem::remove(config.key_file);
  EXPECT_NE(ctx_.Reload(), "");
  TlsSession still;
  ASSERT_EQ(still.Start(ctx_), "");
  Client again(new_trust.get(), "other.example");
  Pump(again, still);
  EXPECT_EQ(still.state(), TlsState::kOpen) << still.error();
}

TEST_F(TlsTest, SniHookPicksTheCertificate) {
  TlsContext other;
  TlsConfig other_config;
  other_config.cert_file = Path("other_server.pem");
  other_config.key_file = Path("other_server.key");
  ASSERT_EQ(other.Load(other_config), "");
  ASSERT_EQ(ctx_.Load(ServerConfig()), "");
  std::vector<std::string> seen;
  ctx_.SetSniHook([&](std::string_view name) -> const TlsContext* {
    seen.emplace_back(name);
    if (name == "other.example") return &other;
    if (name == "localhost") return &ctx_;
    return nullptr;
  });
  ClientCtx other_trust = MakeClientCtx(Path("other_ca.pem"));
  ClientCtx trust = MakeClientCtx(Path("ca.pem"));
  {
    TlsSession server;
    ASSERT_EQ(server.Start(ctx_), "");
    Client client(other_trust.get(), "other.example");
    Pump(client, server);
    EXPECT_EQ(server.state(), TlsState::kOpen) << server.error();
    EXPECT_EQ(server.server_name(), "other.example");
  }
  {
    TlsSession server;
    ASSERT_EQ(server.Start(ctx_), "");
    Client client(trust.get(), "localhost");
    Pump(client, server);
    EXPECT_EQ(server.state(), TlsState::kOpen) << server.error();
  }
  {
    TlsSession server;
    ASSERT_EQ(server.Start(ctx_), "");
    Client client(trust.get(), "unknown.example");
    Pump(client, server);
    EXPECT_EQ(server.state(), TlsState::kFailed);
    EXPECT_TRUE(client.failed());
  }
  EXPECT_EQ(seen, (std::vector<std::string>{"other.example", "localhost", "unknown.example"}));
}

TEST_F(TlsTest, SessionsMove) {
  StartServer(ServerConfig());
  TlsSession moved(std::move(server_));
  EXPECT_EQ(server_.state(), TlsState::kIdle);
  ClientCtx cctx = MakeClientCtx(Path("ca.pem"));
  Client client(cctx.get(), "localhost");
  Pump(client, moved);
  EXPECT_EQ(moved.state(), TlsState::kOpen) << moved.error();
}

// wss://: the TLS plaintext is the WebSocket stream, unmasked in place, and what the WebSocket
// side produces (the 101 answer, frames) is encrypted on the way out.
TEST_F(TlsTest, WebSocketOverTls) {
  StartServer(ServerConfig());
  ClientCtx cctx = MakeClientCtx(Path("ca.pem"));
  Client client(cctx.get(), "localhost");
  Pump(client, server_);
  ASSERT_EQ(server_.state(), TlsState::kOpen);
  WebSocketConfig ws_config;
  WebSocketSession ws(&ws_config);
  const std::string request =
      "GET /mqtt HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
      "Sec-WebSocket-Protocol: mqtt\r\n\r\n";
  // A masked binary frame "\x10\x00" (key 1 2 3 4), right behind the request.
  const std::string frame = "\x82\x82\x01\x02\x03\x04\x11\x02";
  client.Write(request + frame);
  Bytes plain = Pump(client, server_);
  Bytes ws_out;
  const WsFeedResult r = ws.FeedInPlace(plain, &ws_out);
  ASSERT_EQ(r.state, WsState::kOpen) << ws.error();
  ASSERT_EQ(r.app_bytes, 2u);
  EXPECT_EQ(plain[0], 0x10);
  EXPECT_EQ(plain[1], 0x00);
  ws.Wrap(B("\x20\x02\x00\x00"sv), &ws_out);
  Bytes wire;
  ASSERT_TRUE(server_.Write(ws_out, &wire));
  client.Give(wire);
  client.Step();
  const std::string& got = client.received();
  ASSERT_EQ(got.rfind("HTTP/1.1 101 Switching Protocols\r\n", 0), 0u);
  EXPECT_EQ(got.substr(got.size() - 6), "\x82\x04\x20\x02\x00\x00"sv);
}

}  // namespace
}  // namespace ringmq::net
