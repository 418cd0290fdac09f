// MQTT behaviour through a real Shard, in memory: bytes go into a connection's input and the
// shard's handlers run as the loop would run them; what they queue for the client is decoded from
// the connection's output. No socket, no io_uring, no thread: the shard's loop never runs, so the
// tests call the steps it would (queued closes, the tick) themselves.
#include "broker/shard.h"

#include <gtest/gtest.h>

#include <deque>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "broker/broker.h"
#include "proto/codec.h"
#include "proto/framer.h"

namespace ringmq::broker {

using proto::ReasonCode;
using proto::Version;

// Reaches into the shard for the tests (a friend of Shard).
class ShardTestPeer {
 public:
  struct Client {
    uint32_t slot = 0;
    uint32_t generation = 0;
    Version version = Version::kV5;
    uint16_t shard = 0;
  };

  explicit ShardTestPeer(Config cfg, uint16_t shards = 1)
      : broker_(Prepared(std::move(cfg), shards)) {
    std::string error;
    EXPECT_TRUE(broker_.CreateShards(&error)) << error;
    shard_ = &broker_.shard(0);
  }

  // A connection accepted by shard `shard` (give its clients ids homed there: HomedOn).
  Client Open(Version v, uint16_t shard = 0) {
    Connection* c = broker_.shard(shard).NewConnection(-1, "127.0.0.1:40000");
    return Client{c->slot, c->generation, v, shard};
  }
  // `prefix` + the first number that makes a client id whose home shard is `shard`.
  std::string HomedOn(uint16_t shard, const std::string& prefix) const {
    for (int i = 0;; ++i) {
      std::string id = prefix + std::to_string(i);
      if (shard_->ShardOfKey(id) == shard) return id;
    }
  }

  // The client's connection, nullptr once the shard freed it.
  Connection* Conn(const Client& cl) {
    return broker_.shard(cl.shard).conns_.Find(cl.slot, cl.generation);
  }
  // Closed or closing: the shard handles no more of its input.
  bool Closed(const Client& cl) {
    const Connection* c = Conn(cl);
    return c == nullptr || c->closing();
  }

  // The client sends p; the shard handles it, then runs the closes the handling queued.
  template <typename P>
  void Send(const Client& cl, const P& p) {
    Connection* c = Conn(cl);
    ASSERT_NE(c, nullptr);
    const size_t n = proto::EncodedSize(p, cl.version);
    const size_t at = c->in.size();
    c->in.resize(at + n);
    ASSERT_EQ(proto::Encode(p, cl.version, std::span(c->in).subspan(at)), n);
    Shard& shard = broker_.shard(cl.shard);
    (void)shard.HandleInput(*c);
    shard.RunQueuedCloses();
  }

  // Everything the shard queued for the client since the last call, decoded.
  std::vector<proto::Packet> Received(const Client& cl) {
    Connection* c = Conn(cl);
    if (c == nullptr) return {};
    wire_.push_back(std::move(c->out));  // decoded packets point into it
    c->out.clear();
    std::vector<proto::Packet> packets;
    std::span<const uint8_t> rest(wire_.back());
    proto::Frame f;
    while (proto::NextFrame(rest, 1 << 20, &f) == proto::FrameStatus::kComplete) {
      auto p = proto::Decode(f.byte0, f.body, cl.version);
      EXPECT_TRUE(p.ok());
      if (p.ok()) packets.push_back(*p);
      rest = rest.subspan(f.size);
    }
    return packets;
  }

  // The client's socket failed (not a DISCONNECT).
  void Drop(const Client& cl) {
    if (Connection* c = Conn(cl)) shard_->CloseConnection(*c, "socket error");
    shard_->RunQueuedCloses();
  }

  // The loop's periodic step, `ms` from now.
  void TickAfter(int64_t ms) {
    shard_->Tick(shard_->NowMs() + ms);
    shard_->RunQueuedCloses();
  }

  Shard& shard() { return *shard_; }
  size_t sessions() const { return shard_->sessions_.size(); }

  // Backpressure between shards (broker/cross_shard.cc). Append(cl, p) adds p to the client's
  // input unhandled; Input(cl) then handles it as a receive would.
  template <typename P>
  void Append(const Client& cl, const P& p) {
    Connection* c = Conn(cl);
    const size_t n = proto::EncodedSize(p, cl.version);
    const size_t at = c->in.size();
    c->in.resize(at + n);
    (void)proto::Encode(p, cl.version, std::span(c->in).subspan(at));
  }
  void Input(const Client& cl) { (void)broker_.shard(cl.shard).HandleInput(*Conn(cl)); }
  // The receive of a paused client read EOF (Shard::OnRecv with res 0).
  void PeerClosed(const Client& cl) { broker_.shard(cl.shard).OnRecv(*Conn(cl), 0, 0); }
  // One loop turn's exchange between the shards: every shard pushes its outboxes (resuming paused
  // input once they are low), then every shard drains its inbox.
  void ExchangeBetweenShards() {
    for (uint16_t i = 0; i < broker_.shard_count(); ++i) broker_.shard(i).FlushOutbox();
    for (uint16_t i = 0; i < broker_.shard_count(); ++i) broker_.shard(i).DrainInbox();
  }
  uint64_t MessagesIn(uint16_t shard) { return broker_.shard(shard).stats().messages_in.Get(); }

 private:
  static Config Prepared(Config cfg, uint16_t shards) {
    cfg.shards = shards;
    cfg.sys_interval_s = 0;
    return cfg;
  }
  Broker broker_;
  Shard* shard_ = nullptr;
  std::deque<std::vector<uint8_t>> wire_;
};

namespace {

proto::Connect Connect(std::string_view id, bool clean_start = true, Version v = Version::kV5) {
  proto::Connect cn;
  cn.version = v;
  cn.client_id = id;
  cn.clean_start = clean_start;
  return cn;
}

proto::Subscribe Subscribe(std::string_view filter, uint8_t qos) {
  proto::Subscribe s;
  s.packet_id = 1;
  s.subscriptions.push_back(proto::Subscription{filter, qos, false, false, 0});
  return s;
}

proto::Publish Publish(std::string_view topic, std::string_view payload, uint8_t qos = 0,
                       uint16_t packet_id = 0) {
  proto::Publish p;
  p.topic = topic;
  p.payload = payload;
  p.qos = qos;
  p.packet_id = packet_id;
  return p;
}

template <typename P>
std::vector<P> OfType(const std::vector<proto::Packet>& packets) {
  std::vector<P> out;
  for (const proto::Packet& p : packets) {
    if (const P* x = std::get_if<P>(&p)) out.push_back(*x);
  }
  return out;
}

std::vector<std::string> Payloads(const std::vector<proto::Packet>& packets) {
  std::vector<std::string> out;
  for (const proto::Publish& p : OfType<proto::Publish>(packets)) out.emplace_back(p.payload);
  return out;
}

Config Anonymous() {
  Config cfg;
  cfg.allow_anonymous = true;
  return cfg;
}

class ShardTest : public ::testing::Test {
 protected:
  // A connected client; its CONNACK is consumed (and checked to be a success).
  ShardTestPeer::Client Connected(std::string_view id, proto::Connect cn) {
    const ShardTestPeer::Client cl = peer_.Open(cn.version);
    cn.client_id = id;
    peer_.Send(cl, cn);
    const auto acks = OfType<proto::Connack>(peer_.Received(cl));
    EXPECT_EQ(acks.size(), 1u);
    if (!acks.empty()) {
      EXPECT_EQ(acks[0].reason, ReasonCode::kSuccess) << id;
    }
    return cl;
  }
  ShardTestPeer::Client Connected(std::string_view id) { return Connected(id, Connect(id)); }
  ShardTestPeer::Client Subscribed(std::string_view id, std::string_view filter, uint8_t qos = 0) {
    const ShardTestPeer::Client cl = Connected(id);
    peer_.Send(cl, Subscribe(filter, qos));
    EXPECT_EQ(OfType<proto::Suback>(peer_.Received(cl)).size(), 1u);
    return cl;
  }

  ShardTestPeer peer_{Anonymous()};
};

TEST_F(ShardTest, PublishReachesMatchingSubscribersOnly) {
  const auto sub = Subscribed("sub", "data/+/temp");
  const auto other = Subscribed("other", "data/u2/#");
  const auto pub = Connected("pub");
  peer_.Send(pub, Publish("data/u1/temp", "21.5"));
  EXPECT_EQ(Payloads(peer_.Received(sub)), std::vector<std::string>{"21.5"});
  EXPECT_TRUE(peer_.Received(other).empty());
}

// What an idle client costs (doc/performance.md, "Idle connections"): the two objects stay within
// an allocator size class (mimalloc's 384 and 320 bytes), what only some clients need is not
// allocated for one that subscribed over plain TCP and waits, and its buffers are returned at the
// next tick.
TEST_F(ShardTest, AnIdleClientHoldsNoOptionalState) {
  EXPECT_LE(sizeof(Session), 384u);
  EXPECT_LE(sizeof(Connection), 320u);
  const auto cl = Subscribed("idle", "data/#", 1);
  const auto pub = Connected("pub");
  peer_.Send(pub, Publish("data/x", "1"));
  EXPECT_EQ(Payloads(peer_.Received(cl)), std::vector<std::string>{"1"});
  peer_.TickAfter(0);
  const Connection* c = peer_.Conn(cl);
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->in.capacity(), 0u);
  EXPECT_EQ(c->out.capacity(), 0u);
  EXPECT_EQ(c->sending.capacity(), 0u);
  ASSERT_NE(c, nullptr);
  ASSERT_NE(c->session, nullptr);
  EXPECT_EQ(c->transport, nullptr);
  EXPECT_EQ(c->aliases, nullptr);
  EXPECT_EQ(c->login, nullptr);
  EXPECT_EQ(c->session->will, nullptr);
  EXPECT_EQ(c->session->spill(), nullptr);
  EXPECT_LE(c->session->subscriptions().bucket_count(), 2u);  // not libstdc++'s first 13
}

TEST_F(ShardTest, FirstPacketMustBeConnect) {
  const auto cl = peer_.Open(Version::kV5);
  peer_.Send(cl, Publish("t", "x"));
  EXPECT_TRUE(peer_.Closed(cl));
}

TEST_F(ShardTest, Mqtt5EmptyClientIdIsAssigned) {
  const auto cl = peer_.Open(Version::kV5);
  peer_.Send(cl, Connect(""));
  const auto acks = OfType<proto::Connack>(peer_.Received(cl));
  ASSERT_EQ(acks.size(), 1u);
  EXPECT_EQ(acks[0].reason, ReasonCode::kSuccess);
  ASSERT_TRUE(acks[0].props.assigned_client_identifier.has_value());
  EXPECT_FALSE(acks[0].props.assigned_client_identifier->empty());
}

TEST_F(ShardTest, Mqtt311EmptyClientIdWithoutCleanSessionIsRejected) {
  const auto cl = peer_.Open(Version::kV311);
  peer_.Send(cl, Connect("", /*clean_start=*/false, Version::kV311));
  const auto acks = OfType<proto::Connack>(peer_.Received(cl));
  ASSERT_EQ(acks.size(), 1u);
  EXPECT_EQ(acks[0].reason, ReasonCode::kClientIdentifierNotValid);  // return code 2
  EXPECT_TRUE(peer_.Closed(cl));
}

TEST(ShardAuth, AnonymousClientsAreRefusedByDefault) {
  ShardTestPeer peer{Config{}};
  const auto cl = peer.Open(Version::kV5);
  peer.Send(cl, Connect("c"));
  const auto acks = OfType<proto::Connack>(peer.Received(cl));
  ASSERT_EQ(acks.size(), 1u);
  EXPECT_EQ(acks[0].reason, ReasonCode::kNotAuthorized);
  EXPECT_TRUE(peer.Closed(cl));
}

TEST_F(ShardTest, TakeoverClosesTheOldConnectionAndKeepsTheSession) {
  proto::Connect cn = Connect("c", /*clean_start=*/false);
  cn.props.session_expiry_interval = 3600;
  const auto first = Connected("c", cn);
  peer_.Send(first, Subscribe("t", 1));
  (void)peer_.Received(first);

  const auto second = peer_.Open(Version::kV5);
  peer_.Send(second, cn);
  const auto old = OfType<proto::Disconnect>(peer_.Received(first));
  ASSERT_EQ(old.size(), 1u);
  EXPECT_EQ(old[0].reason, ReasonCode::kSessionTakenOver);
  EXPECT_TRUE(peer_.Closed(first));
  const auto acks = OfType<proto::Connack>(peer_.Received(second));
  ASSERT_EQ(acks.size(), 1u);
  EXPECT_TRUE(acks[0].session_present);
  EXPECT_EQ(peer_.sessions(), 1u);

  // The subscription came along.
  const auto pub = Connected("pub");
  peer_.Send(pub, Publish("t", "after"));
  EXPECT_EQ(Payloads(peer_.Received(second)), std::vector<std::string>{"after"});
}

TEST_F(ShardTest, WillIsPublishedWhenTheConnectionIsLostNotOnDisconnect) {
  const auto watcher = Subscribed("watcher", "wills/#");
  proto::Connect cn = Connect("a");
  cn.has_will = true;
  cn.will.topic = "wills/a";
  cn.will.payload = "a is gone";
  const auto a = Connected("a", cn);
  peer_.Drop(a);
  EXPECT_EQ(Payloads(peer_.Received(watcher)), std::vector<std::string>{"a is gone"});

  cn.client_id = "b";
  cn.will.topic = "wills/b";
  const auto b = Connected("b", cn);
  peer_.Send(b, proto::Disconnect{ReasonCode::kSuccess, {}});  // [MQTT-3.14.4-3]: discarded
  EXPECT_TRUE(peer_.Received(watcher).empty());

  cn.client_id = "c";
  cn.will.topic = "wills/c";
  cn.will.payload = "c asked for it";
  const auto c = Connected("c", cn);
  peer_.Send(c, proto::Disconnect{ReasonCode::kDisconnectWithWillMessage, {}});
  EXPECT_EQ(Payloads(peer_.Received(watcher)), std::vector<std::string>{"c asked for it"});
}

TEST_F(ShardTest, DelayedWillWaitsAndAReconnectCancelsIt) {
  const auto watcher = Subscribed("watcher", "wills/#");
  proto::Connect cn = Connect("a", /*clean_start=*/false);
  cn.props.session_expiry_interval = 3600;
  cn.has_will = true;
  cn.will.topic = "wills/a";
  cn.will.payload = "late";
  cn.will.props.will_delay_interval = 10;
  const auto a = Connected("a", cn);
  peer_.Drop(a);
  peer_.TickAfter(5'000);
  EXPECT_TRUE(peer_.Received(watcher).empty());
  peer_.TickAfter(10'500);
  EXPECT_EQ(Payloads(peer_.Received(watcher)), std::vector<std::string>{"late"});

  // Back before the delay ends: no will, not then and not when the new connection (which has
  // no will of its own) ends.
  const auto again = Connected("a", cn);
  peer_.Drop(again);
  const auto last = Connected("a", Connect("a", /*clean_start=*/false));
  peer_.TickAfter(20'000);
  EXPECT_TRUE(peer_.Received(watcher).empty());
  peer_.Drop(last);
  peer_.TickAfter(20'000);
  EXPECT_TRUE(peer_.Received(watcher).empty());
}

TEST_F(ShardTest, CleanSessionEndsWithItsConnectionAndAPersistentOneExpires) {
  const auto clean = Connected("clean");
  peer_.Drop(clean);
  EXPECT_EQ(peer_.sessions(), 0u);

  proto::Connect cn = Connect("kept", /*clean_start=*/false);
  cn.props.session_expiry_interval = 60;
  const auto kept = Connected("kept", cn);
  peer_.Drop(kept);
  peer_.TickAfter(30'000);
  EXPECT_EQ(peer_.sessions(), 1u);
  peer_.TickAfter(61'000);
  EXPECT_EQ(peer_.sessions(), 0u);
}

TEST_F(ShardTest, OfflinePersistentSessionGetsItsQueuedMessagesOnReturn) {
  proto::Connect cn = Connect("store", /*clean_start=*/false);
  cn.props.session_expiry_interval = 3600;
  const auto first = Connected("store", cn);
  peer_.Send(first, Subscribe("data/#", 1));
  (void)peer_.Received(first);
  peer_.Drop(first);

  const auto pub = Connected("pub");
  peer_.Send(pub, Publish("data/1", "one", 1, 1));
  peer_.Send(pub, Publish("data/2", "two", 1, 2));
  EXPECT_EQ(OfType<proto::Ack>(peer_.Received(pub)).size(), 2u);  // PUBACKs

  const auto back = peer_.Open(Version::kV5);
  peer_.Send(back, cn);
  const auto got = peer_.Received(back);
  const auto acks = OfType<proto::Connack>(got);
  ASSERT_EQ(acks.size(), 1u);
  EXPECT_TRUE(acks[0].session_present);
  EXPECT_EQ(Payloads(got), (std::vector<std::string>{"one", "two"}));
}

TEST(ShardQueues, FullQueueWithDisconnectPolicyClosesTheConsumer) {
  Config cfg = Anonymous();
  cfg.max_inflight = 1;
  cfg.max_queued_messages = 2;
  cfg.queue_full_policy = QueueFullPolicy::kDisconnect;
  ShardTestPeer peer{cfg};
  const auto sub = peer.Open(Version::kV5);
  peer.Send(sub, Connect("sub"));
  peer.Send(sub, Subscribe("t", 1));
  (void)peer.Received(sub);
  const auto pub = peer.Open(Version::kV5);
  peer.Send(pub, Connect("pub"));
  // One in flight (never acknowledged), two queued, the fourth overflows.
  for (uint16_t i = 1; i <= 4; ++i) peer.Send(pub, Publish("t", "m", 1, i));
  const auto got = peer.Received(sub);
  const auto bye = OfType<proto::Disconnect>(got);
  ASSERT_EQ(bye.size(), 1u);
  EXPECT_EQ(bye[0].reason, ReasonCode::kQuotaExceeded);
  EXPECT_TRUE(peer.Closed(sub));
  EXPECT_FALSE(peer.Closed(pub));
}

TEST(ShardAcl, TokenAclNarrowsSubscriptionsAndRefusesPublishes) {
  ShardTestPeer peer{Config{}};
  acl::Token t;
  t.id = 42;
  t.key = std::string(64, 'k');
  t.expire = 4'000'000'000;
  t.access.type = acl::AccessType::kAcl;
  t.access.acl = {acl::AclEntry{"data/u1/#", acl::kActionSubscribe | acl::kActionPublish, 0}};
  peer.shard().ApplyTokenChange(t.key, acl::CompiledAcl::Compile(t, 1));

  proto::Connect cn = Connect("user");
  cn.has_username = true;
  cn.username = t.key;
  const auto user = peer.Open(Version::kV5);
  peer.Send(user, cn);
  const auto acks = OfType<proto::Connack>(peer.Received(user));
  ASSERT_EQ(acks.size(), 1u);
  ASSERT_EQ(acks[0].reason, ReasonCode::kSuccess);
  peer.Send(user, Subscribe("data/#", 0));  // wider than the ACL: narrowed, not refused
  const auto subacks = OfType<proto::Suback>(peer.Received(user));
  ASSERT_EQ(subacks.size(), 1u);
  EXPECT_EQ(subacks[0].reasons, std::vector<ReasonCode>{ReasonCode::kSuccess});

  peer.Send(user, Publish("data/u1/a", "mine"));
  peer.Send(user, Publish("data/u2/a", "theirs", 1, 7));  // not allowed: PUBACK 0x87
  const auto got = peer.Received(user);
  EXPECT_EQ(Payloads(got), std::vector<std::string>{"mine"});
  const auto pubacks = OfType<proto::Ack>(got);
  ASSERT_EQ(pubacks.size(), 1u);
  EXPECT_EQ(pubacks[0].packet_id, 7);
  EXPECT_EQ(pubacks[0].reason, ReasonCode::kNotAuthorized);
}

// A publisher on shard 0 pours into a subscriber on shard 1 faster than shard 1 takes it: at
// 4096 messages waiting for shard 1, shard 0 stops handling the publisher's PUBLISH packets (they
// stay in its input), and goes on once the outbox is low. The publisher's EOF, read meanwhile,
// closes it only after the paused packets. Nothing is dropped, and the order holds.
TEST(ShardBackpressure, FullOutboxPausesPublishInputAndLosesNothing) {
  ShardTestPeer peer{Anonymous(), 2};
  const std::string sub_id = peer.HomedOn(1, "sub");
  const std::string pub_id = peer.HomedOn(0, "pub");
  const auto sub = peer.Open(Version::kV5, 1);
  peer.Send(sub, Connect(sub_id));
  peer.Send(sub, Subscribe("t", 0));
  (void)peer.Received(sub);
  const auto pub = peer.Open(Version::kV5, 0);
  peer.Send(pub, Connect(pub_id));
  (void)peer.Received(pub);

  constexpr int kMessages = 6000;
  for (int i = 0; i < kMessages; ++i) peer.Append(pub, Publish("t", std::to_string(i)));
  peer.Input(pub);
  EXPECT_TRUE(peer.Conn(pub)->input_paused);
  EXPECT_EQ(peer.MessagesIn(0), 4096u);  // the outbox's high mark
  EXPECT_FALSE(peer.Conn(pub)->in.empty());
  peer.PeerClosed(pub);
  EXPECT_FALSE(peer.Closed(pub));  // not before the paused packets

  std::vector<std::string> got;
  for (int turn = 0; turn < 100 && static_cast<int>(got.size()) < kMessages; ++turn) {
    peer.ExchangeBetweenShards();
    for (std::string& p : Payloads(peer.Received(sub))) got.push_back(std::move(p));
  }
  ASSERT_EQ(got.size(), static_cast<size_t>(kMessages));
  for (int i = 0; i < kMessages; ++i) ASSERT_EQ(got[static_cast<size_t>(i)], std::to_string(i));
  EXPECT_EQ(peer.MessagesIn(0), static_cast<uint64_t>(kMessages));
  EXPECT_TRUE(peer.Closed(pub));
  EXPECT_EQ(peer.shard().stats().input_pauses.Get(), 1u);
}

}  // namespace
}  // namespace ringmq::broker
