// The connections of a shard (broker/shard.h, doc/threading.md "The shard loop", "Closing"):
// accept, receive through the transports (TLS, WebSocket) into the MQTT input, one send per
// connection per loop turn, graceful close and linger, closes queued off the delivery path.
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "base/log.h"
#include "broker/broker.h"
#include "broker/shard.h"
#include "net/socket.h"
#include "net/user_data.h"

namespace ringmq::broker {

namespace {
// After a closing DISCONNECT or CONNACK: how long what the client still sends is read and
// discarded (see StartLinger).
constexpr int64_t kLingerMs = 2000;
}  // namespace

void Shard::ArmAccept(int index) {
  ring_.PrepMultishotAccept(listen_fds_[index], net::PackUserData(kOpAccept, 0, index));
}

void Shard::ArmRecv(Connection& c) {
  const uint64_t ud = net::PackUserData(kOpRecv, c.generation, c.slot);
  // Until CONNECT is handled, read one completion at a time: the connection may move to its home
  // shard, which must then be the only reader.
  if (c.state == Connection::State::kAwaitConnect) {
    ring_.PrepRecv(c.fd, buffers_->group(), ud);
  } else {
    ring_.PrepMultishotRecv(c.fd, buffers_->group(), ud);
  }
  c.recv_armed = true;
}

void Shard::OnAccept(int res, bool more, int index) {
  if (res >= 0) {
    if (accept_pause_logged_) {
      LOG_WARN_S(kMqtt, "shard {}: accepting again", id_);
      accept_pause_logged_ = false;
    }
    const Config& cfg = cfg_;
    // max_connections is enforced at CONNECT (with a CONNACK saying why, see HandleConnect); a
    // socket that never sends one is closed after connect_timeout.
    if (stopping_) {
      ::close(res);
    } else {
      net::SetSocketOptions(res, cfg.socket_send_buffer, cfg.socket_recv_buffer);
      Connection* c = NewConnection(res, net::PeerAddress(res));
      const Listener& l = cfg.listeners[static_cast<size_t>(index)];
      if (l.tls() || l.websocket()) c->transport = std::make_unique<Connection::Transport>();
      if (l.tls()) {
        c->transport->tls = std::make_unique<net::TlsSession>();
        if (std::string e = c->transport->tls->Start(tls_); !e.empty()) {
          LOG_WARN_S(kTls, "shard {}: TLS for {}: {}", id_, c->peer, e);
          CloseConnection(*c, "TLS setup failed");
          c = nullptr;
        }
      }
      if (c != nullptr && l.websocket()) {
        c->transport->ws = std::make_unique<net::WebSocketSession>(&broker_.ws_config(index));
      }
      if (c != nullptr) ArmRecv(*c);
    }
  } else if (!more && (res == -EMFILE || res == -ENFILE || res == -ENOBUFS || res == -ENOMEM)) {
    // Out of descriptors (or kernel memory): the client stays in the listen backlog. Accepting
    // again at once would fail again, in a loop; the next tick tries again (ResumeAccepting).
    stats_.accept_pauses.Add();
    if (!accept_pause_logged_) {
      LOG_WARN_S(kMqtt,
                 "shard {}: accepting paused: {}; retried every tick, new clients wait in the "
                 "listen backlog meanwhile",
                 id_, std::strerror(-res));
      accept_pause_logged_ = true;
    }
    const auto i = static_cast<size_t>(index);
    if (i < listen_fds_.size()) {  // (none after BeginShutdown)
      if (accept_paused_.size() < listen_fds_.size()) accept_paused_.resize(listen_fds_.size());
      accept_paused_[i] = true;
    }
    return;
  } else if (res != -ECANCELED && res != -EBADF && res != -EINVAL) {
    LOG_WARN_S(kMqtt, "shard {}: accept failed: {}", id_, std::strerror(-res));
  }
  if (!more && !stopping_ && static_cast<size_t>(index) < listen_fds_.size()) ArmAccept(index);
}

Connection* Shard::NewConnection(int fd, std::string peer) {
  Connection* c = conns_.Add([fd](uint32_t slot, uint32_t generation) {
    return std::make_unique<Connection>(fd, slot, generation);
  });
  c->peer = std::move(peer);
  c->last_rx_ms = NowMs();
  c->accepted_ms = c->last_rx_ms;
  return c;
}

void Shard::OnRecv(Connection& c, int res, uint32_t flags) {
  const bool more = flags & net::kCqeMore;
  if (res == -ENOBUFS || res == -ECANCELED) {
    // Every provided buffer is in use (they come back as connections are served), or PauseInput
    // cancelled the receive (the only cancel of one; the connection may be closing since). Read
    // on: a lingering connection until EOF, an open one unless its input is paused; a closing one
    // is armed again by StartLinger.
    if (!more) {
      c.recv_armed = false;
      if (c.lingering || (!c.closing() && !c.input_paused)) ArmRecv(c);
    }
    return;
  }
  if (res == 0 && c.input_paused && !c.closing()) {
    // EOF behind input that waits (PauseInput): the packets before it are handled first
    // (ContinueInput closes the connection after them).
    c.recv_armed = false;
    if (c.peer_closed == nullptr) c.peer_closed = "peer closed";
    return;
  }
  if (res <= 0) {
    c.recv_armed = false;
    if (res < 0 && res != -ECONNRESET)
      LOG_DEBUG_S(kMqtt, "shard {}: recv {}: {}", id_, c.peer, std::strerror(-res));
    // A peer that only shut its write side still gets the final packet (then EOF at once).
    const bool final_packet_pending =
        c.send_in_flight ||
        (res == 0 && c.close_when_flushed && (!c.out.empty() || c.transport_out_pending()));
    if (c.state != Connection::State::kClosing) {
      CloseConnection(c, res == 0 ? "peer closed" : "recv error");
    } else if (!final_packet_pending) {
      CloseConnection(c, "closed");
    }
    return;
  }
  const uint16_t bid = net::BufferId(flags);
  std::span<const uint8_t> data = buffers_->Get(bid, static_cast<size_t>(res));
  if (!more) c.recv_armed = false;
  if (c.closing() || c.peer_closed != nullptr) {
    buffers_->Recycle(bid);  // nothing more is handled from a closing connection
    if (c.lingering && !c.recv_armed) ArmRecv(c);  // ... but it is read until EOF
    return;
  }
  c.last_rx_ms = NowMs();
  stats_.bytes_in.Add(static_cast<uint64_t>(res));
  const bool open = TransportIn(c, data);
  buffers_->Recycle(bid);
  if (!open) return;
  ContinueInput(c);
}

bool Shard::TransportIn(Connection& c, std::span<const uint8_t> data) {
  if (c.transport == nullptr) {
    c.in.insert(c.in.end(), data.begin(), data.end());
    return true;
  }
  Connection::Transport& t = *c.transport;
  const char* closing = nullptr;
  std::span<const uint8_t> plain = data;
  if (t.tls) {
    t.scratch.clear();
    const net::TlsState st = t.tls->Feed(data, &t.scratch, &t.out);
    if (st == net::TlsState::kFailed) {
      LOG_INFO_S(kTls, "shard {}: TLS with {} failed: {}", id_, c.peer, t.tls->error());
      closing = "TLS failed";
    } else if (st == net::TlsState::kClosed) {
      closing = "TLS closed by the peer";
    }
    plain = t.scratch;
    if (!t.ws) c.in.insert(c.in.end(), plain.begin(), plain.end());
  }
  if (t.ws && !plain.empty() && closing == nullptr) {
    ws_wire_.clear();
    const net::WsFeedResult r = t.ws->Feed(plain, &c.in, &ws_wire_);
    if (!ws_wire_.empty()) {
      if (t.tls) {
        (void)t.tls->Write(ws_wire_, &t.out);
      } else {
        t.out.insert(t.out.end(), ws_wire_.begin(), ws_wire_.end());
      }
    }
    if (r.state == net::WsState::kClosed) {
      if (!t.ws->error().empty()) {
        LOG_INFO_S(kMqtt, "shard {}: WebSocket from {}: {}", id_, c.peer, t.ws->error());
      }
      closing = "WebSocket closed";
    }
  }
  if (!t.out.empty()) MarkDirty(c);
  if (closing == nullptr) return true;
  if (c.state == Connection::State::kActive) {
    // The packets read before the close are handled first (ContinueInput ends the transport).
    c.peer_closed = closing;
    c.transport_ended = true;
    return true;
  }
  EndTransport(c, closing);
  return false;
}

void Shard::EndTransport(Connection& c, const char* why) {
  // Send what the transport answered (an HTTP error, a close frame, an alert), then close.
  ConnectionLost(c, why);
  c.state = Connection::State::kClosing;
  c.close_when_flushed = true;
  c.transport_closed = true;
  MarkDirty(c);
}

void Shard::FlushOutput() {
  // One send per connection per loop turn carries everything queued during the turn.
  conns_.DrainDirty([this](Connection& c) {
    if (!c.send_in_flight && (!c.out.empty() || c.transport_out_pending())) StartSend(c);
    if (c.state == Connection::State::kClosing && !c.send_in_flight && c.out.empty() &&
        !c.transport_out_pending()) {
      AfterFinalPacket(c);
    }
  });
}

void Shard::StartSend(Connection& c) {
  if (c.transport == nullptr) {
    c.sending.swap(c.out);
    c.out.clear();
  } else {
    // Transport bytes first (already in wire form), then this turn's MQTT bytes as one WebSocket
    // frame and/or one run of TLS records.
    Connection::Transport& t = *c.transport;
    c.sending.clear();
    c.sending.swap(t.out);
    const bool final_flush = c.state == Connection::State::kClosing && !c.transport_closed;
    if (!c.out.empty() || final_flush) {
      std::vector<uint8_t>* payload = &c.out;
      if (t.ws) {
        ws_wire_.clear();
        if (!c.out.empty()) t.ws->Wrap(c.out, &ws_wire_);
        if (final_flush) t.ws->Close(net::kWsCloseNormal, "", &ws_wire_);
        payload = &ws_wire_;
      }
      if (t.tls) {
        if (!payload->empty()) (void)t.tls->Write(*payload, &c.sending);
        if (final_flush) t.tls->Shutdown(&c.sending);
      } else {
        c.sending.insert(c.sending.end(), payload->begin(), payload->end());
      }
      c.out.clear();
      if (final_flush) c.transport_closed = true;
    }
    if (c.sending.empty()) return;
  }
  c.sending_offset = 0;
  c.send_in_flight = true;
  ring_.PrepSend(c.fd, c.sending.data(), c.sending.size(),
                 net::PackUserData(kOpSend, c.generation, c.slot));
}

void Shard::OnSend(Connection& c, int res) {
  if (res < 0) {
    c.send_in_flight = false;
    c.out.clear();
    CloseConnection(c, "send failed");
    return;
  }
  c.sending_offset += static_cast<size_t>(res);
  stats_.bytes_out.Add(static_cast<uint64_t>(res));
  if (c.sending_offset < c.sending.size()) {
    // A partial send: the rest goes next, still one send in flight.
    ring_.PrepSend(c.fd, c.sending.data() + c.sending_offset, c.sending.size() - c.sending_offset,
                   net::PackUserData(kOpSend, c.generation, c.slot));
    return;
  }
  c.send_in_flight = false;
  c.sending.clear();
  if (c.state == Connection::State::kClosing && c.session == nullptr && c.out.empty() &&
      !c.transport_out_pending()) {
    AfterFinalPacket(c);
    return;
  }
  if (!c.out.empty() || c.transport_out_pending()) MarkDirty(c);
}

void Shard::CloseConnection(Connection& c, const char* why, std::optional<proto::ReasonCode> code) {
  LOG_DEBUG_S(kMqtt, "shard {}: close {} ({}): {}", id_, c.peer,
              base::Cut(c.session != nullptr ? c.session->client_id() : std::string()), why);
  ConnectionLost(c, why, code);
  c.state = Connection::State::kClosing;
  c.close_when_flushed = false;
  c.out.clear();
  ::shutdown(c.fd, SHUT_RDWR);   // ends a pending receive or send with an error
  if (c.send_in_flight) return;  // freed when the send completes (its buffer is c.sending)
  ::close(c.fd);
  FreeConnection(c);
}

void Shard::AfterFinalPacket(Connection& c) {
  if (c.lingering) return;
  if (c.close_when_flushed) {
    StartLinger(c);
  } else {
    CloseConnection(c, "closed after final packet");
  }
}

void Shard::StartLinger(Connection& c) {
  // Closing a socket whose receive queue holds unread bytes answers with a reset, and a reset
  // discards what the client has not read yet (our final packet, its reason code) and what is
  // still in our send queue. So: FIN after the final packet (and the transport's close frame or
  // close_notify, written by StartSend), then read and discard until the client closes too
  // (OnRecv), kLingerMs pass (Tick) or the shard stops (Run's deadline bounds it).
  c.lingering = true;
  c.linger_until_ms = NowMs() + kLingerMs;
  ::shutdown(c.fd, SHUT_WR);
  if (!c.recv_armed) ArmRecv(c);
}

void Shard::QueueClose(Connection& c, proto::ReasonCode reason, const char* why) {
  if (c.closing()) return;
  c.close_queued = true;
  queued_closes_.push_back(QueuedClose{c.slot, c.generation, reason, why});
}

void Shard::RunQueuedCloses() {
  // A close publishes the will and may end the session; their deliveries may queue closes in
  // turn. Each connection closes once, so this ends.
  while (!queued_closes_.empty()) {
    std::vector<QueuedClose> batch;
    batch.swap(queued_closes_);
    for (const QueuedClose& q : batch) {
      Connection* c = conns_.Find(q.slot, q.generation);
      if (c == nullptr) continue;  // gone meanwhile
      c->close_queued = false;
      ProtocolClose(*c, q.reason, q.why);
    }
  }
}

void Shard::FreeConnection(Connection& c) {
  ReleaseConnectionQuota(c);  // normally done by ConnectionLost already
  conns_.Remove(c.slot);      // frees c
}

}  // namespace ringmq::broker
