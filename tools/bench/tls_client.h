// TlsClient: the client side of one TLS connection for the load generator, OpenSSL 3 over memory
// BIOs (the server side is net/tls.h). The worker feeds it what the socket received and sends what
// it produces; OpenSSL never touches the socket and never blocks.
//
//   std::string error;
//   SSL_CTX* ctx = MakeTlsClientContext(cafile, insecure, &error);  // once, shared by all threads
//   TlsClient tls(ctx, "broker.example");   // SNI (unless an IP literal) and the name verified
//   tls.Start(&wire);                       // ClientHello
//   tls.Feed(bytes, &plain, &wire);         // handshake, then decrypted bytes; false on error
//   tls.Write(mqtt_bytes, &wire);           // records, once open()
//
// Settings: TLS 1.2 and 1.3 (OpenSSL's default ciphers); the server certificate is verified against
// --cafile (or the system store) and the host name or IP address, unless --insecure. No session
// resumption (each connect is a full handshake, which is what a connect-rate run should measure).
// Thread-safety: an SSL_CTX from MakeTlsClientContext is read-only after creation and shared by
// every worker thread (OpenSSL allows SSL_new on one context from many threads); a TlsClient is
// used by one thread.
#ifndef RINGMQ_TOOLS_BENCH_TLS_CLIENT_H_
#define RINGMQ_TOOLS_BENCH_TLS_CLIENT_H_

#include <cstdint>
#include <span>
#include <string>
#include <vector>

struct ssl_ctx_st;
struct ssl_st;
struct bio_st;

namespace ringmq::bench {

// A client SSL_CTX (free with FreeTlsClientContext). `cafile` empty: the system's trust store;
// `insecure`: no verification at all. nullptr with *error on failure.
ssl_ctx_st* MakeTlsClientContext(const std::string& cafile, bool insecure, std::string* error);
void FreeTlsClientContext(ssl_ctx_st* ctx);

class TlsClient {
 public:
  // `host`: sent as SNI when it is a name, and checked against the certificate when verifying.
  TlsClient(ssl_ctx_st* ctx, const std::string& host);
  ~TlsClient();
  TlsClient(const TlsClient&) = delete;
  TlsClient& operator=(const TlsClient&) = delete;

  // Appends the ClientHello to *wire. False on an OpenSSL error.
  bool Start(std::vector<uint8_t>* wire);
  // Consumes `in`: advances the handshake, appends decrypted bytes to *app and what OpenSSL wants
  // sent to *wire. False on a TLS error (error() says which). A close_notify from the server is
  // not an error: the broker's TCP close follows. REQUIRES: app != wire.
  bool Feed(std::span<const uint8_t> in, std::vector<uint8_t>* app, std::vector<uint8_t>* wire);
  // Encrypts `app` into records appended to *wire. False unless open(), or on an error.
  bool Write(std::span<const uint8_t> app, std::vector<uint8_t>* wire);

  bool open() const { return open_; }
  const std::string& error() const { return error_; }
  // After the handshake: "TLSv1.3" etc.
  std::string protocol() const;

 private:
  bool Fail(const char* what);
  void Drain(std::vector<uint8_t>* wire);
  // SSL_get_error of a failed call: false (after Fail) unless it only wants more input.
  bool Check(int ret, const char* what);

  ssl_st* ssl_ = nullptr;   // owns the BIOs
  bio_st* rbio_ = nullptr;  // from the server, read by OpenSSL
  bio_st* wbio_ = nullptr;  // to the server, written by OpenSSL
  bool open_ = false;
  bool failed_ = false;
  std::string error_;
};

}  // namespace ringmq::bench

#endif  // RINGMQ_TOOLS_BENCH_TLS_CLIENT_H_
