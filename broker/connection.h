// Connection: one client socket on a shard (DESIGN.md section 3). It is separate from Session: the
// connection is the transport and the per-connection MQTT settings; the session is the state that
// may outlive it.
//
// Thread-safety: owned by one shard; before CONNECT it belongs to the accepting shard and may be
// handed (as fd + unread bytes) to the client id's home shard, which then owns a new Connection.
// Invariants:
//   1. At most one send is in flight (send_in_flight); `sending` holds its bytes from
//      `sending_offset` on, `out` collects what is queued meanwhile.
//   2. `in` holds only bytes of packets not yet complete.
//   3. session != nullptr iff state == kActive.
#ifndef RINGMQ_BROKER_CONNECTION_H_
#define RINGMQ_BROKER_CONNECTION_H_

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "acl/acl.h"
#include "net/tls.h"
#include "net/websocket.h"
#include "proto/codec.h"
#include "proto/packet.h"
#include "route/encoded_publish.h"

namespace ringmq::broker {

class Session;

class Connection {
 public:
  enum class State : uint8_t { kAwaitConnect, kActive, kClosing };

  Connection(int fd, uint32_t slot, uint32_t generation)
      : fd(fd), slot(slot), generation(generation) {}

  // Appends an encoded packet to the output of this loop turn. Returns false if it could not be
  // encoded (too large for the client: the caller decides what that means).
  template <typename P>
  bool Queue(const P& packet);
  // The same for a PUBLISH encoded once for many subscribers (route/encoded_publish.h): copied,
  // with this connection's packet id written at `id_offset` (QoS 1 and 2).
  bool QueueEncoded(std::span<const uint8_t> packet, size_t id_offset, uint16_t packet_id);

  // Closing, or its close is queued: no more input is handled.
  bool closing() const { return state == State::kClosing || close_queued; }

  // The transport layers of a connection on a TLS or WebSocket listener (mqtts, ws, wss).
  struct Transport {
    std::unique_ptr<net::TlsSession> tls;
    std::unique_ptr<net::WebSocketSession> ws;
    std::vector<uint8_t> out;      // bytes the transports produced (handshakes, pongs, alerts)
    std::vector<uint8_t> scratch;  // plaintext between the TLS and WebSocket layers
  };
  // Topic aliases of an MQTT 5 connection, in each direction (MQTT 5.0 section 3.3.2.3.4).
  struct TopicAliases {
    std::unordered_map<uint16_t, std::string> in;   // client to broker
    std::unordered_map<std::string, uint16_t> out;  // broker to client
  };
  // What a CONNECT is handled with besides its packet: an id the first shard assigned before a
  // handoff, and the answer of a token lookup the connection waited for.
  struct Login {
    std::string assigned_client_id;
    std::shared_ptr<const acl::CompiledAcl> acl;  // nullptr: unknown token
    std::string key;  // the answered token's key (a login by id presents only a prefix)
  };
  Login& login_state() {
    if (login == nullptr) login = std::make_unique<Login>();
    return *login;
  }
  bool transport_out_pending() const { return transport != nullptr && !transport->out.empty(); }
  // Frees the capacity of empty buffers, so that an idle client holds none (Shard::Tick, once per
  // tick: a busy connection keeps its buffers from one packet to the next).
  void ReleaseIdleBuffers() {
    if (in.empty()) std::vector<uint8_t>().swap(in);
    if (out.empty()) std::vector<uint8_t>().swap(out);
    if (!send_in_flight && sending.empty()) std::vector<uint8_t>().swap(sending);
    if (transport != nullptr) {
      if (transport->out.empty()) std::vector<uint8_t>().swap(transport->out);
      if (transport->scratch.empty()) std::vector<uint8_t>().swap(transport->scratch);
    }
  }

  const int fd;
  const uint32_t slot;        // index in the shard's connection table
  const uint32_t generation;  // distinguishes reuses of a slot in io_uring user_data

  State state = State::kAwaitConnect;
  proto::Version version = proto::Version::kV311;
  Session* session = nullptr;
  std::string peer;  // "ip:port" for logs (the client id is the session's)

  // Held behind pointers, allocated only when used, so that an idle MQTT-over-TCP connection does
  // not carry them: TLS / WebSocket layers (set at accept), topic aliases (at the first one), the
  // login (between a handoff or token lookup and the CONNACK, then freed).
  std::unique_ptr<Transport> transport;
  std::unique_ptr<TopicAliases> aliases;
  std::unique_ptr<Login> login;
  bool transport_closed = false;  // the WebSocket close / TLS close_notify was queued

  std::vector<uint8_t> in;
  std::vector<uint8_t> out;  // MQTT bytes queued during this loop turn (before any transport)
  std::vector<uint8_t> sending;
  size_t sending_offset = 0;
  bool send_in_flight = false;
  bool recv_armed = false;
  // Backpressure (Shard::PauseInput): the next PUBLISH in `in` waits for the shard's outboxes to
  // drain; the receive is cancelled meanwhile. An end read behind input (EOF while paused; a
  // WebSocket close or TLS close_notify always) waits for that input: peer_closed says which.
  bool input_paused = false;
  const char* peer_closed = nullptr;  // a string literal
  bool transport_ended = false;       // ... by the WebSocket or TLS layer (Shard::EndTransport)
  bool close_when_flushed = false;    // a final packet (CONNACK error, DISCONNECT) then close
  bool publish_will = true;           // false after a normal DISCONNECT
  bool close_queued = false;          // Shard::QueueClose: closed after this turn's delivery step
  // The final packet is written and the write side shut: reading and discarding until EOF or
  // linger_until_ms (Shard::StartLinger), so that closing does not reset the connection.
  bool lingering = false;
  int64_t linger_until_ms = 0;

  int64_t last_rx_ms = 0;
  uint16_t keep_alive_s = 0;
  uint16_t client_receive_maximum = 65535;
  uint32_t client_max_packet_size = 268'435'460;
  bool request_problem_information = true;
  uint16_t client_topic_alias_maximum = 0;  // broker-to-client aliases allowed
  int64_t accepted_ms = 0;
  // Publish rate limits: a one-second window and what it has seen.
  int64_t rate_window_ms = 0;
  uint32_t rate_packets = 0;
  uint64_t rate_bytes = 0;
  // Wall-clock time of the CONNACK, ns: for the REST API (seconds) and, in cluster mode, the
  // stamp of the connection's claim of its client id.
  int64_t connected_ns = 0;
  bool auth_pending = false;   // a token lookup is on its way to the admin shard
  bool auth_answered = false;  // ... and came back: login->acl and login->key
  uint32_t held_acks = 0;      // PUBACK / PUBREC held by the shard's AckGate (durability = sync)
  // Counted in the Broker's ConnectionQuota (from the accepted CONNECT until the connection ends),
  // under quota_key (the token key, empty for anonymous clients).
  bool quota_counted = false;
  std::string quota_key;
  bool retained_refusal_logged = false;  // max_retained_bytes refusals are logged once (3.1.1)
};

template <typename P>
bool Connection::Queue(const P& packet) {
  const size_t n = proto::EncodedSize(packet, version);
  if (n == 0 || n > client_max_packet_size) return false;
  const size_t at = out.size();
  out.resize(at + n);
  return proto::Encode(packet, version, std::span(out.data() + at, n)) == n;
}

inline bool Connection::QueueEncoded(std::span<const uint8_t> packet, size_t id_offset,
                                     uint16_t packet_id) {
  if (packet.size() > client_max_packet_size) return false;
  const size_t at = out.size();
  out.insert(out.end(), packet.begin(), packet.end());
  if (packet_id != 0) {
    route::EncodedPublish::PatchPacketId(std::span(out.data() + at, packet.size()), id_offset,
                                         packet_id);
  }
  return true;
}

}  // namespace ringmq::broker

#endif  // RINGMQ_BROKER_CONNECTION_H_
