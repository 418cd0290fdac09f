// TLS for the broker's listeners with OpenSSL 3, as I/O-free state machines: a TlsContext holds
// the server credentials and settings, a TlsSession is one connection driven through memory BIOs.
// The shard feeds a session the bytes it received and sends what the session produces; OpenSSL
// never touches a socket and never blocks.
//
//   TlsContext tls;                                   // per shard, at startup
//   if (std::string e = tls.Load(config); !e.empty()) fail(e);
//   on accept:   TlsSession s; s.Start(tls);
//   on receive:  TlsState st = s.Feed(bytes, &plain_in, &conn.out);  // handshake, alerts, tickets
//                                                                      // go to conn.out
//   on output:   s.Write(mqtt_bytes, &conn.out);      // encrypt what the loop turn queued
//   closing:     s.Shutdown(&conn.out);               // close_notify, then flush and close
//   on SIGHUP:   if (std::string e = tls.Reload(); !e.empty()) log(e);  // old certs stay in use
//
// Settings: TLS 1.2 and 1.3 only; for TLS 1.2 only ECDHE key exchange with AEAD ciphers (Mozilla's
// "intermediate" list without DHE); TLS 1.3 with OpenSSL's default suites; no renegotiation, no
// compression; idle sessions release their record buffers (SSL_MODE_RELEASE_BUFFERS); an
// encrypted private key is refused rather than prompting on the terminal. Optional client
// certificates: with `ca_file`, certificates are requested and verified against it, and required
// when `require_client_cert`. The SNI hook lets a context hand a handshake to another context
// (another certificate) by server name.
//
// Thread-safety: a TlsContext belongs to the thread that loaded it (each shard loads its own from
// the same files and reloads its own on SIGHUP); its SSL_CTX is reference-counted, so sessions keep
// the credentials they started with across a Reload. A TlsSession is used by one thread at a time;
// it may move with its connection to another shard (OpenSSL objects are not tied to a thread) once
// its handshake is complete. OpenSSL's error queue is per thread; every call here clears it first.
// Invariants:
//   1. Feed consumes all of its input; Feed, Write and Shutdown append every byte OpenSSL
//      produced to *wire before returning, so nothing waits inside to be sent.
//   2. Once kClosed or kFailed, a session produces no more application bytes and Write fails;
//      the owner sends what is in *wire (it may hold a close_notify or an alert) and closes.
//   3. A TlsContext outlives its sessions' handshakes (the SNI callback points at it).
#ifndef RINGMQ_NET_TLS_H_
#define RINGMQ_NET_TLS_H_

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

// OpenSSL's types, declared here so that includers do not need <openssl/ssl.h>.
struct ssl_ctx_st;
struct ssl_st;
struct bio_st;

namespace ringmq::net {

struct TlsConfig {
  std::string cert_file;  // PEM: the server certificate, then the intermediates of its chain
  std::string key_file;   // PEM: its private key (unencrypted)
  std::string ca_file;    // optional PEM bundle: request client certificates signed by these CAs
  bool require_client_cert = false;  // with ca_file: refuse clients without a certificate
  // OpenSSL cipher list for TLS 1.2 and ciphersuites for TLS 1.3; empty means the defaults below
  // (TLS 1.2) or OpenSSL's (TLS 1.3).
  std::string ciphers;
  std::string ciphersuites;
};

// The TLS 1.2 cipher list used when TlsConfig::ciphers is empty.
inline constexpr const char* kDefaultTlsCiphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

class TlsContext {
 public:
  // Chooses the credentials for a handshake whose client sent SNI `server_name`: returns the
  // context to use (this one, or another loaded TlsContext that outlives the handshake), or
  // nullptr to refuse the handshake with an unrecognized_name alert. Called on the thread that
  // feeds the session, during TlsSession::Feed. Note (OpenSSL): client-certificate verification
  // settings stay those of the context the session started with.
  using SniHook = std::function<const TlsContext*(std::string_view server_name)>;

  TlsContext() = default;
  ~TlsContext();
  TlsContext(const TlsContext&) = delete;  // the SNI callback holds its address
  TlsContext& operator=(const TlsContext&) = delete;

  // Loads the certificate chain, key and optional CA from the files in `config`. Returns "" on
  // success, else what failed (file, OpenSSL reason); the context is then unchanged.
  [[nodiscard]] std::string Load(const TlsConfig& config);
  // Loads the same files again (after they were replaced on disk). On success new sessions use the
  // new credentials and live sessions keep theirs; on failure nothing changes. "" or the error.
  // REQUIRES: Load succeeded once.
  [[nodiscard]] std::string Reload();

  // Installs (or, with an empty function, removes) the SNI hook. It survives Reload.
  void SetSniHook(SniHook hook) { sni_hook_ = std::move(hook); }

  bool loaded() const { return ctx_ != nullptr; }
  const TlsConfig& config() const { return config_; }
  // The current OpenSSL context, for what this class does not wrap. Owned by this object.
  ssl_ctx_st* raw() const { return ctx_; }

 private:
  static int OnServerName(ssl_st* ssl, int* alert, void* arg);

  ssl_ctx_st* ctx_ = nullptr;
  TlsConfig config_;
  SniHook sni_hook_;
};

enum class TlsState : uint8_t {
  kIdle,       // Start not called (or failed)
  kHandshake,  // handshaking: feed it bytes, send what it produces
  kOpen,       // handshake complete: application data flows
  kClosed,     // close_notify sent (Shutdown) or received (answered); send *wire, then close
  kFailed,     // a TLS error (error() says which); send *wire (it may hold an alert), then close
};

class TlsSession {
 public:
  TlsSession() = default;
  ~TlsSession();
  TlsSession(TlsSession&& other) noexcept;
  TlsSession& operator=(TlsSession&& other) noexcept;
  TlsSession(const TlsSession&) = delete;
  TlsSession& operator=(const TlsSession&) = delete;

  // Creates the server side of a connection with the current credentials of `context`. Returns
  // "" (state kHandshake) or why it failed (state kIdle).
  // REQUIRES: context.loaded(); state() == kIdle; `context` outlives the handshake.
  [[nodiscard]] std::string Start(const TlsContext& context);

  // Consumes `in` (bytes from the socket): advances the handshake, appends decrypted application
  // bytes to *app and bytes to send (handshake messages, session tickets, alerts, close_notify) to
  // *wire. Returns the state afterwards. In kIdle, kClosed or kFailed it consumes nothing.
  // REQUIRES: app != wire.
  TlsState Feed(std::span<const uint8_t> in, std::vector<uint8_t>* app, std::vector<uint8_t>* wire);

  // Encrypts `app` and appends the records to *wire. False (nothing appended) unless kOpen, or on
  // an OpenSSL error (then kFailed). Write all of a loop turn's output at once: one record
  // header and MAC per 16 KiB, not per MQTT packet.
  bool Write(std::span<const uint8_t> app, std::vector<uint8_t>* wire);

  // Appends a close_notify alert (when the handshake was complete) and enters kClosed. It does not
  // wait for the peer's close_notify. Nothing when already kClosed or kFailed.
  void Shutdown(std::vector<uint8_t>* wire);

  TlsState state() const { return state_; }
  // Why the session failed: the OpenSSL reason(s), e.g. "... wrong version number". Empty if not.
  const std::string& error() const { return error_; }
  // After the handshake: "TLSv1.3", the cipher name, the SNI server name ("" if none), and the
  // client certificate's subject ("" without one) with whether it verified.
  std::string protocol() const;
  std::string cipher() const;
  std::string server_name() const;
  std::string peer_subject() const;
  bool peer_verified() const;

 private:
  void Fail(const char* what);
  void ReadApp(std::vector<uint8_t>* app);
  void Drain(std::vector<uint8_t>* wire);
  void Release();

  ssl_st* ssl_ = nullptr;   // owns rbio_ and wbio_
  bio_st* rbio_ = nullptr;  // bytes from the peer, read by OpenSSL
  bio_st* wbio_ = nullptr;  // bytes for the peer, written by OpenSSL
  TlsState state_ = TlsState::kIdle;
  std::string error_;
};

}  // namespace ringmq::net

#endif  // RINGMQ_NET_TLS_H_
