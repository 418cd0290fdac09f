// The MQTT side of the load generator's clients: CONNECT/SUBSCRIBE, the packets that come back,
// publish generation (open loop) and the per-publisher stream checks.
#include <algorithm>
#include <climits>
#include <cstdio>
#include <cstring>

#include "proto/codec.h"
#include "proto/varint.h"
#include "tools/bench/payload.h"
#include "tools/bench/worker.h"

namespace ringmq::bench {

namespace {

constexpr uint32_t kMaxPacket = proto::kMaxVarint + 5;
constexpr size_t kFillBytes = 64 * 1024;  // unlimited rate: queue up to this much per publisher

void AppendAck(std::vector<uint8_t>& out, uint8_t byte0, uint16_t packet_id) {
  const uint8_t ack[4] = {byte0, 0x02, static_cast<uint8_t>(packet_id >> 8),
                          static_cast<uint8_t>(packet_id)};
  out.insert(out.end(), ack, ack + 4);
}

template <typename Packet>
void AppendPacket(std::vector<uint8_t>& out, const Packet& p, proto::Version v) {
  const size_t n = proto::EncodedSize(p, v);
  const size_t base = out.size();
  out.resize(base + n);
  const size_t written = proto::Encode(p, v, std::span<uint8_t>(out.data() + base, n));
  out.resize(base + written);
}

std::string ReasonText(const char* what, proto::ReasonCode code) {
  char buf[160];
  std::snprintf(buf, sizeof(buf), "%s 0x%02X (%s)", what, static_cast<unsigned>(code),
                proto::ReasonCodeName(code));
  return buf;
}

}  // namespace

void Worker::SendConnect(Client& c) {
  proto::Connect p;
  p.version = options_.version;
  p.clean_start = c.spec->clean;
  p.keep_alive = options_.keepalive;
  p.client_id = c.spec->client_id;
  if (!options_.username.empty()) {
    p.has_username = true;
    p.username = options_.username;
  }
  if (!options_.password.empty()) {
    p.has_password = true;
    p.password = options_.password;
  }
  if (options_.version == proto::Version::kV5 && !c.spec->clean) {
    p.props.session_expiry_interval = c.spec->session_expiry;
  }
  AppendPacket(c.out, p, options_.version);
  c.state = Client::State::kMqttConnecting;
  MarkDirty(c);
}

void Worker::HandleInput(Client& c, std::span<const uint8_t> data, int64_t now) {
  // Parse straight from the receive buffer; only an incomplete tail is copied.
  const bool carried = !c.in.empty();
  if (carried) c.in.insert(c.in.end(), data.begin(), data.end());
  std::span<const uint8_t> bytes = carried ? std::span<const uint8_t>(c.in) : data;
  size_t pos = 0;
  for (;;) {
    proto::Frame f;
    const proto::FrameStatus st = proto::NextFrame(bytes.subspan(pos), kMaxPacket, &f);
    if (st == proto::FrameStatus::kIncomplete) break;
    if (st != proto::FrameStatus::kComplete) {
      Close(c, false, "malformed packet from the broker");
      return;
    }
    pos += f.size;
    if (!HandlePacket(c, f, now)) return;
  }
  if (carried) {
    c.in.erase(c.in.begin(), c.in.begin() + static_cast<ptrdiff_t>(pos));
  } else if (pos < data.size()) {
    c.in.assign(data.begin() + static_cast<ptrdiff_t>(pos), data.end());
  }
}

bool Worker::HandlePacket(Client& c, const proto::Frame& f, int64_t now) {
  switch (static_cast<proto::PacketType>(f.byte0 >> 4)) {
    case proto::PacketType::kPublish:
      OnPublish(c, f, now);
      break;
    case proto::PacketType::kPuback:
    case proto::PacketType::kPubrec:
    case proto::PacketType::kPubcomp:
      OnAck(c, f, now);
      break;
    case proto::PacketType::kPubrel:
      if (f.body.size() < 2) {
        Close(c, false, "malformed PUBREL");
        break;
      }
      AppendAck(c.out, 0x70, static_cast<uint16_t>(f.body[0] << 8 | f.body[1]));  // PUBCOMP
      MarkDirty(c);
      break;
    case proto::PacketType::kConnack:
      OnConnack(c, f, now);
      break;
    case proto::PacketType::kSuback:
      OnSuback(c, f, now);
      break;
    case proto::PacketType::kPingresp:
    case proto::PacketType::kUnsuback:
      break;
    case proto::PacketType::kDisconnect: {
      auto d = proto::DecodeDisconnect(f.byte0, f.body, options_.version);
      Close(c, c.state == Client::State::kDisconnecting,
            d.ok() ? ReasonText("DISCONNECT from the broker:", d->reason)
                   : std::string("malformed DISCONNECT from the broker"));
      break;
    }
    default:
      Close(c, false, "unexpected packet from the broker");
      break;
  }
  return c.state != Client::State::kClosed;
}

void Worker::OnConnack(Client& c, const proto::Frame& f, int64_t now) {
  if (c.state != Client::State::kMqttConnecting) {
    Close(c, false, "CONNACK out of order");
    return;
  }
  auto ack = proto::DecodeConnack(f.byte0, f.body, options_.version);
  if (!ack.ok()) {
    Fail(c, std::string("malformed CONNACK: ") + ack.error().detail);
    return;
  }
  if (ack->reason != proto::ReasonCode::kSuccess) {
    Fail(c, ReasonText("CONNACK refused:", ack->reason));
    return;
  }
  ++result_.connected;
  result_.connect_latency.Record(static_cast<uint64_t>(now - c.connect_start_ns));
  c.window = options_.inflight;
  if (ack->props.receive_maximum)
    c.window = std::min<uint32_t>(c.window, *ack->props.receive_maximum);
  c.window = std::min<uint32_t>(c.window, 65000);
  if (c.spec->role == Role::kSubscriber) {
    proto::Subscribe s;
    s.packet_id = 1;
    proto::Subscription sub;
    sub.filter = c.spec->filter;
    sub.qos = options_.qos;
    s.subscriptions.push_back(sub);
    AppendPacket(c.out, s, options_.version);
    c.state = Client::State::kSubscribing;
    c.subscribe_start_ns = now;
    MarkDirty(c);
    return;
  }
  if (c.spec->role == Role::kPublisher) BuildPublishTemplate(c);
  BecomeReady(c, now);
}

void Worker::OnSuback(Client& c, const proto::Frame& f, int64_t now) {
  if (c.state != Client::State::kSubscribing) {
    Close(c, false, "SUBACK out of order");
    return;
  }
  auto ack = proto::DecodeSuback(f.byte0, f.body, options_.version);
  if (!ack.ok()) {
    Fail(c, std::string("malformed SUBACK: ") + ack.error().detail);
    return;
  }
  for (proto::ReasonCode r : ack->reasons) {
    if (static_cast<uint8_t>(r) >= 0x80) {
      Fail(c, ReasonText(("SUBACK refused '" + c.spec->filter + "':").c_str(), r));
      return;
    }
  }
  BecomeReady(c, now);
}

void Worker::BecomeReady(Client& c, int64_t now) {
  c.state = Client::State::kReady;
  c.last_tx_ns = now;
  --pending_connects_;
  const int g = c.spec->group;
  counters_.settled[g].fetch_add(1, std::memory_order_relaxed);
  result_.connect_last_ns[g] = std::max(result_.connect_last_ns[g], now);
}

void Worker::Fail(Client& c, const std::string& why) {
  ++result_.failed;
  ++result_.errors[why];
  --pending_connects_;
  counters_.settled[c.spec->group].fetch_add(1, std::memory_order_relaxed);
  c.state = Client::State::kDisconnecting;  // not pre-ready any more: Close just closes
  Close(c, true, why);
}

void Worker::OnPublish(Client& c, const proto::Frame& f, int64_t now) {
  // A PUBLISH is parsed here by hand (topic, packet id, properties skipped): it is the hot path of
  // every subscriber, and the load generator must never be what limits a run.
  const uint8_t qos = (f.byte0 >> 1) & 3;
  const bool retain = f.byte0 & 1;
  std::span<const uint8_t> b = f.body;
  size_t pos = 2;
  if (b.size() < 2) return Close(c, false, "malformed PUBLISH");
  pos += size_t{b[0]} << 8 | b[1];
  uint16_t packet_id = 0;
  if (qos > 0) {
    if (pos + 2 > b.size()) return Close(c, false, "malformed PUBLISH");
    packet_id = static_cast<uint16_t>(b[pos] << 8 | b[pos + 1]);
    pos += 2;
  }
  if (options_.version == proto::Version::kV5) {
    uint32_t props = 0;
    size_t used = 0;
    if (pos > b.size() || proto::DecodeVarint(b.data() + pos, b.size() - pos, &props, &used) !=
                              proto::VarintStatus::kOk) {
      return Close(c, false, "malformed PUBLISH");
    }
    pos += used + props;
  }
  if (pos > b.size()) return Close(c, false, "malformed PUBLISH");
  if (qos == 1) {
    AppendAck(c.out, 0x40, packet_id);  // PUBACK
    MarkDirty(c);
  } else if (qos == 2) {
    AppendAck(c.out, 0x50, packet_id);  // PUBREC
    MarkDirty(c);
  }
  ++result_.received;
  result_.last_receive_ns = now;
  if (retain) {
    ++result_.retained;
    if (++c.retained_received == options_.retained_topics && !plan_.has_run_phase) {
      result_.retained_time.Record(static_cast<uint64_t>(now - c.subscribe_start_ns));
      counters_.retained_complete.fetch_add(1, std::memory_order_relaxed);
    }
    return;
  }
  PayloadHeader h;
  if (!ReadPayloadHeader(b.data() + pos, b.size() - pos, &h)) {
    ++result_.untracked;
    return;
  }
  const int64_t latency = now - static_cast<int64_t>(h.timestamp_ns);
  result_.latency.Record(latency > 0 ? static_cast<uint64_t>(latency) : 0);
  if (plan_.check_order) {
    c.StreamOf(h.publisher).Add(h.seq);
  } else {
    ++result_.unique;
  }
}

void Worker::OnAck(Client& c, const proto::Frame& f, int64_t now) {
  if (f.body.size() < 2) return Close(c, false, "malformed acknowledgement");
  const uint16_t packet_id = static_cast<uint16_t>(f.body[0] << 8 | f.body[1]);
  const bool failed = f.body.size() >= 3 && f.body[2] >= 0x80;
  const auto type = static_cast<proto::PacketType>(f.byte0 >> 4);
  if (failed) ++result_.rejected_publishes;
  if (type == proto::PacketType::kPubrec && !failed) {
    AppendAck(c.out, 0x62, packet_id);  // PUBREL
    MarkDirty(c);
    return;
  }
  if (c.inflight == 0) return Close(c, false, "acknowledgement without a publish in flight");
  --c.inflight;
  if (!c.sent_ns.empty()) {
    if (!failed) result_.ack_latency.Record(static_cast<uint64_t>(now - c.sent_ns.front()));
    c.sent_ns.pop_front();
  }
  if (!failed) ++result_.acked;
}

void Worker::BuildPublishTemplate(Client& c) {
  proto::Publish p;
  p.qos = options_.qos;
  p.topic = c.spec->topic;
  p.packet_id = p.qos > 0 ? 1 : 0;
  p.payload = std::string_view(reinterpret_cast<const char*>(filler_.data()), filler_.size());
  c.publish_template.clear();
  AppendPacket(c.publish_template, p, options_.version);
  c.payload_offset = c.publish_template.size() - filler_.size();
  c.packet_id_offset = c.payload_offset - (options_.version == proto::Version::kV5 ? 1 : 0) - 2;
}

void Worker::AppendPublish(Client& c, int64_t timestamp_ns) {
  const size_t base = c.out.size();
  c.out.resize(base + c.publish_template.size());
  uint8_t* p = c.out.data() + base;
  std::memcpy(p, c.publish_template.data(), c.publish_template.size());
  if (options_.qos > 0) {
    const uint16_t id = c.NextPacketId();
    p[c.packet_id_offset] = static_cast<uint8_t>(id >> 8);
    p[c.packet_id_offset + 1] = static_cast<uint8_t>(id);
    ++c.inflight;
    c.sent_ns.push_back(timestamp_ns);
  }
  WritePayloadHeader(
      {static_cast<uint64_t>(timestamp_ns), static_cast<uint32_t>(c.seq), c.spec->publisher_id},
      p + c.payload_offset);
  ++c.seq;
  ++result_.published;
}

int64_t Worker::Generate(Client& c, int64_t now) {
  if (c.state != Client::State::kReady || c.publishing_done) return INT64_MAX;
  const bool limited = options_.rate > 0;
  const double interval = limited ? 1e9 / options_.rate : 0;
  // Publishers start staggered over one interval so that they do not fire in bursts.
  const double offset =
      limited ? interval * (c.spec->publisher_id - options_.start_number) / plan_.publishers : 0;
  // Unlimited QoS 1/2: refill the window only once half of it is acknowledged, so that a broker
  // acknowledging one by one gets batches of publishes (fewer, larger sends) rather than one
  // send per acknowledgement, which would make the generator's TCP stack the bottleneck.
  if (!limited && options_.qos > 0 && c.inflight > c.window / 2) return INT64_MAX;
  int64_t next = INT64_MAX;
  const size_t before = c.out.size();
  for (;;) {
    if (options_.count != 0 && c.seq >= options_.count) {
      c.publishing_done = true;
      break;
    }
    if (options_.qos > 0 && c.inflight >= c.window) break;
    if (limited) {
      const int64_t due =
          run_start_ns_ + static_cast<int64_t>(offset + interval * static_cast<double>(c.seq));
      if (run_end_ns_ != 0 && due >= run_end_ns_) {
        c.publishing_done = true;
        break;
      }
      if (due > now) {
        next = due;
        break;
      }
      AppendPublish(c, due);
    } else {
      if (run_end_ns_ != 0 && now >= run_end_ns_) {
        c.publishing_done = true;
        break;
      }
      if (c.out.size() >= kFillBytes) break;
      AppendPublish(c, now);
    }
  }
  if (c.out.size() != before) {
    result_.last_publish_ns = now;
    MarkDirty(c);
  }
  if (c.publishing_done) counters_.publishers_done.fetch_add(1, std::memory_order_relaxed);
  return next;
}

void Worker::Seed(Client& c) {
  if (c.state != Client::State::kReady || c.publishing_done) return;
  const size_t before = c.out.size();
  while (c.seq < options_.retained_topics && c.inflight < c.window) {
    const std::string topic = ExpandTemplate(c.spec->topic, options_.start_number + c.seq);
    proto::Publish p;
    p.qos = 1;  // acknowledged, so the storm starts only once every message is stored
    p.retain = true;
    p.topic = topic;
    p.packet_id = c.NextPacketId();
    std::vector<uint8_t> payload(filler_);
    const int64_t now = MonoNs();
    WritePayloadHeader(
        {static_cast<uint64_t>(now), static_cast<uint32_t>(c.seq), c.spec->publisher_id},
        payload.data());
    p.payload = std::string_view(reinterpret_cast<const char*>(payload.data()), payload.size());
    AppendPacket(c.out, p, options_.version);
    ++c.inflight;
    c.sent_ns.push_back(now);
    ++c.seq;
    ++result_.published;
  }
  if (c.out.size() != before) MarkDirty(c);
  if (c.seq >= options_.retained_topics && c.inflight == 0) {
    c.publishing_done = true;
    counters_.publishers_done.fetch_add(1, std::memory_order_relaxed);
  }
}

void Worker::HarvestStreams() {
  for (Client& c : clients_) {
    for (const auto& [publisher, s] : c.streams) {
      result_.unique += s.unique();
      result_.duplicates += s.duplicates();
      result_.late += s.late();
      result_.gaps += s.missing();
    }
  }
}

}  // namespace ringmq::bench
