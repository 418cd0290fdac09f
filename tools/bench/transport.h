// Transport: the seam between a client's MQTT bytes and its TCP socket. The worker owns the socket
// and the io_uring operations on it; a Transport only transforms bytes, so TLS (OpenSSL memory
// BIOs) or WebSocket framing can be added as another implementation without touching the MQTT
// client.
//
// Life of a connection: the TCP connect completes -> Start() (may queue handshake bytes) -> every
// received chunk goes through Receive() -> once ready(), MQTT bytes go out through Wrap().
// Thread-safety: one Transport per connection, used by the thread that owns the connection.
#ifndef RINGMQ_TOOLS_BENCH_TRANSPORT_H_
#define RINGMQ_TOOLS_BENCH_TRANSPORT_H_

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

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
};

// "tcp" (plain MQTT). nullptr for an unknown kind.
std::unique_ptr<Transport> MakeTransport(const std::string& kind);

}  // namespace ringmq::bench

#endif  // RINGMQ_TOOLS_BENCH_TRANSPORT_H_
