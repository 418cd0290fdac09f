// Transport: the seam between a client's MQTT bytes and its TCP socket. The worker owns the socket
// and the io_uring operations on it; a Transport only transforms bytes: plain TCP (no-op), TLS
// (tls_client.h: OpenSSL over memory BIOs), WebSocket (ws_client.h: RFC 6455 client framing) or
// WebSocket over TLS, without touching the MQTT client.
//
// Life of a connection: the TCP connect completes -> Start() (may queue handshake bytes) -> every
// received chunk goes through Receive() -> once ready(), MQTT bytes go out through Wrap(), all of
// a loop turn's output at once (one TLS write, one WebSocket frame).
// Thread-safety: one Transport per connection, used by the thread that owns the connection. A
// TransportFactory is read-only after Init and shared by every worker thread.
#ifndef RINGMQ_TOOLS_BENCH_TRANSPORT_H_
#define RINGMQ_TOOLS_BENCH_TRANSPORT_H_

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

struct ssl_ctx_st;

namespace ringmq::bench {

class Transport {
 public:
  virtual ~Transport() = default;

  // The TCP connection is up. Appends handshake bytes to *wire_out, if any.
  virtual void Start(std::vector<uint8_t>* wire_out) = 0;
  // True once application bytes may flow (after the handshake).
  virtual bool ready() const = 0;
  // `wire` arrived. Sets *app to the application bytes it carried (a view into `wire` or into the
  // transport's own buffer, valid until the next call) and appends anything the transport must
  // answer to *wire_out. False on a transport error (the connection is then closed).
  virtual bool Receive(std::span<const uint8_t> wire, std::span<const uint8_t>* app,
                       std::vector<uint8_t>* wire_out) = 0;
  // Turns the application bytes queued in *app into wire bytes in *wire (which is empty on entry).
  // *app is left empty. The TCP transport swaps the buffers: no copy.
  virtual void Wrap(std::vector<uint8_t>* app, std::vector<uint8_t>* wire) = 0;
  // Why the transport failed ("" if it did not, or does not say).
  virtual std::string error() const { return {}; }
};

struct TransportOptions {
  std::string kind = "tcp";  // tcp | tls | ws | wss
  std::string host;          // SNI and certificate check (tls, wss); Host header (ws, wss)
  uint16_t port = 0;         // Host header
  std::string ws_path = "/mqtt";
  std::string cafile;     // tls/wss: trust these CAs ("" = the system store)
  bool insecure = false;  // tls/wss: do not verify the server certificate
};

class TransportFactory {
 public:
  TransportFactory() = default;
  ~TransportFactory();
  TransportFactory(const TransportFactory&) = delete;
  TransportFactory& operator=(const TransportFactory&) = delete;

  // Checks the options and creates what connections share (the TLS context). False with *error.
  bool Init(const TransportOptions& options, std::string* error);
  // A new transport for one connection. `seed` varies the WebSocket masking keys.
  // REQUIRES: Init succeeded.
  std::unique_ptr<Transport> Make(uint64_t seed) const;

 private:
  TransportOptions options_;
  std::string host_header_;
  ssl_ctx_st* ssl_ctx_ = nullptr;
};

}  // namespace ringmq::bench

#endif  // RINGMQ_TOOLS_BENCH_TRANSPORT_H_
