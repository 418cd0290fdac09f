// Unit tests of the load generator's pure parts: histogram, stream checks, payload header,
// scenario plans, the WebSocket client framing and the TLS / WebSocket transports (against the
// broker's own server state machines, net/tls.h and net/websocket.h, in memory). No sockets.
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <unistd.h>

#include <cstdio>
#include <random>

#include "net/tls.h"
#include "net/websocket.h"
#include "proto/codec.h"
#include "proto/framer.h"
#include "tools/bench/histogram.h"
#include "tools/bench/payload.h"
#include "tools/bench/scenario.h"
#include "tools/bench/seq_tracker.h"
#include "tools/bench/transport.h"
#include "tools/bench/ws_client.h"

namespace ringmq::bench {
namespace {

TEST(Histogram, BucketsCoverEveryValueWithinOnePercent) {
  std::mt19937_64 rng(7);
  for (int i = 0; i < 200000; ++i) {
    const uint64_t v = rng() >> (rng() % 64);
    const size_t b = Histogram::BucketOf(v);
    ASSERT_LT(b, Histogram::kBuckets);
    ASSERT_LE(Histogram::LowestOf(b), v);
    ASSERT_GE(Histogram::HighestOf(b), v);
    const double width = static_cast<double>(Histogram::HighestOf(b) - Histogram::LowestOf(b));
    ASSERT_LE(width, 0.01 * static_cast<double>(v) + 1) << v;
  }
  EXPECT_EQ(Histogram::BucketOf(UINT64_MAX), Histogram::kBuckets - 1);
  EXPECT_EQ(Histogram::BucketOf(255), 255u);
  EXPECT_EQ(Histogram::BucketOf(256), 256u);
}

TEST(Histogram, PercentilesOfAUniformSequence) {
  Histogram h;
  for (uint64_t v = 1; v <= 100000; ++v) h.Record(v * 1000);  // 1 us .. 100 ms
  EXPECT_EQ(h.count(), 100000u);
  EXPECT_NEAR(static_cast<double>(h.ValueAtPercentile(50)), 50e6, 50e6 * 0.01);
  EXPECT_NEAR(static_cast<double>(h.ValueAtPercentile(99)), 99e6, 99e6 * 0.01);
  EXPECT_GE(h.ValueAtPercentile(99), 99'000'000u);  // never under-reports
  EXPECT_EQ(h.ValueAtPercentile(100), 100'000'000u);
  EXPECT_EQ(h.max(), 100'000'000u);
  Histogram other;
  other.Record(5);
  h.Merge(other);
  EXPECT_EQ(h.count(), 100001u);
  EXPECT_EQ(h.min(), 5u);
  EXPECT_EQ(h.ValueAtPercentile(0), 5u);
}

TEST(SeqTracker, CountsGapsLateAndDuplicates) {
  SeqTracker t;
  for (uint64_t s : {0, 1, 2, 4, 5, 3, 3, 5, 9}) t.Add(s);
  EXPECT_EQ(t.next(), 10u);
  EXPECT_EQ(t.unique(), 7u);  // 0 1 2 3 4 5 9
  EXPECT_EQ(t.duplicates(), 2u);
  EXPECT_EQ(t.late(), 1u);     // 3
  EXPECT_EQ(t.missing(), 3u);  // 6 7 8
  EXPECT_EQ(t.Add(7), SeqTracker::Verdict::kLate);
  EXPECT_EQ(t.missing(), 2u);
  EXPECT_EQ(t.Add(7), SeqTracker::Verdict::kDuplicate);
}

TEST(SeqTracker, WindowWrapsWithoutFalseDuplicates) {
  SeqTracker t;
  for (uint64_t s = 0; s < 10000; s += 2) t.Add(s);  // every odd number skipped
  EXPECT_EQ(t.duplicates(), 0u);
  EXPECT_EQ(t.missing(), 4999u);
  EXPECT_EQ(t.Add(9997), SeqTracker::Verdict::kLate);  // inside the window, never seen
  EXPECT_EQ(t.Add(9998), SeqTracker::Verdict::kDuplicate);
}

TEST(Payload, HeaderRoundTrips) {
  uint8_t buf[32] = {};
  WritePayloadHeader({123456789012345ull, 77, 9}, buf);
  PayloadHeader h;
  ASSERT_TRUE(ReadPayloadHeader(buf, sizeof(buf), &h));
  EXPECT_EQ(h.timestamp_ns, 123456789012345ull);
  EXPECT_EQ(h.seq, 77u);
  EXPECT_EQ(h.publisher, 9u);
  EXPECT_FALSE(ReadPayloadHeader(buf, 15, &h));
}

TEST(Scenario, TemplatesAndWildcards) {
  EXPECT_EQ(ExpandTemplate("bench/%i/x", 42), "bench/42/x");
  EXPECT_EQ(WildcardOf("bench/%i/x"), "bench/+/x");
  EXPECT_EQ(WildcardOf("bench/dev%i"), "bench/+");
  EXPECT_EQ(WildcardOf("plain"), "plain");
}

TEST(Scenario, FanInSubscribersConnectFirst) {
  Options o;
  o.scenario = ScenarioKind::kFanIn;
  o.pubs = 16;
  o.subs = 1;
  o.topic = "bench/in/%i";
  o.client_prefix = "t-";
  Plan plan;
  std::string error;
  ASSERT_TRUE(MakePlan(o, &plan, &error)) << error;
  EXPECT_EQ(plan.publishers, 16u);
  EXPECT_EQ(plan.subscribers, 1u);
  EXPECT_EQ(plan.deliveries_per_publish, 1u);
  EXPECT_EQ(plan.clients[0].role, Role::kSubscriber);
  EXPECT_EQ(plan.clients[0].group, 0);
  EXPECT_EQ(plan.clients[0].filter, "bench/in/+");
  EXPECT_EQ(plan.clients[5].topic, "bench/in/4");
  EXPECT_EQ(plan.clients[5].group, 1);
}

TEST(Scenario, PersistentSubscribersKeepTheirSessionPublishersStayClean) {
  char arg0[] = "ringmq-bench", scenario[] = "fan-in", pubs[] = "--pubs", eight[] = "8",
       persistent[] = "--sub-persistent", version[] = "-V", five[] = "5", expiry[] = "-x",
       hour[] = "3600";
  char* argv[] = {arg0, scenario, pubs, eight, persistent, version, five, expiry, hour};
  Options o;
  int exit_code = 0;
  ASSERT_TRUE(ParseOptions(9, argv, &o, &exit_code));
  EXPECT_EQ(o.client_prefix, "rmqb-");  // no pid: the next run resumes the same session
  Plan plan;
  std::string error;
  ASSERT_TRUE(MakePlan(o, &plan, &error)) << error;
  ASSERT_EQ(plan.clients.size(), 9u);
  EXPECT_EQ(plan.clients[0].role, Role::kSubscriber);
  EXPECT_EQ(plan.clients[0].client_id, "rmqb-s0");
  EXPECT_FALSE(plan.clients[0].clean);
  EXPECT_EQ(plan.clients[0].session_expiry, 3600u);
  for (size_t i = 1; i < plan.clients.size(); ++i) {
    EXPECT_TRUE(plan.clients[i].clean) << i;
    EXPECT_EQ(plan.clients[i].session_expiry, 0u) << i;
  }
  // MQTT 5 without an expiry would end the session at DISCONNECT: refused.
  char zero[] = "0";
  char* bad[] = {arg0, scenario, persistent, version, five, expiry, zero};
  EXPECT_FALSE(ParseOptions(7, bad, &o, &exit_code));
  EXPECT_NE(exit_code, 0);
}

TEST(Scenario, SharedUsesAShareFilterAndNoOrderCheck) {
  Options o;
  o.scenario = ScenarioKind::kShared;
  o.pubs = 2;
  o.subs = 3;
  o.topic = "s/%i";
  Plan plan;
  std::string error;
  ASSERT_TRUE(MakePlan(o, &plan, &error));
  EXPECT_EQ(plan.clients[0].filter, "$share/bench/s/+");
  EXPECT_FALSE(plan.check_order);
  EXPECT_EQ(plan.deliveries_per_publish, 1u);
}

// The publisher patches a pre-encoded PUBLISH at fixed offsets: check the offsets against the
// codec for both protocol versions.
TEST(PublishTemplate, OffsetsMatchTheCodec) {
  for (proto::Version v : {proto::Version::kV311, proto::Version::kV5}) {
    std::vector<uint8_t> payload(16, 'x');
    proto::Publish p;
    p.qos = 1;
    p.topic = "bench/in/3";
    p.packet_id = 1;
    p.payload = std::string_view(reinterpret_cast<const char*>(payload.data()), payload.size());
    std::vector<uint8_t> bytes(proto::EncodedSize(p, v));
    ASSERT_EQ(proto::Encode(p, v, bytes), bytes.size());
    const size_t payload_offset = bytes.size() - payload.size();
    const size_t id_offset = payload_offset - (v == proto::Version::kV5 ? 1 : 0) - 2;
    bytes[id_offset] = 0x12;
    bytes[id_offset + 1] = 0x34;
    WritePayloadHeader({99, 5, 6}, bytes.data() + payload_offset);
    proto::Frame f;
    ASSERT_EQ(proto::NextFrame(bytes, 1 << 20, &f), proto::FrameStatus::kComplete);
    auto d = proto::DecodePublish(f.byte0, f.body, v);
    ASSERT_TRUE(d.ok());
    EXPECT_EQ(d->packet_id, 0x1234);
    PayloadHeader h;
    ASSERT_TRUE(ReadPayloadHeader(reinterpret_cast<const uint8_t*>(d->payload.data()),
                                  d->payload.size(), &h));
    EXPECT_EQ(h.timestamp_ns, 99u);
    EXPECT_EQ(h.seq, 5u);
    EXPECT_EQ(h.publisher, 6u);
  }
}

// --- WebSocket client framing. ---

using Bytes = std::vector<uint8_t>;

Bytes B(std::string_view s) { return Bytes(s.begin(), s.end()); }

// A masked client frame, decoded by hand.
struct ClientFrame {
  uint8_t byte0 = 0;
  bool masked = false;
  uint64_t length = 0;
  size_t header = 0;  // bytes of header including the key
  uint8_t key[4] = {};
  Bytes payload;  // unmasked
};

ClientFrame DecodeClientFrame(const Bytes& w, size_t at = 0) {
  ClientFrame f;
  f.byte0 = w[at];
  f.masked = w[at + 1] & 0x80;
  const uint8_t len7 = w[at + 1] & 0x7F;
  size_t pos = at + 2;
  if (len7 < 126) {
    f.length = len7;
  } else if (len7 == 126) {
    f.length = uint64_t{w[pos]} << 8 | w[pos + 1];
    pos += 2;
  } else {
    for (int i = 0; i < 8; ++i) f.length = f.length << 8 | w[pos + i];
    pos += 8;
  }
  std::memcpy(f.key, &w[pos], 4);
  pos += 4;
  f.header = pos - at;
  for (uint64_t i = 0; i < f.length; ++i) f.payload.push_back(w[pos + i] ^ f.key[i % 4]);
  return f;
}

// An unmasked server frame.
Bytes ServerFrame(uint8_t opcode, bool fin, const Bytes& payload) {
  uint8_t h[10];
  const size_t n = net::WebSocketSession::EncodeFrameHeader(opcode, fin, payload.size(), h);
  Bytes out(h, h + n);
  out.insert(out.end(), payload.begin(), payload.end());
  return out;
}

// A client that completed the upgrade against the broker's WebSocketSession.
struct WsPair {
  net::WebSocketConfig config;
  net::WebSocketSession server{&config};
  WsClient client{"127.0.0.1:8083", "/mqtt", 42};

  void Upgrade() {
    Bytes req, app, answer;
    client.Start(&req);
    const net::WsFeedResult r = server.Feed(req, &app, &answer);
    ASSERT_EQ(r.state, net::WsState::kOpen) << server.error();
    ASSERT_EQ(server.subprotocol(), "mqtt");
    Bytes none, out;
    ASSERT_TRUE(client.Feed(answer, &none, &out)) << client.error();
    ASSERT_TRUE(client.open());
    EXPECT_TRUE(none.empty());
    EXPECT_TRUE(out.empty());
  }
};

TEST(WsClient, FrameHeaderLengths) {
  const uint8_t key[4] = {1, 2, 3, 4};
  uint8_t h[14];
  struct Case {
    uint64_t len;
    size_t size;
  };
  for (const Case c : {Case{0, 6}, Case{125, 6}, Case{126, 8}, Case{65535, 8}, Case{65536, 14},
                       Case{uint64_t{1} << 40, 14}}) {
    ASSERT_EQ(WsClient::EncodeHeader(0x2, c.len, key, h), c.size) << c.len;
    EXPECT_EQ(h[0], 0x82);     // FIN, binary
    EXPECT_TRUE(h[1] & 0x80);  // masked
    EXPECT_EQ(0, std::memcmp(h + c.size - 4, key, 4));
    Bytes frame(h, h + c.size);
    uint64_t decoded = 0;
    if (c.size == 6) decoded = h[1] & 0x7F;
    if (c.size == 8) decoded = uint64_t{h[2]} << 8 | h[3];
    if (c.size == 14) {
      for (int i = 0; i < 8; ++i) decoded = decoded << 8 | h[2 + i];
    }
    EXPECT_EQ(decoded, c.len);
  }
}

TEST(WsClient, MaskIsItsOwnInverseAtEveryLength) {
  const uint8_t key[4] = {0xA1, 0x00, 0x5C, 0xFF};
  std::mt19937 rng(3);
  for (size_t n = 0; n < 40; ++n) {
    Bytes src(n), masked(n), back(n);
    for (auto& b : src) b = static_cast<uint8_t>(rng());
    net::WsMask(src.data(), masked.data(), n, key);
    for (size_t i = 0; i < n; ++i) ASSERT_EQ(masked[i], src[i] ^ key[i % 4]) << n << " " << i;
    net::WsMask(masked.data(), back.data(), n, key);
    EXPECT_EQ(back, src);
  }
}

TEST(WsClient, WrapMasksEveryFrameWithAFreshKey) {
  WsPair p;
  p.Upgrade();
  std::mt19937 rng(5);
  uint32_t last_key = 0;
  for (size_t n : {0, 1, 3, 7, 8, 9, 125, 126, 127, 1000, 65535, 65536, 70001}) {
    Bytes app(n);
    for (auto& b : app) b = static_cast<uint8_t>(rng());
    Bytes wire;
    p.client.Wrap(app, &wire);
    const ClientFrame f = DecodeClientFrame(wire);
    EXPECT_EQ(f.byte0, 0x82);
    EXPECT_TRUE(f.masked);
    EXPECT_EQ(f.length, n);
    EXPECT_EQ(f.header + n, wire.size());
    EXPECT_EQ(f.payload, app);
    uint32_t key;
    std::memcpy(&key, f.key, 4);
    EXPECT_NE(key, last_key);
    last_key = key;
    // The broker's session accepts it and gets the bytes back.
    Bytes got, answer;
    const net::WsFeedResult r = p.server.Feed(wire, &got, &answer);
    EXPECT_EQ(r.state, net::WsState::kOpen) << p.server.error();
    EXPECT_EQ(got, app);
    EXPECT_TRUE(answer.empty());
  }
}

TEST(WsClient, ParsesServerFramesSplitAnywhere) {
  // The 101 answer, then: binary 0, binary 125, a message fragmented into binary + continuation
  // with a ping between the fragments, binary 126, binary 70000 (64-bit length), a pong.
  std::mt19937 rng(11);
  auto random_bytes = [&](size_t n) {
    Bytes b(n);
    for (auto& x : b) x = static_cast<uint8_t>(rng());
    return b;
  };
  WsPair p;
  Bytes req, ignored, answer;
  p.client.Start(&req);
  p.server.Feed(req, &ignored, &answer);
  Bytes stream = answer, expected;
  auto data = [&](uint8_t op, bool fin, size_t n) {
    const Bytes payload = random_bytes(n);
    const Bytes f = ServerFrame(op, fin, payload);
    stream.insert(stream.end(), f.begin(), f.end());
    expected.insert(expected.end(), payload.begin(), payload.end());
  };
  data(0x2, true, 0);
  data(0x2, true, 125);
  data(0x2, false, 300);
  const Bytes ping = ServerFrame(0x9, true, B("are you there"));
  stream.insert(stream.end(), ping.begin(), ping.end());
  data(0x0, true, 7);
  data(0x2, true, 126);
  data(0x2, true, 70000);
  const Bytes pong = ServerFrame(0xA, true, B("x"));
  stream.insert(stream.end(), pong.begin(), pong.end());

  // Split points: every single split of the first 600 bytes, then random chunkings.
  std::vector<std::vector<size_t>> chunkings;
  for (size_t cut = 1; cut < 600; ++cut) chunkings.push_back({cut});
  for (int k = 0; k < 50; ++k) {
    std::vector<size_t> cuts;
    for (size_t at = 0; at < stream.size();) {
      at += 1 + rng() % (k < 25 ? 7 : 5000);
      if (at < stream.size()) cuts.push_back(at);
    }
    chunkings.push_back(cuts);
  }
  for (const auto& cuts : chunkings) {
    WsClient c("127.0.0.1:8083", "/mqtt", 42);  // same seed: same key as `req` was made with
    Bytes again;
    c.Start(&again);
    ASSERT_EQ(again, req);
    Bytes app, out;
    size_t from = 0;
    for (size_t i = 0; i <= cuts.size(); ++i) {
      const size_t to = i < cuts.size() ? cuts[i] : stream.size();
      ASSERT_TRUE(c.Feed(std::span<const uint8_t>(stream).subspan(from, to - from), &app, &out))
          << c.error();
      from = to;
    }
    ASSERT_EQ(app, expected);
    // Exactly one pong, masked, with the ping's payload.
    const ClientFrame f = DecodeClientFrame(out);
    EXPECT_EQ(f.byte0, 0x8A);
    EXPECT_TRUE(f.masked);
    EXPECT_EQ(f.payload, B("are you there"));
    EXPECT_EQ(f.header + f.length, out.size());
  }
}

TEST(WsClient, EchoesCloseAndReportsAbnormalCodes) {
  for (uint16_t code : {1000, 1002}) {
    WsPair p;
    p.Upgrade();
    Bytes close;
    p.server.Close(code, "bye", &close);
    Bytes app, out;
    EXPECT_EQ(p.client.Feed(close, &app, &out), code == 1000) << p.client.error();
    EXPECT_EQ(p.client.state(), WsClient::State::kClosed);
    EXPECT_EQ(p.client.close_code(), code);
    const ClientFrame f = DecodeClientFrame(out);
    EXPECT_EQ(f.byte0, 0x88);
    EXPECT_TRUE(f.masked);
    EXPECT_EQ(f.payload, Bytes({static_cast<uint8_t>(code >> 8), static_cast<uint8_t>(code)}));
    // The broker's session completes its close handshake with the echo.
    Bytes got, answer;
    EXPECT_EQ(p.server.Feed(out, &got, &answer).state, net::WsState::kClosed);
    // Nothing more is produced.
    Bytes wire;
    p.client.Wrap(B("x"), &wire);
    EXPECT_TRUE(wire.empty());
  }
}

TEST(WsClient, RefusesBadAnswersAndFrames) {
  auto answer_for = [](WsClient& c, const std::string& accept, const std::string& extra) {
    Bytes req;
    c.Start(&req);
    return B(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Accept: " +
        accept + "\r\n" + extra + "\r\n");
  };
  {
    WsClient c("h", "/mqtt", 1);
    const Bytes a = answer_for(c, "wrong=", "Sec-WebSocket-Protocol: mqtt\r\n");
    Bytes app, out;
    EXPECT_FALSE(c.Feed(a, &app, &out));
    EXPECT_NE(c.error().find("Accept"), std::string::npos) << c.error();
  }
  {
    WsClient c("h", "/mqtt", 1);
    Bytes req;
    c.Start(&req);
    const Bytes a = answer_for(c, net::WebSocketSession::AcceptKey(c.key()), "");
    Bytes app, out;
    EXPECT_FALSE(c.Feed(a, &app, &out));  // no subprotocol chosen
  }
  {
    WsClient c("h", "/mqtt", 1);
    Bytes req, app, out;
    c.Start(&req);
    EXPECT_FALSE(c.Feed(B("HTTP/1.1 404 Not Found\r\n\r\n"), &app, &out));
    EXPECT_EQ(c.error(), "websocket upgrade refused: HTTP/1.1 404 Not Found");
  }
  const Bytes masked = {0x82, 0x81, 1, 2, 3, 4, 5};
  const Bytes text = ServerFrame(0x1, true, B("hi"));
  const Bytes stray_continuation = ServerFrame(0x0, true, B("hi"));
  const Bytes long_ping = ServerFrame(0x9, true, Bytes(126, 'p'));
  for (const Bytes& bad : {masked, text, stray_continuation, long_ping}) {
    WsPair p;
    p.Upgrade();
    Bytes app, out;
    EXPECT_FALSE(p.client.Feed(bad, &app, &out));
    EXPECT_EQ(p.client.state(), WsClient::State::kFailed);
    EXPECT_TRUE(app.empty());
  }
}

// --- TLS and WebSocket over TLS through the transports, against the broker's TlsSession. ---

// A self-signed EC certificate for 127.0.0.1 and its key, in one PEM file; removed at the end.
class TempCert {
 public:
  TempCert() {
    char dir[] = "/tmp/loadgen_test.XXXXXX";
    dir_ = mkdtemp(dir);
    path_ = dir_ + "/cert.pem";
    EVP_PKEY* key = EVP_EC_gen("P-256");
    X509* c = X509_new();
    X509_set_version(c, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(c), 1);
    X509_gmtime_adj(X509_getm_notBefore(c), -3600);
    X509_gmtime_adj(X509_getm_notAfter(c), 86400);
    X509_set_pubkey(c, key);
    X509_NAME_add_entry_by_txt(X509_get_subject_name(c), "CN", MBSTRING_ASC,
                               reinterpret_cast<const unsigned char*>("localhost"), -1, -1, 0);
    X509_set_issuer_name(c, X509_get_subject_name(c));
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, c, c, nullptr, nullptr, 0);
    X509_EXTENSION* ext =
        X509V3_EXT_conf_nid(nullptr, &ctx, NID_subject_alt_name, "IP:127.0.0.1,DNS:localhost");
    X509_add_ext(c, ext, -1);
    X509_EXTENSION_free(ext);
    X509_sign(c, key, EVP_sha256());
    FILE* f = std::fopen(path_.c_str(), "w");
    PEM_write_X509(f, c);
    PEM_write_PrivateKey(f, key, nullptr, nullptr, 0, nullptr, nullptr);
    std::fclose(f);
    X509_free(c);
    EVP_PKEY_free(key);
  }
  ~TempCert() {
    std::remove(path_.c_str());
    rmdir(dir_.c_str());
  }
  const std::string& path() const { return path_; }

 private:
  std::string dir_;
  std::string path_;
};

// The broker's side: TLS (always) and WebSocket (for wss), fed what the transport sends.
struct FakeBroker {
  explicit FakeBroker(bool ws) : use_ws(ws) {}

  // Takes the client's bytes; returns the answer bytes; appends MQTT bytes to `mqtt`.
  Bytes Take(const Bytes& in) {
    Bytes plain, wire;
    tls.Feed(in, &plain, &wire);
    if (!use_ws) {
      mqtt.insert(mqtt.end(), plain.begin(), plain.end());
      return wire;
    }
    Bytes ws_out;
    ws.Feed(plain, &mqtt, &ws_out);
    if (!ws_out.empty()) tls.Write(ws_out, &wire);
    return wire;
  }
  // Sends MQTT bytes to the client.
  Bytes Send(const Bytes& app) {
    Bytes wire;
    if (!use_ws) {
      tls.Write(app, &wire);
      return wire;
    }
    Bytes framed;
    ws.Wrap(app, &framed);
    tls.Write(framed, &wire);
    return wire;
  }

  bool use_ws;
  net::TlsSession tls;
  net::WebSocketConfig config;
  net::WebSocketSession ws{&config};
  Bytes mqtt;
};

net::TlsConfig ServerConfig(const std::string& pem) {
  net::TlsConfig c;
  c.cert_file = pem;
  c.key_file = pem;
  return c;
}

TransportOptions ClientOptions(const char* kind, const std::string& cafile, bool insecure) {
  TransportOptions o;
  o.kind = kind;
  o.host = "127.0.0.1";
  o.port = 8883;
  o.cafile = cafile;
  o.insecure = insecure;
  return o;
}

// Drives a transport and the fake broker until neither has anything more to say (the TLS 1.3
// session tickets included); true when the transport is then ready.
bool Handshake(Transport& t, FakeBroker& b) {
  Bytes to_broker;
  t.Start(&to_broker);
  for (int round = 0; round < 10 && !to_broker.empty(); ++round) {
    const Bytes to_client = b.Take(to_broker);
    to_broker.clear();
    std::span<const uint8_t> app;
    if (!t.Receive(to_client, &app, &to_broker)) return false;
    EXPECT_TRUE(app.empty());
  }
  return t.ready();
}

TEST(Transport, TlsAndWssRoundTripAgainstTheBrokersSessions) {
  TempCert cert;
  net::TlsContext server;
  ASSERT_EQ(server.Load(ServerConfig(cert.path())), "");
  for (const char* kind : {"tls", "wss"}) {
    SCOPED_TRACE(kind);
    TransportFactory factory;
    std::string error;
    ASSERT_TRUE(factory.Init(ClientOptions(kind, cert.path(), false), &error)) << error;
    auto t = factory.Make(1);
    FakeBroker b(std::string_view(kind) == "wss");
    ASSERT_EQ(b.tls.Start(server), "");
    ASSERT_TRUE(Handshake(*t, b)) << t->error();
    EXPECT_EQ(b.tls.state(), net::TlsState::kOpen);
    // Client -> broker: two loop turns of MQTT bytes.
    Bytes expected;
    for (size_t n : {size_t{2}, size_t{100000}}) {
      Bytes app(n, static_cast<uint8_t>(n)), wire;
      expected.insert(expected.end(), app.begin(), app.end());
      t->Wrap(&app, &wire);
      EXPECT_TRUE(app.empty());
      EXPECT_TRUE(b.Take(wire).empty());
    }
    EXPECT_EQ(b.mqtt, expected);
    // Broker -> client, fed one byte at a time.
    const Bytes down = b.Send(Bytes(5000, 0x30));
    Bytes got, out;
    for (uint8_t byte : down) {
      std::span<const uint8_t> app;
      ASSERT_TRUE(t->Receive(std::span<const uint8_t>(&byte, 1), &app, &out)) << t->error();
      got.insert(got.end(), app.begin(), app.end());
    }
    EXPECT_EQ(got, Bytes(5000, 0x30));
  }
}

TEST(Transport, TlsRefusesAnUntrustedCertificate) {
  TempCert cert;
  net::TlsContext server;
  ASSERT_EQ(server.Load(ServerConfig(cert.path())), "");
  TransportFactory factory;
  std::string error;
  ASSERT_TRUE(factory.Init(ClientOptions("tls", "", false), &error)) << error;
  auto t = factory.Make(1);
  FakeBroker b(false);
  ASSERT_EQ(b.tls.Start(server), "");
  EXPECT_FALSE(Handshake(*t, b));
  EXPECT_NE(t->error().find("certificate verify failed"), std::string::npos) << t->error();
  // --insecure accepts it.
  TransportFactory insecure;
  ASSERT_TRUE(insecure.Init(ClientOptions("tls", "", true), &error));
  auto t2 = insecure.Make(1);
  FakeBroker b2(false);
  ASSERT_EQ(b2.tls.Start(server), "");
  EXPECT_TRUE(Handshake(*t2, b2)) << t2->error();
}

}  // namespace
}  // namespace ringmq::bench
